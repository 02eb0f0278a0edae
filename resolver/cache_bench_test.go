package resolver_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// cacheWorld is a signed zone with n hosts, each with an MX RRset of two
// records, an address and a TLSA record: the answers an MTA caches.
func cacheWorld(tb testing.TB, n int) *smtptlstest.World {
	tb.Helper()
	w := smtptlstest.New(tb)
	z := w.AddZone("cache.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	var b strings.Builder
	digest := strings.Repeat("5a", 32)
	for i := range n {
		fmt.Fprintf(&b, "d%05d MX 10 mx1.d%05d\nd%05d MX 20 mx2.d%05d\n", i, i, i, i)
		fmt.Fprintf(&b, "mx1.d%05d A 192.0.2.1\n_25._tcp.mx1.d%05d TLSA 3 1 1 %s\n", i, i, digest)
	}
	z.MustAdd(b.String())
	return w
}

// cacheQuestion is the i-th question of kind qtype in a cacheWorld.
func cacheQuestion(i int, qtype uint16) string {
	switch qtype {
	case dns.TypeMX:
		return fmt.Sprintf("d%05d.cache.test.", i)
	case dns.TypeTLSA:
		return fmt.Sprintf("_25._tcp.mx1.d%05d.cache.test.", i)
	}
	return fmt.Sprintf("mx1.d%05d.cache.test.", i)
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// cacheBytesPerAnswer fills a Cache with n answers of qtype and returns
// the live heap it holds per answer. A first pass through another Cache
// makes the World sign and count every question, so that only the
// Cache's growth is measured.
func cacheBytesPerAnswer(tb testing.TB, w *smtptlstest.World, n int, qtype uint16) float64 {
	tb.Helper()
	ctx := context.Background()
	fill := func(c *resolver.Cache) {
		for i := range n {
			if a, err := c.Lookup(ctx, cacheQuestion(i, qtype), qtype); err != nil || len(a.Records) == 0 {
				tb.Fatalf("%s: %v %v", cacheQuestion(i, qtype), a, err)
			}
		}
	}
	fill(&resolver.Cache{Resolver: w.Resolver(), MaxEntries: n})
	stub := w.Resolver()
	h0 := liveHeap()
	c := &resolver.Cache{Resolver: stub, MaxEntries: n}
	fill(c)
	h1 := liveHeap()
	runtime.KeepAlive(c)
	runtime.KeepAlive(stub)
	if c.Len() != n {
		tb.Fatalf("%d entries, want %d", c.Len(), n)
	}
	return float64(int64(h1)-int64(h0)) / float64(n)
}

// BenchmarkCacheEntry reports the live heap one cached answer costs in a
// resolver.Cache ("B/entry"): an MX RRset of two records, an A record, a
// TLSA record (SHA-256), as a Stub returns them (DNSSEC-validated by the
// World's front, RRSIGs not kept).
func BenchmarkCacheEntry(b *testing.B) {
	const n = 2000
	w := cacheWorld(b, n)
	for _, qt := range []uint16{dns.TypeMX, dns.TypeA, dns.TypeTLSA} {
		b.Run(dns.TypeToString[qt], func(b *testing.B) {
			var per float64
			b.ReportAllocs()
			for b.Loop() {
				per = cacheBytesPerAnswer(b, w, n, qt)
			}
			b.ReportMetric(per, "B/entry")
		})
	}
}

// BenchmarkCacheHit is a cached lookup: the cost every DNS question of a
// warm Evaluate pays.
func BenchmarkCacheHit(b *testing.B) {
	w := cacheWorld(b, 1)
	c := &resolver.Cache{Resolver: w.Resolver()}
	ctx := context.Background()
	name := cacheQuestion(0, dns.TypeMX)
	if _, err := c.Lookup(ctx, name, dns.TypeMX); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Lookup(ctx, name, dns.TypeMX); err != nil {
			b.Fatal(err)
		}
	}
}
