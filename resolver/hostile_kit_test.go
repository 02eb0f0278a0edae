package resolver_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestHostileKit runs the Stub against the test kit's DNS front with its
// server faults: the same hostile behaviours as hostile_test.go, from a
// recursive front over a signed hierarchy, through the public kit.
func TestHostileKit(t *testing.T) {
	leakcheck.Check(t)
	w := smtptlstest.New(t)
	one := w.AddZone("one.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	two := w.AddZone("two.test", smtptlstest.ZoneConfig{})
	one.MustAdd(
		"mx A 192.0.2.1",
		"wrongid A 192.0.2.2",
		"trunc A 192.0.2.3",
		"silent A 192.0.2.4",
		"slow A 192.0.2.5",
		"sf A 192.0.2.6",
		"alias CNAME hop.two.test.",
		"loop CNAME loop.two.test.",
	)
	two.MustAdd(
		"hop CNAME final.one.test.",
		"loop CNAME loop.one.test.",
	)
	one.MustAdd("final A 192.0.2.7")
	// A chain of 12 links alternating between the zones.
	for i := range 12 {
		z, next := one, "c"+strconv.Itoa(i+1)+".two.test."
		if i%2 == 1 {
			z, next = two, "c"+strconv.Itoa(i+1)+".one.test."
		}
		z.MustAdd("c" + strconv.Itoa(i) + " CNAME " + next)
	}
	one.MustAdd("c12 A 192.0.2.8")
	// A TXT RRset too large for UDP: TC, then TCP.
	var big []string
	for i := range 200 {
		big = append(big, `big TXT "`+strconv.Itoa(i)+strings.Repeat("t", 250)+`"`)
	}
	one.MustAdd(big...)

	w.SetFault("wrongid.one.test", 0, smtptlstest.FaultWrongID)
	w.SetFault("trunc.one.test", 0, smtptlstest.FaultTruncate)
	w.SetFault("silent.one.test", 0, smtptlstest.FaultTimeout)
	w.SetFault("slow.one.test", 0, smtptlstest.FaultDelay)
	w.SetFaultDelay(2 * time.Second)
	w.SetFault("sf.one.test", 0, smtptlstest.FaultServFail)
	w.SetFault("hop.two.test", 0, smtptlstest.FaultPartialChain)

	s := w.Resolver()
	s.Timeout = 300 * time.Millisecond

	cases := []struct {
		name   string
		qname  string
		qtype  uint16
		want   string // the A record wanted, or ""
		nrecs  int
		kind   resolver.Kind
		secure bool
	}{
		{name: "wrong ID and question first", qname: "wrongid.one.test", qtype: dns.TypeA, want: "192.0.2.2", secure: true},
		{name: "truncated over UDP", qname: "trunc.one.test", qtype: dns.TypeA, want: "192.0.2.3", secure: true},
		{name: "silent", qname: "silent.one.test", qtype: dns.TypeA, kind: resolver.KindTimeout},
		{name: "slower than the timeout", qname: "slow.one.test", qtype: dns.TypeA, kind: resolver.KindTimeout},
		{name: "servfail", qname: "sf.one.test", qtype: dns.TypeA, kind: resolver.KindServFail},
		{name: "partial chain across zones", qname: "alias.one.test", qtype: dns.TypeA, want: "192.0.2.7"},
		{name: "loop across zones", qname: "loop.one.test", qtype: dns.TypeA, kind: resolver.KindLoop},
		{name: "12-link chain", qname: "c0.one.test", qtype: dns.TypeA, kind: resolver.KindLoop},
		{name: "large TXT over TCP", qname: "big.one.test", qtype: dns.TypeTXT, nrecs: 200, secure: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			a, err := s.Lookup(context.Background(), tc.qname, tc.qtype)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			if tc.kind != resolver.KindUnknown {
				var e *resolver.Error
				if !errors.As(err, &e) || a != nil {
					t.Fatalf("got %v, %v; want a *resolver.Error", a, err)
				}
				// The front gives up on long chains itself (SERVFAIL),
				// or hands them over for the Stub to stop.
				if e.Kind != tc.kind && !(tc.kind == resolver.KindLoop && e.Kind == resolver.KindServFail) {
					t.Fatalf("kind %v (%v), want %v", e.Kind, err, tc.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" {
				if len(a.Records) != 1 || a.Records[0].(*dns.A).A.String() != tc.want {
					t.Fatalf("records %v, want %s", a.Records, tc.want)
				}
			} else if len(a.Records) != tc.nrecs {
				t.Fatalf("%d records, want %d", len(a.Records), tc.nrecs)
			}
			for _, rr := range a.Records {
				if rr.Header().Name != a.Target() || rr.Header().Rrtype != tc.qtype {
					t.Errorf("stray record %v", rr)
				}
			}
			if (a.Security == resolver.Secure) != tc.secure {
				t.Errorf("security %v", a.Security)
			}
		})
	}
}
