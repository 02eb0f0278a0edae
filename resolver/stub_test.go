package resolver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func lookupErrKind(t *testing.T, err error) Kind {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *resolver.Error", err, err)
	}
	return e.Kind
}

func TestStubAnswers(t *testing.T) {
	t.Parallel()
	data := map[string][]string{
		"mx.test. A":         {"mx.test. 300 IN A 192.0.2.1", "mx.test. 100 IN A 192.0.2.2"},
		"alias.test. A":      {"alias.test. 50 IN CNAME Mid.Test.", "mid.test. 200 IN CNAME mx.test.", "mx.test. 300 IN A 192.0.2.1"},
		"alias.test. MX":     {"alias.test. 50 IN CNAME mid.test."},
		"mid.test. MX":       {"mid.test. 300 IN CNAME gone.test."},
		"nodata.test. A":     nil,
		"nodata.test. TXT":   {"nodata.test. 300 IN TXT \"a\" \"b\"", "nodata.test. 300 IN TXT \"c\""},
		"loop1.test. A":      {"loop1.test. 300 IN CNAME loop2.test.", "loop2.test. 300 IN CNAME loop1.test."},
		"other.test. A":      {"elsewhere.test. 300 IN A 192.0.2.9"},
		"partial.test. AAAA": {"partial.test. 300 IN CNAME mx.test."},
		"mx.test. AAAA":      {"mx.test. 300 IN AAAA 2001:db8::1"},
	}
	srv := newWireServer(t, zone(true, data))
	s := &Stub{Servers: []string{srv.Addr}}
	ctx := context.Background()

	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		nrecs    int
		cnames   []string
		nx       bool
		ttl      time.Duration
		wantKind Kind
	}{
		{name: "records", qname: "MX.test", qtype: dns.TypeA, nrecs: 2, ttl: 100 * time.Second},
		{name: "cname chain in one answer", qname: "alias.test.", qtype: dns.TypeA, nrecs: 1, cnames: []string{"mid.test.", "mx.test."}, ttl: 50 * time.Second},
		{name: "cname chain re-queried to nxdomain", qname: "alias.test.", qtype: dns.TypeMX, cnames: []string{"mid.test.", "gone.test."}, nx: true, ttl: 50 * time.Second},
		{name: "partial chain re-queried", qname: "partial.test.", qtype: dns.TypeAAAA, nrecs: 1, cnames: []string{"mx.test."}, ttl: 300 * time.Second},
		{name: "nodata", qname: "nodata.test.", qtype: dns.TypeMX, ttl: 60 * time.Second},
		{name: "nxdomain", qname: "nosuch.test.", qtype: dns.TypeA, nx: true, ttl: 60 * time.Second},
		{name: "records of other names ignored", qname: "other.test.", qtype: dns.TypeA},
		{name: "cname loop", qname: "loop1.test.", qtype: dns.TypeA, wantKind: KindLoop},
		{name: "invalid name", qname: "a..b", qtype: dns.TypeA, wantKind: KindMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := s.Lookup(ctx, tc.qname, tc.qtype)
			if tc.wantKind != KindUnknown {
				if got := lookupErrKind(t, err); got != tc.wantKind {
					t.Fatalf("kind = %v, want %v", got, tc.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Name != Fqdn(tc.qname) || len(a.Records) != tc.nrecs || a.NXDomain != tc.nx || a.TTL != tc.ttl {
				t.Errorf("got name=%s recs=%d nx=%v ttl=%v; want recs=%d nx=%v ttl=%v", a.Name, len(a.Records), a.NXDomain, a.TTL, tc.nrecs, tc.nx, tc.ttl)
			}
			if len(a.CNAMEs) != len(tc.cnames) {
				t.Fatalf("CNAMEs = %v, want %v", a.CNAMEs, tc.cnames)
			}
			for i := range tc.cnames {
				if a.CNAMEs[i] != tc.cnames[i] {
					t.Errorf("CNAMEs = %v, want %v", a.CNAMEs, tc.cnames)
				}
			}
			if a.Security != Secure {
				t.Errorf("security = %v, want secure (AD from loopback)", a.Security)
			}
			for _, rr := range a.Records {
				if rr.Header().Rrtype != tc.qtype || rr.Header().Name != a.Target() {
					t.Errorf("stray record %v", rr)
				}
			}
		})
	}
	t.Run("txt joined", func(t *testing.T) {
		txt, _, err := LookupTXT(ctx, s, "nodata.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(txt) != 2 || !(txt[0] == "ab" && txt[1] == "c" || txt[0] == "c" && txt[1] == "ab") {
			t.Errorf("txt = %q", txt)
		}
	})
}

func TestStubSecurityPerLink(t *testing.T) {
	t.Parallel()
	// The first response (for the CNAME) is validated, the second (for
	// its target) is not: the answer is only as secure as its worst link.
	srv := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		switch q.Question[0].Name {
		case "signed.test.":
			w.WriteMsg(reply(q, dns.RcodeSuccess, true, "signed.test. 300 IN CNAME unsigned.test."))
		case "unsigned.test.":
			w.WriteMsg(reply(q, dns.RcodeSuccess, false, "unsigned.test. 300 IN A 192.0.2.1"))
		}
	})
	a, err := (&Stub{Servers: []string{srv.Addr}}).Lookup(context.Background(), "signed.test", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if a.Security != Insecure || len(a.Records) != 1 {
		t.Errorf("security = %v, records %d; want insecure, 1", a.Security, len(a.Records))
	}
}

