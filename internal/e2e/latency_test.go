package e2e_test

import (
	"context"
	"flag"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/smtptls/smtptls"
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
	// min is the protocol minimum with a Stub (a validating recursive
	// resolver upstream): see BenchmarkCriticalPath.
	min int
}

var pathCases = []pathCase{
	// MX; A and AAAA of both hosts at once; TLSA of both at once.
	{"DANE", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, MX: 2}, smtptls.DANE, 3},
	// TXT and MX at once; the policy host's A and AAAA; TCP; TLS 1.3;
	// HTTP. The hosts' address lookups (no TLSA: the zone is unsigned)
	// overlap.
	{"MTA-STS", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, MX: 2, Unsigned: true}, smtptls.STSEnforce, 5},
	// The DANE lookups (3) overlap the policy fetch (5).
	{"both", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, MX: 2}, smtptls.DANE, 5},
}

// resolverCase builds a fresh resolver stack for one cold Evaluate.
type resolverCase struct {
	name string
	// extra is the protocol minimum's additional rounds: a validator
	// that starts cold fetches the DS and DNSKEY RRsets of the root, the
	// TLD and the domain, at best all at once after the first answer.
	extra int
	new   func(w *smtptlstest.World) resolver.Resolver
}

var resolverCases = []resolverCase{
	{"Stub", 0, func(w *smtptlstest.World) resolver.Resolver {
		return &resolver.Cache{Resolver: w.Resolver()}
	}},
	{"Validating", 1, func(w *smtptlstest.World) resolver.Resolver {
		return &resolver.Cache{Resolver: &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}}
	}},
}

// coldEvaluator is an Evaluator with nothing cached: a fresh resolver
// stack, MTA-STS client and policy cache. hc is shared: its fetches close
// their connections (RFC 8461 fetches are rare), so nothing carries over.
func coldEvaluator(w *smtptlstest.World, r resolver.Resolver, hc *http.Client) *smtptls.Evaluator {
	return &smtptls.Evaluator{
		Resolver: r,
		STS:      &mtasts.Client{Resolver: r, HTTPClient: hc, Logger: discard},
		Roots:    w.CA().Pool(),
		Logger:   discard,
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
// min-RTTs, the protocol minimum, and x-min, their ratio (target <= 1.15):
//
//   - Stub, DANE domain with 2 MX: 3 (MX; addresses; TLSA).
//   - Stub, MTA-STS domain, no cached policy: 5 (TXT with MX; the policy
//     host's address; TCP; TLS 1.3; HTTP), the hosts' lookups overlapping.
//   - Stub, both: 5.
//   - Validating: the Stub minimum plus one round for the DS and DNSKEY
//     RRsets of every zone of the chain, fetched concurrently.
//
// The policy host's address is resolved through the DNS front (the
// HTTP client dials with World.DialContextWith), as a real dialer does.
func BenchmarkCriticalPath(b *testing.B) {
	rtt := *rttFlag
	for _, rc := range resolverCases {
		for _, pc := range pathCases {
			b.Run(rc.name+"/"+pc.name, func(b *testing.B) {
				w := smtptlstest.New(b)
				d := "critical.test"
				w.AddDomain(d, pc.scen)
				hc := w.HTTPClientWith(nil)
				ctx := context.Background()
				// Warm the World's own signature cache: an
				// authoritative server's zone is signed in advance.
				dec, err := coldEvaluator(w, rc.new(w), hc).Evaluate(ctx, d)
				checkCold(b, pc, dec, err)
				w.SetDelay(rtt)
				w.SetNetDelay(rtt)
				b.ReportAllocs()
				var took []time.Duration
				for b.Loop() {
					ev := coldEvaluator(w, rc.new(w), hc)
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
