package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/smtptls/smtptls/examples/internal/demoworld"
	"github.com/smtptls/smtptls/internal/rawserver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestCheckHelp: -h prints the usage with every flag and exits 0.
func TestCheckHelp(t *testing.T) {
	var errb bytes.Buffer
	if code := run([]string{"-h"}, io.Discard, &errb, hooks{}); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	n := 0
	newFlags(&options{}, io.Discard).VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(errb.String(), "  -"+f.Name+" ") && !strings.Contains(errb.String(), "  -"+f.Name+"\n") {
			t.Errorf("-h does not list -%s:\n%s", f.Name, errb.String())
		}
	})
	if n < 4 || !strings.Contains(errb.String(), "usage: check") {
		t.Errorf("-h printed:\n%s", errb.String())
	}
	errb.Reset()
	if code := run([]string{}, io.Discard, &errb, hooks{}); code != 3 || !strings.Contains(errb.String(), "-timeout") {
		t.Errorf("no domain: exit %d, want 3 and the usage:\n%s", code, errb.String())
	}
}

// TestCheckProbeFirst: through a resolver that blocks DNSSEC queries the
// checker reports the start-up probe's finding, not a bogus MX RRset.
func TestCheckProbeFirst(t *testing.T) {
	srv := rawserver.BlockingResolver(t)
	for _, asJSON := range []bool{false, true} {
		args := []string{"-timeout", "10s", "example.org", "example.net"}
		if asJSON {
			args = append([]string{"-json"}, args...)
		}
		var out, errb bytes.Buffer
		code := run(args, &out, &errb, hooks{servers: []string{srv}})
		all := out.String() + errb.String()
		if code != 2 || !strings.Contains(errb.String(), "cannot support DANE") || !strings.Contains(errb.String(), "no DNSKEY for the root (DNSSEC queries blocked)") {
			t.Errorf("json=%v: exit %d, want 2 with the probe's finding:\n%s", asJSON, code, all)
		}
		if strings.Contains(all, "bogus") {
			t.Errorf("json=%v: a bogus verdict through a resolver that blocks DNSSEC:\n%s", asJSON, all)
		}
		if asJSON {
			var reps []Report
			if err := json.Unmarshal(out.Bytes(), &reps); err != nil || len(reps) != 2 || !strings.Contains(reps[0].Error, "DNSSEC queries blocked") {
				t.Errorf("JSON (%v): %s", err, out.String())
			}
		}
	}
}

// TestCheckDemoLastLine: -demo ends with a line saying that the failures
// shown are the intended ones; with -json it goes to stderr, so that
// stdout stays one JSON document.
func TestCheckDemoLastLine(t *testing.T) {
	var out, errb bytes.Buffer
	run([]string{"-demo"}, &out, &errb, hooks{})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	failing := 0
	for _, c := range demoworld.Cases {
		if c.Want != "delivered" {
			failing++
		}
	}
	if !strings.Contains(last, "every result above is the intended one") || !strings.HasPrefix(last, "demo: "+strconv.Itoa(failing)+" of "+strconv.Itoa(len(demoworld.Cases))) {
		t.Errorf("last line %q", last)
	}
	out.Reset()
	errb.Reset()
	run([]string{"-demo", "-json"}, &out, &errb, hooks{})
	var reps []Report
	if err := json.Unmarshal(out.Bytes(), &reps); err != nil {
		t.Errorf("stdout is not one JSON document: %v", err)
	}
	if !strings.Contains(errb.String(), "intended") {
		t.Errorf("stderr with -json: %q", errb.String())
	}
	// A demo domain whose result is not the intended one is named.
	if got := demoVerdict([]Report{{Domain: "dane-ee.test", OK: false}}); !strings.Contains(got, "NOT as intended: dane-ee.test") {
		t.Errorf("demoVerdict of a wrong result: %q", got)
	}
}

