package resolver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// keysAskedWhileHeld looks up (name, qtype) with v while the DNS front
// holds back every answer about name, and reports whether each of the
// questions in want arrived meanwhile, that is before the answer did.
func keysAskedWhileHeld(t *testing.T, w *smtptlstest.World, v *resolver.Validating, name string, qtype uint16, want []dns.Question) bool {
	t.Helper()
	w.SetFaultDelay(time.Minute)
	w.SetFault(name, 0, smtptlstest.FaultDelay)
	defer w.SetFault(name, 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Lookup(ctx, name, qtype)
	}()
	defer func() {
		cancel()
		<-done
	}()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		all := true
		for _, q := range want {
			all = all && w.QueryCountFor(q.Name, q.Qtype) > 0
		}
		if all {
			return true
		}
	}
	for _, q := range want {
		if w.QueryCountFor(q.Name, q.Qtype) == 0 {
			t.Logf("%s %s not asked while the answer was held back", q.Name, dns.TypeToString[q.Qtype])
		}
	}
	return false
}

// TestValidatingPrefetchesKeys: a cold lookup asks for the DS and
// DNSKEY RRsets of the chain of trust at the same time as the answer,
// not after it: the zone of a name two labels deep is guessed, and the
// keys of every zone above it up to the anchor are fetched at once. For
// a name in a signed zone that is the whole chain; for a name in an
// unsigned zone below a signed TLD, the proof of the insecure
// delegation.
func TestValidatingPrefetchesKeys(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	kitLeafData(w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}))
	w.AddZone("unsigned.test.", smtptlstest.ZoneConfig{}).MustAdd("host A 192.0.2.9")
	q := func(name string, t uint16) dns.Question { return dns.Question{Name: name, Qtype: t} }
	chain := []dns.Question{
		q(".", dns.TypeDNSKEY), q("test.", dns.TypeDS), q("test.", dns.TypeDNSKEY),
		q("example.test.", dns.TypeDS), q("example.test.", dns.TypeDNSKEY),
	}
	if !keysAskedWhileHeld(t, w, kitValidator(w), "mail.example.test.", dns.TypeA, chain) {
		t.Error("signed zone: the chain of trust was not asked for with the answer")
	}
	if !keysAskedWhileHeld(t, w, kitValidator(w), "host.unsigned.test.", dns.TypeA, []dns.Question{q("unsigned.test.", dns.TypeDS)}) {
		t.Error("unsigned zone: the DS denial was not asked for with the answer")
	}
}

// TestValidatingPrefetchBounded: the keys asked for with the answer count
// against the lookup's query limit like any other query (MaxQueries): a
// cold lookup that needs six queries (the answer, DS and DNSKEY of the
// domain and the TLD, the root DNSKEY) is Bogus under a limit of five
// and Secure under six; a warm one asks one. A guess that misses (a zone
// three labels deep) costs its queries and still validates.
func TestValidatingPrefetchBounded(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	kitLeafData(w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}))
	w.AddZone("deep.example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("mail A 192.0.2.7")
	ctx := context.Background()
	for _, c := range []struct {
		max  int
		want string
	}{{5, "bogus"}, {6, "secure"}} {
		v := kitValidator(w)
		v.MaxQueries = c.max
		a, err := v.Lookup(ctx, "mail.example.test", dns.TypeA)
		got := kitVerdict(a, err)
		if got != c.want {
			t.Errorf("cold lookup under MaxQueries %d: %s, want %s", c.max, got, c.want)
		}
		if got == "bogus" && !strings.Contains(err.Error(), "work limit") {
			t.Errorf("MaxQueries %d: %v, want a work limit", c.max, err)
		}
		if got == "secure" {
			if n := v.Stats().Queries; n != 6 {
				t.Errorf("cold lookup: %d queries, want 6", n)
			}
			before := v.Stats().Queries
			if got := kitVerdict(v.Lookup(ctx, "mail.example.test", dns.TypeAAAA)); got != "secure" {
				t.Errorf("warm lookup: %s", got)
			}
			if n := v.Stats().Queries - before; n != 1 {
				t.Errorf("warm lookup: %d queries, want 1", n)
			}
		}
	}
	v := kitValidator(w)
	if got := kitVerdict(v.Lookup(ctx, "mail.deep.example.test", dns.TypeA)); got != "secure" {
		t.Errorf("zone three labels deep: %s", got)
	}
}

// TestValidatingUnsignedAtKnownApex: an RRset without signatures owned by
// the apex of a zone whose keys are cached is Bogus: the walk down from
// that zone has no name to ask about (a regression test for the walk's
// prefetch check, which once indexed an empty list), and so is one at
// the apex of the trust anchor before any key is cached.
func TestValidatingUnsignedAtKnownApex(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	kitLeafData(w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}))
	ctx := context.Background()
	v := kitValidator(w)
	if got := kitVerdict(v.Lookup(ctx, "mail.example.test", dns.TypeA)); got != "secure" {
		t.Fatalf("warm-up: %s", got)
	}
	w.SetFault("example.test", dns.TypeMX, smtptlstest.FaultStripRRSIGs)
	if got := kitVerdict(v.Lookup(ctx, "example.test", dns.TypeMX)); got != "bogus" {
		t.Errorf("unsigned MX at a known secure apex: %s, want bogus", got)
	}
	w.SetFault(".", dns.TypeNS, smtptlstest.FaultStripRRSIGs)
	if got := kitVerdict(kitValidator(w).Lookup(ctx, ".", dns.TypeNS)); got != "bogus" {
		t.Errorf("unsigned NS at the anchor, cold: %s, want bogus", got)
	}
}
