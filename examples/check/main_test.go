package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestCheckDemo(t *testing.T) {
	for _, c := range []struct {
		domain string
		code   int
		ok     bool
	}{
		{"dane-ee.test", 0, true},
		{"sts-testing.test", 0, true}, // testing: failures are reported, not fatal
		{"dane-mismatch.test", 1, false},
		{"tlsa-servfail.test", 1, false},
		{"nullmx.test", 2, false},
	} {
		var out, errb bytes.Buffer
		code := run([]string{"-demo", "-json", c.domain}, &out, &errb, hooks{})
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", c.domain, code, c.code, out.String(), errb.String())
			continue
		}
		var reps []Report
		if err := json.Unmarshal(out.Bytes(), &reps); err != nil || len(reps) != 1 {
			t.Fatalf("%s: bad JSON (%v): %s", c.domain, err, out.String())
		}
		if reps[0].OK != c.ok {
			t.Errorf("%s: ok=%v, want %v", c.domain, reps[0].OK, c.ok)
		}
	}
	var out bytes.Buffer
	var reps []Report
	run([]string{"-demo", "-json", "dane-ta.test"}, &out, io.Discard, hooks{})
	json.Unmarshal(out.Bytes(), &reps)
	if len(reps) != 1 || len(reps[0].Hosts) != 2 || len(reps[0].Hosts[0].TLSA) != 1 || reps[0].Hosts[0].TLSA[0].Match != "matches at depth 1" {
		t.Errorf("dane-ta.test report: %s", out.String())
	}
	if code := run([]string{}, &out, &out, hooks{}); code != 3 {
		t.Errorf("no domain: exit %d, want 3", code)
	}
}

// TestCheckExplainsInsecure: an Insecure MX RRset and insecure addresses
// come with the resolver's reason, in JSON and in text.
func TestCheckExplainsInsecure(t *testing.T) {
	var out, errb bytes.Buffer
	run([]string{"-demo", "-json", "plain.test"}, &out, &errb, hooks{})
	var reps []Report
	if err := json.Unmarshal(out.Bytes(), &reps); err != nil || len(reps) != 1 || len(reps[0].Hosts) != 1 {
		t.Fatalf("bad JSON (%v): %s%s", err, out.String(), errb.String())
	}
	const want = `insecure delegation: no DS for "plain.test."`
	r := reps[0]
	if r.MXSecure || r.MXWhy == nil || !strings.Contains(r.MXWhy.Reason, want) {
		t.Errorf("mx_insecure %+v, want a reason with %s", r.MXWhy, want)
	}
	if h := r.Hosts[0]; h.AddrWhy == nil || !strings.Contains(h.AddrWhy.Reason, want) {
		t.Errorf("addr_insecure %+v, want a reason with %s", h.AddrWhy, want)
	}
	out.Reset()
	run([]string{"-demo", "dane-ee.test", "plain.test"}, &out, &errb, hooks{})
	if n := strings.Count(out.String(), "insecure: \""); n != 2 || !strings.Contains(out.String(), want) {
		t.Errorf("text output with %d reasons, want 2 (for plain.test only):\n%s", n, out.String())
	}
}
