package smtptlstest_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

func TestZoneAdd(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("Example.TEST.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	if z.Name() != "example.test." {
		t.Fatalf("Name() = %q", z.Name())
	}
	if w.Zone("example.test") != z || w.Zone("EXAMPLE.test.") != z || w.Zone("other.test") != nil {
		t.Errorf("Zone lookup")
	}
	if w.Zone("test") == nil || w.Zone("test").Config().Signing != smtptlstest.NSEC3OptOut {
		t.Errorf("TLD not created as NSEC3 opt-out")
	}
	errs := []struct {
		name string
		line string
	}{
		{"outside the zone", "www.other.test. A 192.0.2.1"},
		{"RRSIG", "www RRSIG A 13 3 300 20300101000000 20200101000000 1 example.test. AAAA"},
		{"NSEC", "www NSEC x.example.test. A"},
		{"class", "www CH TXT x"},
		{"CNAME and data", "mx CNAME www"},
		{"CNAME at apex", "@ CNAME www"},
		{"SOA below apex", "www SOA a. b. 1 2 3 4 5"},
		{"syntax", "www A not-an-address"},
	}
	z.MustAdd("mx A 192.0.2.25")
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			if err := z.Add("ok TXT fine", tt.line); err == nil {
				t.Errorf("no error")
			}
			if len(z.Records("ok", dns.TypeTXT)) != 0 {
				t.Errorf("a failed Add added records")
			}
		})
	}
	t.Run("relative names, @ and default TTL", func(t *testing.T) {
		z.MustAdd("@ MX 10 mx", "alias CNAME mx", "t 60 TXT a", "abs.example.test. TXT b")
		mx := z.Records("@", dns.TypeMX)
		if len(mx) != 1 || mx[0].(*dns.MX).Mx != "mx.example.test." || mx[0].Header().Ttl != smtptlstest.DefaultTTL {
			t.Errorf("MX %v", mx)
		}
		if c := z.Records("alias", dns.TypeCNAME); len(c) != 1 || c[0].(*dns.CNAME).Target != "mx.example.test." {
			t.Errorf("CNAME %v", c)
		}
		if tx := z.Records("t.example.test.", dns.TypeTXT); len(tx) != 1 || tx[0].Header().Ttl != 60 {
			t.Errorf("TXT %v", tx)
		}
		if len(z.Records("abs", dns.TypeTXT)) != 1 {
			t.Errorf("absolute owner")
		}
	})
	t.Run("RRset TTL follows the last record", func(t *testing.T) {
		z.MustAdd("multi 100 A 192.0.2.1", "multi 50 A 192.0.2.2", "multi 50 A 192.0.2.2")
		rrs := z.Records("multi", dns.TypeA)
		if len(rrs) != 2 || rrs[0].Header().Ttl != 50 || rrs[1].Header().Ttl != 50 {
			t.Errorf("%v", rrs)
		}
	})
	t.Run("remove", func(t *testing.T) {
		z.MustAdd("gone A 192.0.2.9", "gone TXT x")
		z.Remove("gone", dns.TypeA)
		if len(z.Records("gone", dns.TypeA)) != 0 || len(z.Records("gone", dns.TypeTXT)) != 1 {
			t.Errorf("Remove one type")
		}
		z.Remove("gone", 0)
		r := exchange(t, w, q{name: "gone.example.test", qtype: dns.TypeTXT})
		if r.Rcode != dns.RcodeNameError {
			t.Errorf("removed name still answers: %v", r)
		}
		z.Remove("@", 0)
		if len(z.Records("@", dns.TypeSOA)) != 1 {
			t.Errorf("SOA removed")
		}
	})
	t.Run("AddRR", func(t *testing.T) {
		rr, _ := dns.NewRR("rr.example.test. 120 IN A 192.0.2.7")
		if err := z.AddRR(rr); err != nil {
			t.Fatal(err)
		}
		rr.(*dns.A).A.To4()[3] = 8 // must not reach the zone
		if got := z.Records("rr", dns.TypeA); len(got) != 1 || got[0].(*dns.A).A.To4()[3] != 7 {
			t.Errorf("%v", got)
		}
	})
	t.Run("SOA serial increases", func(t *testing.T) {
		s1 := z.Records("@", dns.TypeSOA)[0].(*dns.SOA).Serial
		z.MustAdd("more A 192.0.2.10")
		if s2 := z.Records("@", dns.TypeSOA)[0].(*dns.SOA).Serial; s2 <= s1 {
			t.Errorf("serial %d -> %d", s1, s2)
		}
	})
}

