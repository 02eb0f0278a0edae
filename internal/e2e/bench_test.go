package e2e_test

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// benchWorld is a world with one DANE + MTA-STS domain of two MX hosts.
func benchWorld(b *testing.B) (*smtptlstest.World, string) {
	w := smtptlstest.New(b)
	w.AddDomain("bench.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, MX: 2})
	return w, "bench.test"
}

func cachedEvaluator(w *smtptlstest.World) *smtptls.Evaluator {
	r := &resolver.Cache{Resolver: w.Resolver()}
	return &smtptls.Evaluator{
		Resolver: r,
		STS:      &mtasts.Client{Resolver: r, HTTPClient: w.HTTPClient(), Logger: discard},
		Roots:    w.CA().Pool(),
		Logger:   discard,
	}
}

// BenchmarkEvaluateWarm: every DNS answer and the MTA-STS policy cached
// and decoded. Compare with BenchmarkDNSRoundTrip (target: 5x faster than
// one loopback round trip, at most 50 allocations).
func BenchmarkEvaluateWarm(b *testing.B) {
	w, d := benchWorld(b)
	ev := cachedEvaluator(w)
	ctx := context.Background()
	if _, err := ev.Evaluate(ctx, d); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dec, err := ev.Evaluate(ctx, d)
		if err != nil || len(dec.Deliverable()) != 2 {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateCold: nothing cached (a fresh Evaluator and caches per
// iteration), loopback DNS and HTTPS.
func BenchmarkEvaluateCold(b *testing.B) {
	w, d := benchWorld(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ev := cachedEvaluator(w)
		if _, err := ev.Evaluate(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDNSRoundTrip is one uncached Stub lookup over loopback UDP: the
// unit the warm Evaluate target is measured against.
func BenchmarkDNSRoundTrip(b *testing.B) {
	w, d := benchWorld(b)
	r := w.Resolver()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Lookup(ctx, d, dns.TypeMX); err != nil {
			b.Fatal(err)
		}
	}
}
