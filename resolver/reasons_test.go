package resolver

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestStubInsecureReasons: a Stub says why an answer is Insecure, with the
// upstream's Extended DNS Error when it sent one (RFC 8914); a Cache keeps
// the reason with the answer.
func TestStubInsecureReasons(t *testing.T) {
	t.Parallel()
	srv := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		switch q.Question[0].Name {
		case "signed.test.":
			w.WriteMsg(reply(q, dns.RcodeSuccess, true, "signed.test. 300 IN A 192.0.2.1"))
		case "plain.test.":
			w.WriteMsg(reply(q, dns.RcodeSuccess, false, "plain.test. 300 IN A 192.0.2.1"))
		case "ede.test.":
			r := reply(q, dns.RcodeSuccess, false, "ede.test. 300 IN A 192.0.2.1")
			r.SetEdns0(1232, true)
			o := r.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm, ExtraText: "alg \"16\"\n"})
			w.WriteMsg(r)
		}
	})
	c := &Cache{Resolver: &Stub{Servers: []string{srv.Addr}}}
	for _, tc := range []struct {
		name   string
		sec    Security
		ede    uint16
		reason string
	}{
		{"signed.test", Secure, 0, ""},
		{"plain.test", Insecure, 0, `"plain.test.": the upstream did not set the AD bit`},
		{"ede.test", Insecure, dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm, `"ede.test.": upstream Extended DNS Error 1: "alg \"16\"\n"`},
	} {
		for i := range 2 { // the second answer comes from the cache
			a, err := c.Lookup(context.Background(), tc.name, dns.TypeA)
			if err != nil {
				t.Fatal(err)
			}
			if a.Security != tc.sec || a.EDE != tc.ede || a.Reason != tc.reason {
				t.Errorf("%s (lookup %d): %v EDE %d %q, want %v EDE %d %q", tc.name, i, a.Security, a.EDE, a.Reason, tc.sec, tc.ede, tc.reason)
			}
		}
	}
	// The first server answers; the second (never asked) makes AD
	// untrusted.
	a, err := (&Stub{Servers: []string{srv.Addr, "192.0.2.1:53"}}).Lookup(context.Background(), "signed.test", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if a.Security != Insecure || !strings.Contains(a.Reason, "AD bit not trusted") {
		t.Errorf("untrusted AD: %v %q", a.Security, a.Reason)
	}
}

// TestCacheFlushZone: Flush(zone) drops the answers at and below zone,
// label-wise, and those whose CNAME chain passes through it.
func TestCacheFlushZone(t *testing.T) {
	t.Parallel()
	c, _, _ := newTestCache(t, zone(true, map[string][]string{
		"a.example.test. A":  {"a.example.test. 300 IN A 192.0.2.1"},
		"example.test. MX":   {"example.test. 300 IN MX 10 a.example.test."},
		"anexample.test. MX": {"anexample.test. 300 IN MX 10 a.example.test."},
		"alias.other. A":     {"alias.other. 300 IN CNAME a.example.test.", "a.example.test. 300 IN A 192.0.2.1"},
		"b.other. A":         {"b.other. 300 IN A 192.0.2.2"},
	}))
	ctx := context.Background()
	fill := func() {
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"a.example.test", dns.TypeA}, {"example.test", dns.TypeMX}, {"anexample.test", dns.TypeMX}, {"alias.other", dns.TypeA}, {"b.other", dns.TypeA}} {
			if _, err := c.Lookup(ctx, q.name, q.qtype); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill()
	c.Flush("Example.Test")
	for _, q := range []struct {
		name  string
		qtype uint16
		kept  bool
	}{
		{"a.example.test", dns.TypeA, false},
		{"example.test", dns.TypeMX, false},
		{"anexample.test", dns.TypeMX, true},
		{"alias.other", dns.TypeA, false},
		{"b.other", dns.TypeA, true},
	} {
		if _, ok, _ := c.Peek(q.name, q.qtype); ok != q.kept {
			t.Errorf("%s: kept=%v, want %v", q.name, ok, q.kept)
		}
	}
	fill()
	c.Flush(".")
	if n := c.Len(); n != 0 {
		t.Errorf("%d entries after Flush(\".\")", n)
	}
}