func TestStubADTrust(t *testing.T) {
	t.Parallel()
	cases := []struct {
		servers []string
		trustAD bool
		want    bool
	}{
		{[]string{"127.0.0.1:53"}, false, true},
		{[]string{"127.0.0.53:53", "[::1]:53", "localhost:53"}, false, true},
		{[]string{"[::ffff:127.0.0.1]:53"}, false, true},
		{[]string{"127.0.0.1:53", "192.0.2.1:53"}, false, false},
		{[]string{"192.0.2.1:53"}, false, false},
		{[]string{"192.0.2.1:53"}, true, true},
		{[]string{"resolver.example:53"}, false, false},
		{[]string{"garbage"}, false, false},
	}
	for _, c := range cases {
		s := &Stub{Servers: c.servers, TrustAD: c.trustAD}
		if got := s.TrustsAD(); got != c.want {
			t.Errorf("servers %v TrustAD=%v: TrustsAD = %v, want %v", c.servers, c.trustAD, got, c.want)
		}
	}
}

func TestStubTruncatedRetriesTCP(t *testing.T) {
	t.Parallel()
	srv := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		if w.LocalAddr().Network() == "udp" {
			m := reply(q, dns.RcodeSuccess, true)
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
		w.WriteMsg(reply(q, dns.RcodeSuccess, true, "big.test. 300 IN TXT \"over tcp\""))
	})
	txt, a, err := LookupTXT(context.Background(), &Stub{Servers: []string{srv.Addr}}, "big.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(txt) != 1 || txt[0] != "over tcp" || a.Security != Secure {
		t.Errorf("txt %q security %v", txt, a.Security)
	}
	if srv.udp.Load() != 1 || srv.queries.Load() != 2 {
		t.Errorf("udp=%d total=%d, want 1 and 2", srv.udp.Load(), srv.queries.Load())
	}
}

