package dane_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsverify"
)

const hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// lookupWorld is the world of TestLookup and TestLookupEarlyTLSA: hosts
// in signed (NSEC, NSEC3) and unsigned zones, CNAMEs between them, TLSA
// RRsets usable, unusable, insecure, failing and bogus, and address
// failures.
func lookupWorld(t *testing.T) *smtptlstest.World {
	w := smtptlstest.New(t)
	signed := smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}
	a := w.AddZone("a.test", signed)
	b := w.AddZone("b.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3})
	u := w.AddZone("unsigned.test", smtptlstest.ZoneConfig{})
	a.MustAdd(
		"mx A 127.0.0.10",
		"_25._tcp.mx TLSA 3 1 1 "+hash,
		"_25._tcp.mx TLSA 0 0 1 "+hash, // PKIX-TA: in the RRset, not usable
		"notlsa A 127.0.0.11",
		"unusable A 127.0.0.12",
		"_25._tcp.unusable TLSA 1 1 1 "+hash,
		"_25._tcp.unusable TLSA 3 1 1 abcd", // wrong digest length
		"alias CNAME mx.b.test.",            // secure -> secure, TLSA at the target
		"alias2 CNAME plain.b.test.",        // secure -> secure, TLSA only at the alias
		"_25._tcp.alias2 TLSA 3 1 1 "+hash,
		"out CNAME host.unsigned.test.", // secure -> insecure: the alias only
		"_25._tcp.out TLSA 2 1 1 "+hash,
		"servfail A 127.0.0.13",
		"_25._tcp.servfail TLSA 3 1 1 "+hash,
		"bogus A 127.0.0.14",
		"_25._tcp.bogus TLSA 3 1 1 "+hash,
		"aserv A 127.0.0.15",
		"half A 127.0.0.17",
		"half AAAA ::1",
		"_25._tcp.half TLSA 3 1 1 "+hash,
		"noaddr TXT nothing",
		"island A 127.0.0.16",
	)
	// _tcp.island.a.test is an unsigned child zone: its TLSA answers are
	// insecure although the host's address is secure.
	w.AddZone("_tcp.island.a.test", smtptlstest.ZoneConfig{}).MustAdd("_25 TLSA 3 1 1 " + hash)
	b.MustAdd(
		"mx A 127.0.0.20",
		"mx AAAA ::1",
		"_25._tcp.mx TLSA 3 1 1 "+hash,
		"plain A 127.0.0.21",
	)
	u.MustAdd(
		"host A 127.0.0.30",
		"_25._tcp.host TLSA 3 1 1 "+hash,
		"back CNAME mx.b.test.", // insecure -> secure: insecure
		"broken A 127.0.0.31",
		"_25._tcp.broken TLSA 3 1 1 "+hash,
	)
	// An insecure host whose zone's servers fail TLSA queries (RFC 7672
	// 2.2.2's reason not to ask): an early query must change nothing.
	w.SetFault("_25._tcp.broken.unsigned.test", dns.TypeTLSA, smtptlstest.FaultServFail)
	w.SetFault("_25._tcp.servfail.a.test", dns.TypeTLSA, smtptlstest.FaultServFail)
	w.SetFault("_25._tcp.bogus.a.test", dns.TypeTLSA, smtptlstest.FaultBadSignature)
	// A bogus AAAA next to a secure A (the Stub sees SERVFAIL): a failed
	// query on the way to the TLSA records makes the host unusable (RFC
	// 7672 2.1.2), whatever the other family says.
	w.SetFault("half.a.test", dns.TypeAAAA, smtptlstest.FaultBadSignature)
	w.SetFault("aserv.a.test", 0, smtptlstest.FaultBadSignature) // A and AAAA bogus

	return w
}

