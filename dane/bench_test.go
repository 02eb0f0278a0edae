package dane_test

import (
	"context"
	"testing"

	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// BenchmarkLookupWarm is the DANE policy of one MX host with every answer
// (A, AAAA, TLSA) in a resolver.Cache: the per-host cost of a warm
// Evaluate.
func BenchmarkLookupWarm(b *testing.B) {
	w := smtptlstest.New(b)
	w.AddDomain("bench.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	r := &resolver.Cache{Resolver: w.Resolver()}
	ctx := context.Background()
	if p, err := dane.Lookup(ctx, r, "mx1.bench.test", 25); err != nil || p.Level != dane.Authenticate {
		b.Fatal(p, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dane.Lookup(ctx, r, "mx1.bench.test", 25); err != nil {
			b.Fatal(err)
		}
	}
}