// TestCheckJSONNoNull: every list of -json output is [] when empty.
func TestCheckJSONNoNull(t *testing.T) {
	var out bytes.Buffer
	run([]string{"-demo", "-json"}, &out, io.Discard, hooks{})
	var v any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case nil:
			t.Errorf("%s is null", path)
		case []any:
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		case map[string]any:
			for k, e := range x {
				walk(path+"."+k, e)
			}
		}
	}
	walk("$", v)
	// The error cases, whose lists were null: nullmx.test (no hosts) and
	// tlsa-servfail.test (a host without address).
	if !strings.Contains(out.String(), `"hosts": []`) || !strings.Contains(out.String(), `"addrs": []`) {
		t.Errorf("no empty list in the demo's JSON: the test checks nothing")
	}
}

// TestCheckUnusableLabel: a host that must not be used is labelled
// "unusable", as the demo labels it, not with a level it will not get.
func TestCheckUnusableLabel(t *testing.T) {
	for _, d := range []string{"tlsa-servfail.test", "sts-mismatch.test"} {
		var out bytes.Buffer
		run([]string{"-demo", "-json", d}, &out, io.Discard, hooks{})
		var reps []Report
		if err := json.Unmarshal(out.Bytes(), &reps); err != nil || len(reps) != 1 || len(reps[0].Hosts) != 1 {
			t.Fatalf("%s: %v %s", d, err, out.String())
		}
		if h := reps[0].Hosts[0]; h.Level != "unusable" || h.Unusable == "" {
			t.Errorf("%s: level %q, unusable %q", d, h.Level, h.Unusable)
		}
		out.Reset()
		run([]string{"-demo", d}, &out, io.Discard, hooks{})
		if !strings.Contains(out.String(), ": level unusable\n") {
			t.Errorf("%s text:\n%s", d, out.String())
		}
	}
}

// TestCheckRollover: with a live certificate, the TLSA rollover scheme
// of each host, and a warning for the schemes a key or CA change breaks.
func TestCheckRollover(t *testing.T) {
	w := smtptlstest.New(t)
	z := w.AddZone("roll.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	next, err := smtptlstest.SelfSigned("next.roll.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host, scheme string
		warn         bool
		records      func(s *smtptlstest.SMTPServer) []string
	}{
		{"one", "none", true, func(s *smtptlstest.SMTPServer) []string {
			return []string{smtptlstest.TLSARecord("_25._tcp.one", s.Certificate().Leaf, 3, 1, 1)}
		}},
		{"next", "current+next", false, func(s *smtptlstest.SMTPServer) []string {
			return []string{smtptlstest.TLSARecord("_25._tcp.next", s.Certificate().Leaf, 3, 1, 1), smtptlstest.TLSARecord("_25._tcp.next", next.Leaf, 3, 1, 1)}
		}},
		{"issuer", "current+issuer", false, func(s *smtptlstest.SMTPServer) []string {
			return []string{smtptlstest.TLSARecord("_25._tcp.issuer", s.Certificate().Leaf, 3, 1, 1), smtptlstest.TLSARecord("_25._tcp.issuer", w.CA().Intermediate, 2, 1, 1)}
		}},
	} {
		s := w.AddMX(c.host+".roll.test", smtptlstest.SMTPConfig{})
		z.MustAdd(c.records(s)...)
		z.MustAdd(c.host + "-domain MX 10 " + c.host)
		ev := w.Evaluator()
		var out bytes.Buffer
		code := run([]string{"-json", c.host + "-domain.roll.test"}, &out, io.Discard, hooks{ev: ev, dial: w.DialContext})
		var reps []Report
		if err := json.Unmarshal(out.Bytes(), &reps); err != nil || code != 0 || len(reps) != 1 || len(reps[0].Hosts) != 1 {
			t.Fatalf("%s: exit %d, %v: %s", c.host, code, err, out.String())
		}
		h := reps[0].Hosts[0]
		if h.Rollover != c.scheme || (h.RolloverWarning != "") != c.warn {
			t.Errorf("%s: rollover %q, warning %q; want %q, warning %v", c.host, h.Rollover, h.RolloverWarning, c.scheme, c.warn)
		}
		out.Reset()
		run([]string{c.host + "-domain.roll.test"}, &out, io.Discard, hooks{ev: ev, dial: w.DialContext})
		if !strings.Contains(out.String(), "TLSA rollover: "+c.scheme+"\n") || strings.Contains(out.String(), "WARNING") != c.warn {
			t.Errorf("%s text:\n%s", c.host, out.String())
		}
	}
}
