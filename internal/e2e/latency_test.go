package e2e_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

var rttFlag = flag.Duration("rtt", 20*time.Millisecond,
	"simulated round trip time of BenchmarkCriticalPath (DNS, TCP, TLS and HTTP alike)")

// pathCase is one domain configuration of BenchmarkCriticalPath, with the
// protocol's minimum number of sequential round trips for a cold
// Evaluate through a Stub.
type pathCase struct {
	name  string
	scen  smtptlstest.Scenario
	level smtptls.Level
	// build, when set, builds the domain instead of AddDomain(scen).
	build func(w *smtptlstest.World, d string)
	// min is the protocol minimum with a Stub (a validating recursive
	// resolver upstream): see BenchmarkCriticalPath.
	min int
}

var pathCases = []pathCase{
	// MX; then A, AAAA and TLSA of both hosts at once: the hosts lie in
	// the zone of the secure MX RRset, so their TLSA records are asked
	// for with their addresses.
	{name: "DANE", scen: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, MX: 2}, level: smtptls.DANE, min: 2},
	// MX; addresses; TLSA: hosts of a zone the Evaluator knows nothing
	// about get no early TLSA query (RFC 7672 2.2.2).
	{name: "DANE-other-zone", level: smtptls.DANE, build: otherZoneMX, min: 3},
	// TXT, MX and the policy host's A and AAAA at once; TCP; TLS 1.3;
	// HTTP. The hosts' address lookups (no TLSA: the zone is unsigned)
	// overlap.
	{name: "MTA-STS", scen: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, MX: 2, Unsigned: true}, level: smtptls.STSEnforce, min: 4},
	// The DANE lookups (2) overlap the policy fetch (4).
	{name: "both", scen: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, MX: 2}, level: smtptls.DANE, min: 4},
}

// otherZoneMX builds d (signed) with two MX hosts in another signed
// zone, each with a DANE-EE record.
func otherZoneMX(w *smtptlstest.World, d string) {
	hz := w.AddZone("hosting.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	dz := w.AddZone(d, smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	for i := 1; i <= 2; i++ {
		host := fmt.Sprintf("mx%d.hosting.test", i)
		hz.MustAdd(fmt.Sprintf("mx%d A 127.0.0.%d", i, 40+i),
			fmt.Sprintf("_25._tcp.mx%d TLSA 3 1 1 %s", i, strings.Repeat("ab", 32)))
		dz.MustAdd(fmt.Sprintf("@ MX %d %s.", 10*i, host))
	}
}

// resolverCase builds a fresh resolver stack for one cold Evaluate.
type resolverCase struct {
	name string
	// extra is the protocol minimum's additional rounds over the Stub's.
	extra int
	// stack returns the function that builds one iteration's resolver
	// (called once per benchmark, so that state can outlive iterations).
	stack func(w *smtptlstest.World) func() resolver.Resolver
}

var resolverCases = []resolverCase{
	{"Stub", 0, func(w *smtptlstest.World) func() resolver.Resolver {
		return func() resolver.Resolver { return &resolver.Cache{Resolver: w.Resolver()} }
	}},
	// A validator that starts cold, from the root anchors: the DS and
	// DNSKEY RRsets of the root, the TLD and the domain are asked for
	// with the first answer (the zone of a name two labels deep is
	// guessed), so no round is added.
	{"Validating", 0, func(w *smtptlstest.World) func() resolver.Resolver {
		return func() resolver.Resolver {
			return &resolver.Cache{Resolver: &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}}
		}
	}},
	// A validator whose keys of the whole chain are cached (one per
	// benchmark, warmed by the first Evaluate), under a fresh answer
	// cache: every answer costs its query and one verification.
	{"Validating-warm-chain", 0, func(w *smtptlstest.World) func() resolver.Resolver {
		v := &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}
		return func() resolver.Resolver { return &resolver.Cache{Resolver: v} }
	}},
}

// coldEvaluator is an Evaluator with nothing cached but what r holds: a
// fresh MTA-STS client (the Evaluator's default, whose dialer resolves the
// policy host with r, and dials the addresses the client looked up with
// the TXT record) and policy cache. Its fetches close their connections
// (RFC 8461 fetches are rare), so nothing carries over.
func coldEvaluator(w *smtptlstest.World, r resolver.Resolver) *smtptls.Evaluator {
	return &smtptls.Evaluator{
		Resolver:    r,
		Roots:       w.CA().Pool(),
		DialContext: w.DialContext,
		Logger:      discard,
	}
}

// checkCold fails unless dec is the complete decision of a pathCase
// domain, its policy fetched during this evaluation.
func checkCold(tb testing.TB, pc pathCase, dec *smtptls.Decision, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
	hosts := dec.Deliverable()
	if len(hosts) != 2 {
		tb.Fatalf("%d deliverable hosts of %d", len(hosts), len(dec.Hosts))
	}
	for _, h := range hosts {
		if h.Level != pc.level {
			tb.Fatalf("%s: level %v, want %v", h.Name, h.Level, pc.level)
		}
	}
	if pc.scen.STS != smtptlstest.STSOff && (dec.STS == nil || dec.STS.Source != mtasts.SourceFetch) {
		tb.Fatalf("MTA-STS policy not fetched: %+v", dec.STS)
	}
}

