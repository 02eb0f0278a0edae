package main

import (
	"bytes"
	"encoding/json"
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
		code := run([]string{"-demo", "-json", c.domain}, &out, &errb)
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
	run([]string{"-demo", "-json", "dane-ta.test"}, &out, &out)
	json.Unmarshal(out.Bytes(), &reps)
	if len(reps) != 1 || len(reps[0].Hosts) != 2 || len(reps[0].Hosts[0].TLSA) != 1 || reps[0].Hosts[0].TLSA[0].Match != "matches at depth 1" {
		t.Errorf("dane-ta.test report: %s", out.String())
	}
	if code := run([]string{}, &out, &out); code != 3 {
		t.Errorf("no domain: exit %d, want 3", code)
	}
}