func TestLookup(t *testing.T) {
	t.Parallel()
	w := lookupWorld(t)
	r := w.Resolver()
	tests := []struct {
		host     string
		level    dane.Level
		base     string
		usable   int
		rrset    int
		addrSec  resolver.Security
		wantKind dane.Kind
	}{
		{host: "MX.A.test.", level: dane.Authenticate, base: "mx.a.test", usable: 1, rrset: 2, addrSec: resolver.Secure},
		{host: "notlsa.a.test", level: dane.None, base: "notlsa.a.test", addrSec: resolver.Secure},
		{host: "unusable.a.test", level: dane.Encrypt, base: "unusable.a.test", rrset: 2, addrSec: resolver.Secure},
		{host: "alias.a.test", level: dane.Authenticate, base: "mx.b.test", usable: 1, rrset: 1, addrSec: resolver.Secure},
		{host: "alias2.a.test", level: dane.Authenticate, base: "alias2.a.test", usable: 1, rrset: 1, addrSec: resolver.Secure},
		{host: "out.a.test", level: dane.Authenticate, base: "out.a.test", usable: 1, rrset: 1, addrSec: resolver.Insecure},
		{host: "host.unsigned.test", level: dane.None, base: "host.unsigned.test", addrSec: resolver.Insecure},
		{host: "back.unsigned.test", level: dane.None, base: "back.unsigned.test", addrSec: resolver.Insecure},
		{host: "broken.unsigned.test", level: dane.None, base: "broken.unsigned.test", addrSec: resolver.Insecure},
		{host: "nosuch.a.test", wantKind: dane.KindNoAddress},
		{host: "noaddr.a.test", wantKind: dane.KindNoAddress},
		{host: "island.a.test", level: dane.None, base: "island.a.test", addrSec: resolver.Secure},
		{host: "servfail.a.test", wantKind: dane.KindTLSA},
		{host: "bogus.a.test", wantKind: dane.KindTLSA},
		{host: "aserv.a.test", wantKind: dane.KindAddress},
		{host: "half.a.test", wantKind: dane.KindAddress},
		// Addresses are refused: no DANE for them, and an MX target that
		// looks like one is never dialled as one.
		{host: "192.0.2.1", wantKind: dane.KindName},
		{host: "192.0.2.1.", wantKind: dane.KindName},
		{host: "[IPv6:2001:db8::1]", wantKind: dane.KindName},
		{host: "2001:db8::1", wantKind: dane.KindName},
		{host: "bad..name", wantKind: dane.KindName},
		// Refused, no longer rewritten or looked up (dnsname.Mail).
		{host: "\xff\xfe.a.test", wantKind: dane.KindName},
		{host: "127.1", wantKind: dane.KindName},
		{host: "-mx.a.test", wantKind: dane.KindName},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			t.Parallel()
			p, err := dane.Lookup(context.Background(), r, tc.host, 25)
			if tc.wantKind != 0 {
				var e *dane.Error
				if !errors.As(err, &e) || e.Kind != tc.wantKind {
					t.Fatalf("err = %v, want kind %v", err, tc.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Level != tc.level || p.Base != tc.base || len(p.Records) != tc.usable || len(p.RRset) != tc.rrset || p.AddrSecurity != tc.addrSec {
				t.Errorf("got level=%v base=%s usable=%d rrset=%d addr=%v; want %v %s %d %d %v",
					p.Level, p.Base, len(p.Records), len(p.RRset), p.AddrSecurity, tc.level, tc.base, tc.usable, tc.rrset, tc.addrSec)
			}
			if len(p.Addrs) == 0 {
				t.Error("no addresses")
			}
			if p.Level != dane.None && p.TLSAName != "_25._tcp."+p.Base {
				t.Errorf("TLSAName %q", p.TLSAName)
			}
		})
	}
}

func TestReferenceNames(t *testing.T) {
	t.Parallel()
	p := &dane.Policy{Host: "mx.example.net", Base: "mx.hosting.example"}
	for _, c := range []struct {
		secure   bool
		expanded string
		want     string
	}{
		{true, "", "mx.hosting.example example.org"},
		{true, "Example.COM.", "mx.hosting.example example.org example.com"},
		{false, "example.com", "mx.hosting.example mx.example.net"},
	} {
		got := strings.Join(dane.ReferenceNames(p, "EXAMPLE.org.", c.expanded, c.secure), " ")
		if got != c.want {
			t.Errorf("secure=%v expanded=%q: %q, want %q", c.secure, c.expanded, got, c.want)
		}
	}
}

// TestLookupDigestPreference: records of a matching type the sender's
// digest preference leaves out are unusable, and an RRset of only such
// records is Encrypt (RFC 6698 4.1, RFC 7671 9, RFC 7672 2.2).
func TestLookupDigestPreference(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("a.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd(
		"mx A 127.0.0.10",
		"_25._tcp.mx TLSA 3 1 1 "+hash,
	)
	ctx := context.Background()
	for _, c := range []struct {
		pref   []uint8
		level  dane.Level
		usable int
	}{
		{nil, dane.Authenticate, 1},
		{[]uint8{tlsverify.SHA256}, dane.Authenticate, 1},
		{[]uint8{tlsverify.SHA512}, dane.Encrypt, 0},
	} {
		p, err := dane.LookupWith(ctx, w.Resolver(), "mx.a.test", 25, dane.Options{DigestPreference: c.pref})
		if err != nil {
			t.Fatal(err)
		}
		if p.Level != c.level || len(p.Records) != c.usable || len(p.RRset) != 1 {
			t.Errorf("preference %v: level %v, %d usable of %d; want %v, %d", c.pref, p.Level, len(p.Records), len(p.RRset), c.level, c.usable)
		}
		if v := p.Verifier(); v.Usable() != (p.Level == dane.Authenticate) || !slices.Equal(v.DigestPreference, c.pref) {
			t.Errorf("preference %v: verifier usable %v with preference %v", c.pref, v.Usable(), v.DigestPreference)
		}
	}
}
