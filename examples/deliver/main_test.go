package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/smtptls/smtptls/examples/internal/demoworld"
)

func TestDeliverDemo(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-demo", "-to", "a@dane-ee.test,b@sts-enforce.test"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if n := strings.Count(out.String(), "delivered via"); n != 2 {
		t.Errorf("%d deliveries:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), `"policy-type":"tlsa"`) || !strings.Contains(out.String(), `"policy-type":"sts"`) {
		t.Errorf("reports missing:\n%s", out.String())
	}

	out.Reset()
	code := run([]string{"-demo"}, nil, &out, &errb)
	if code != 1 {
		t.Errorf("all demo domains: exit %d, want 1 (some are deferred by design)", code)
	}
	for _, c := range demoworld.Cases {
		line := ""
		for l := range strings.SplitSeq(out.String(), "\n") {
			if strings.HasPrefix(l, "postmaster@"+c.Domain+" ") {
				line = l
			}
		}
		if !strings.Contains(line, c.Want) {
			t.Errorf("%s: %q, want %s", c.Domain, line, c.Want)
		}
	}
	// TLS-Required: No delivers where DANE fails, and still reports it.
	out.Reset()
	if code := run([]string{"-demo", "-tls-required-no", "-to", "x@dane-mismatch.test"}, nil, &out, &errb); code != 0 {
		t.Errorf("TLS-Required: No: exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), `"result-type":"validation-failure"`) {
		t.Errorf("failure not reported:\n%s", out.String())
	}
	if code := run([]string{}, nil, &out, &errb); code != 3 {
		t.Errorf("usage: exit %d, want 3", code)
	}
}