func TestStubIgnoresMismatchedReplies(t *testing.T) {
	t.Parallel()
	srv := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		// A spoofer's guesses arrive first: wrong ID, then right ID with
		// the wrong question, then garbage. Only the real reply counts.
		bad := reply(q, dns.RcodeSuccess, true, "spoof.test. 300 IN A 198.51.100.66")
		bad.Id = q.Id + 1
		w.WriteMsg(bad)
		other := new(dns.Msg)
		other.SetQuestion("evil.test.", dns.TypeA)
		other = reply(other, dns.RcodeSuccess, true, "evil.test. 300 IN A 198.51.100.66")
		other.Id = q.Id
		w.WriteMsg(other)
		w.Write([]byte{0x12})
		w.WriteMsg(reply(q, dns.RcodeSuccess, true, "spoof.test. 300 IN A 192.0.2.1"))
	})
	a, err := (&Stub{Servers: []string{srv.Addr}}).Lookup(context.Background(), "spoof.test", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Records) != 1 || a.Records[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("records = %v", a.Records)
	}
}

func TestStubFailover(t *testing.T) {
	t.Parallel()
	good := newWireServer(t, zone(true, map[string][]string{"a.test. A": {"a.test. 300 IN A 192.0.2.1"}}))
	servfail := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		w.WriteMsg(reply(q, dns.RcodeServerFailure, false))
	})
	refused := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		w.WriteMsg(reply(q, dns.RcodeRefused, false))
	})
	silent := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {})
	s := &Stub{Servers: []string{deadAddr(t), servfail.Addr, refused.Addr, silent.Addr, good.Addr}, Timeout: 200 * time.Millisecond}
	for i := range 2 {
		a, err := s.Lookup(context.Background(), "a.test", dns.TypeA)
		if err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		if len(a.Records) != 1 {
			t.Fatalf("records %v", a.Records)
		}
	}
	// The second lookup started at the server that worked.
	if n := servfail.queries.Load(); n != 1 {
		t.Errorf("servfail server asked %d times, want 1", n)
	}
	if n := good.queries.Load(); n != 2 {
		t.Errorf("good server asked %d times, want 2", n)
	}

	// Every server failing: the error says so, with the last kind seen.
	s = &Stub{Servers: []string{deadAddr(t), servfail.Addr}, Timeout: 200 * time.Millisecond}
	_, err := s.Lookup(context.Background(), "a.test", dns.TypeA)
	if k := lookupErrKind(t, err); k != KindServFail {
		t.Errorf("kind %v, want servfail", k)
	}
	s = &Stub{Servers: []string{servfail.Addr, refused.Addr}}
	_, err = s.Lookup(context.Background(), "a.test", dns.TypeA)
	if k := lookupErrKind(t, err); k != KindRefused {
		t.Errorf("kind %v, want refused", k)
	}
}

func TestStubContextTimeout(t *testing.T) {
	t.Parallel()
	silent := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {})
	s := &Stub{Servers: []string{silent.Addr}, Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Lookup(ctx, "a.test", dns.TypeA)
	if k := lookupErrKind(t, err); k != KindTimeout {
		t.Errorf("kind %v, want timeout", k)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("lookup took %v after its context ended", d)
	}
}

func TestJoinTXT(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"v=STSv1; id=1"}, "v=STSv1; id=1"},
		{[]string{"v=STSv1;", " id=1"}, "v=STSv1; id=1"},
		{[]string{`a\009b`, `\"q\"`, `back\\slash`}, "a\tb\"q\"back\\slash"},
		{[]string{`\255\256`}, "\xff256"},
		{[]string{`trailing\`}, `trailing\`},
	} {
		if got := JoinTXT(c.in); got != c.want {
			t.Errorf("JoinTXT(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Over the wire: a tab and a quote survive the round trip.
	srv := newWireServer(t, zone(true, map[string][]string{"t.test. TXT": {"t.test. 300 IN TXT \"a\\009b\" \"\\\"\""}}))
	txt, _, err := LookupTXT(context.Background(), &Stub{Servers: []string{srv.Addr}}, "t.test")
	if err != nil || len(txt) != 1 || txt[0] != "a\tb\"" {
		t.Errorf("LookupTXT = %q, %v", txt, err)
	}
}