// BenchmarkCriticalPath counts the round trips on the critical path of a
// cold Evaluate: the median wall time of an Evaluate divided by a simulated
// round trip time (-rtt, 20 ms by default, applied to every DNS answer,
// TCP connect, TLS handshake and HTTP response), large enough that
// loopback and CPU costs are a small fraction. It reports RTTs next to
// min-RTTs, the protocol minimum, and x-min, their ratio (target <= 1.1):
//
//   - Stub, DANE domain with 2 MX in its own signed zone: 2 (MX; then
//     addresses and TLSA at once).
//   - Stub, DANE domain with 2 MX in another zone: 3 (MX; addresses;
//     TLSA), since RFC 7672 2.2.2 keeps TLSA queries for hosts of unknown
//     zones until their addresses are known to be secure.
//   - Stub, MTA-STS domain, no cached policy: 4 (TXT, MX and the policy
//     host's address at once; TCP; TLS 1.3; HTTP), the hosts' lookups
//     overlapping.
//   - Stub, both: 4.
//   - Validating, from the root anchors (a cold chain) or with every
//     zone's keys cached (a warm chain): the Stub's minimum, since the
//     DS and DNSKEY RRsets of the chain are asked for with the first
//     answer.
//
// The policy host is resolved as the Evaluator's default MTA-STS client
// does: with the Evaluator's resolver, over the World's DNS front, which
// costs the round trip it costs on the Internet; only its addresses reach
// World.DialContext.
func BenchmarkCriticalPath(b *testing.B) {
	rtt := *rttFlag
	for _, rc := range resolverCases {
		for _, pc := range pathCases {
			b.Run(rc.name+"/"+pc.name, func(b *testing.B) {
				w := smtptlstest.New(b)
				d := "critical.test"
				if pc.build != nil {
					pc.build(w, d)
				} else {
					w.AddDomain(d, pc.scen)
				}
				newResolver := rc.stack(w)
				ctx := context.Background()
				// Warm the World's own signature cache: an
				// authoritative server's zone is signed in advance.
				dec, err := coldEvaluator(w, newResolver()).Evaluate(ctx, d)
				checkCold(b, pc, dec, err)
				w.SetDelay(rtt)
				w.SetNetDelay(rtt)
				b.ReportAllocs()
				var took []time.Duration
				for b.Loop() {
					ev := coldEvaluator(w, newResolver())
					start := time.Now()
					dec, err := ev.Evaluate(ctx, d)
					took = append(took, time.Since(start))
					checkCold(b, pc, dec, err)
				}
				rtts := float64(median(took)) / float64(rtt)
				minimum := float64(pc.min + rc.extra)
				b.ReportMetric(rtts, "RTTs")
				b.ReportMetric(minimum, "min-RTTs")
				b.ReportMetric(rtts/minimum, "x-min")
			})
		}
	}
}

// median returns the median of ds (the upper one of an even count), which
// a shared machine's scheduling stalls move less than the mean.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestEarlyLookupsEnd: the lookups the Evaluator starts early and then
// abandons (a TLSA query for a host whose addresses turn out insecure,
// here one its zone never answers; the policy host of a domain without
// a TXT record) and those the validator starts with an answer all end,
// after complete decisions and after a cancelled one: nothing is left
// running (leakcheck), through the Stub and the in-process validator.
func TestEarlyLookupsEnd(t *testing.T) {
	leakcheck.Check(t)
	w := smtptlstest.New(t)
	w.AddDomain("dane.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, MX: 2})
	w.AddDomain("plain.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	signed := smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}
	w.AddZone("child.test", signed).MustAdd("@ MX 10 mx.sub.child.test.")
	w.AddZone("sub.child.test", smtptlstest.ZoneConfig{}).MustAdd("mx A 127.0.3.1",
		"_25._tcp.mx TLSA 3 1 1 "+strings.Repeat("ab", 32))
	w.SetFault("_25._tcp.mx.sub.child.test", dns.TypeTLSA, smtptlstest.FaultTimeout)
	stub := w.Resolver()
	stub.Timeout = time.Second
	stacks := map[string]func() resolver.Resolver{
		"stub": func() resolver.Resolver { return &resolver.Cache{Resolver: stub} },
		"validating": func() resolver.Resolver {
			return &resolver.Cache{Resolver: &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors(), Timeout: time.Second}}
		},
	}
	for name, stack := range stacks {
		ev := coldEvaluator(w, stack())
		for _, d := range []string{"dane.test", "plain.test", "child.test"} {
			dec, err := ev.Evaluate(context.Background(), d)
			if err != nil || len(dec.Deliverable()) == 0 {
				t.Fatalf("%s %s: %+v, %v", name, d, dec, err)
			}
		}
		// Cancelled while the TLSA query it asked early waits.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		w.SetFault("mx.sub.child.test", 0, smtptlstest.FaultDelay)
		ev = coldEvaluator(w, stack())
		if dec, err := ev.Evaluate(ctx, "child.test"); err == nil && len(dec.Deliverable()) != 0 {
			t.Errorf("%s: a deliverable host although its addresses were held back", name)
		}
		cancel()
		w.SetFault("mx.sub.child.test", 0, 0)
	}
}