func TestAddZoneIDN(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("bücher.test", smtptlstest.ZoneConfig{})
	if z.Name() != "xn--bcher-kva.test." {
		t.Errorf("Name() = %q", z.Name())
	}
	if w.Zone("BÜCHER.test.") != z {
		t.Errorf("U-label lookup")
	}
}

func TestReconfigureZone(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	z.MustAdd("www A 192.0.2.1")
	old := z.DS()
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3, Algorithm: dns.ED25519})
	if z.KSK().Algorithm != dns.ED25519 || z.DS().Digest == old.Digest {
		t.Fatalf("not re-keyed")
	}
	r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA, do: true})
	if !r.AuthenticatedData {
		t.Errorf("not secure after re-keying: %v", r)
	}
	if n := len(keys(t, w, "example.test.")); n != 2 {
		t.Errorf("%d DNSKEYs, want 2", n)
	}
	w.AddZone("example.test", smtptlstest.ZoneConfig{})
	r = exchange(t, w, q{name: "example.test", qtype: dns.TypeDS, do: true, cd: true})
	if len(ofType(r.Answer, dns.TypeDS)) != 0 {
		t.Errorf("DS left for an unsigned zone: %v", r)
	}
	if r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA, do: true}); r.AuthenticatedData || r.Rcode != dns.RcodeSuccess {
		t.Errorf("unsigned: %v", r)
	}
	// The TLD can be reconfigured too.
	w.AddZone("test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	r = exchange(t, w, q{name: "nothing.test", qtype: dns.TypeA, do: true})
	if !r.AuthenticatedData || r.Rcode != dns.RcodeNameError {
		t.Errorf("NSEC TLD NXDOMAIN should be secure: %v", r)
	}
}

// TestDelegationsMove checks that adding a zone between a parent and an
// existing child moves the child's delegation into it.
func TestDelegationsMove(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("a.b.example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("www A 192.0.2.1")
	if w.Zone("test").Records("a.b.example.test.", dns.TypeDS) == nil {
		t.Fatalf("child not delegated from the TLD")
	}
	mid := w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3})
	if w.Zone("test").Records("a.b.example.test.", dns.TypeDS) != nil {
		t.Errorf("old delegation left in the TLD")
	}
	if mid.Records("a.b", dns.TypeNS) == nil || mid.Records("a.b", dns.TypeDS) == nil {
		t.Errorf("delegation not moved into the new zone")
	}
	r := exchange(t, w, q{name: "www.a.b.example.test", qtype: dns.TypeA, do: true})
	if !r.AuthenticatedData {
		t.Errorf("not secure through the new zone: %v", r)
	}
	// b.example.test is an empty non-terminal of example.test.
	r = exchange(t, w, q{name: "b.example.test", qtype: dns.TypeA, do: true})
	if r.Rcode != dns.RcodeSuccess || len(ofType(r.Ns, dns.TypeSOA)) != 1 {
		t.Errorf("ENT: %v", r)
	}
	// Without its NS, a zone is unreachable: the parent answers.
	mid.Remove("a.b", dns.TypeNS)
	if r := exchange(t, w, q{name: "www.a.b.example.test", qtype: dns.TypeA}); r.Rcode != dns.RcodeNameError {
		t.Errorf("undelegated zone still answers: %v", r)
	}
}

func TestInvalidConfigPanics(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	for _, tt := range []struct {
		name string
		f    func()
	}{
		{"unknown algorithm", func() { w.AddZone("a.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, Algorithm: 16}) }},
		{"bad salt", func() { w.AddZone("b.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3, NSEC3Salt: "xyz"}) }},
		{"bad signing", func() { w.AddZone("c.test", smtptlstest.ZoneConfig{Signing: 42}) }},
		{"bad name", func() { w.AddZone("a..test", smtptlstest.ZoneConfig{}) }},
		{"bad fault name", func() { w.SetFault("a..test", 0, smtptlstest.FaultServFail) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			tt.f()
		})
	}
}

func TestSigningString(t *testing.T) {
	t.Parallel()
	for s, want := range map[smtptlstest.Signing]string{
		smtptlstest.Unsigned: "unsigned", smtptlstest.NSEC: "nsec", smtptlstest.NSEC3: "nsec3",
		smtptlstest.NSEC3OptOut: "nsec3-optout", 9: "signing(9)",
	} {
		if s.String() != want {
			t.Errorf("%q, want %q", s.String(), want)
		}
	}
}
