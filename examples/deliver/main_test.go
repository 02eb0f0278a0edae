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

// TestDeliverColumnsAligned: the outcome column starts at the same place
// on every line, however long the addresses (it used to be a fixed width
// of 28 that a long address pushed out of line).
func TestDeliverColumnsAligned(t *testing.T) {
	long := strings.Repeat("a-very-long-local-part-", 3) + "@dane-ee.test"
	var out, errb bytes.Buffer
	run([]string{"-demo", "-to", long + ",b@sts-enforce.test,x@nullmx.test"}, nil, &out, &errb)
	var starts []int
	for l := range strings.SplitSeq(out.String(), "\n") {
		addr, _, ok := strings.Cut(l, " ")
		if !ok || !strings.Contains(addr, "@") {
			continue
		}
		starts = append(starts, len(l)-len(strings.TrimLeft(l[len(addr):], " ")))
	}
	if len(starts) != 3 {
		t.Fatalf("%d outcome lines:\n%s", len(starts), out.String())
	}
	for _, s := range starts[1:] {
		if s != starts[0] || s <= len(long) {
			t.Errorf("outcome columns start at %v (the long address is %d bytes):\n%s", starts, len(long), out.String())
			break
		}
	}
}
