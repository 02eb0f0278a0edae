package resolver_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// cacheWorld has two zones, cache.test (signed) and plain.test
// (unsigned), each with n hosts, each host with an MX RRset of two
// records, an address, a TLSA record and no AAAA: the answers an MTA
// caches.
func cacheWorld(tb testing.TB, n int) *smtptlstest.World {
	tb.Helper()
	w := smtptlstest.New(tb)
	for _, zc := range []struct {
		name    string
		signing smtptlstest.Signing
	}{{"cache.test", smtptlstest.NSEC}, {"plain.test", smtptlstest.Unsigned}} {
		z := w.AddZone(zc.name, smtptlstest.ZoneConfig{Signing: zc.signing})
		var b strings.Builder
		digest := strings.Repeat("5a", 32)
		for i := range n {
			fmt.Fprintf(&b, "d%05d MX 10 mx1.d%05d\nd%05d MX 20 mx2.d%05d\n", i, i, i, i)
			fmt.Fprintf(&b, "mx1.d%05d A 192.0.2.1\n_25._tcp.mx1.d%05d TLSA 3 1 1 %s\n", i, i, digest)
		}
		z.MustAdd(b.String())
	}
	return w
}

// cacheQuestion is the i-th question of kind qtype in the signed zone of
// a cacheWorld (AAAA: a NODATA answer).
func cacheQuestion(i int, qtype uint16) string { return zoneQuestion("cache.test", i, qtype) }

// zoneQuestion is the i-th question of kind qtype in a zone of a
// cacheWorld.
func zoneQuestion(zone string, i int, qtype uint16) string {
	switch qtype {
	case dns.TypeMX:
		return fmt.Sprintf("d%05d.%s.", i, zone)
	case dns.TypeTLSA:
		return fmt.Sprintf("_25._tcp.mx1.d%05d.%s.", i, zone)
	}
	return fmt.Sprintf("mx1.d%05d.%s.", i, zone)
}

// closeIdle closes the sockets each resolver keeps between queries (those
// that keep some), so that a socket closed by the idle timer in the
// middle of a measurement does not count as memory freed.
func closeIdle(rs ...any) {
	for _, r := range rs {
		if c, ok := r.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// heapReading measures the heap retained per item once; the estimate is
// deterministic, the heap is not: goroutines left by earlier tests (a
// server shutting down, a speculative fetch finishing) free or allocate
// memory during a reading.
type heapReading func() (heap, estimate float64)

// steadyHeap returns measure's reading when the estimate is within
// [lo, hi] times the heap; otherwise it measures four more times and
// returns the median heap of the five readings. A wrong estimate is
// wrong in every reading and still fails; a disturbed reading does not
// fail the test on its own.
func steadyHeap(measure heapReading, lo, hi float64) (heap, estimate float64) {
	heap, estimate = measure()
	if estimate >= heap*lo && estimate <= heap*hi {
		return heap, estimate
	}
	heaps := []float64{heap}
	for range 4 {
		h, _ := measure()
		heaps = append(heaps, h)
	}
	slices.Sort(heaps)
	return heaps[len(heaps)/2], estimate
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// cacheBytesPerAnswer fills a Cache over upstream with n answers of
// qtype and returns the live heap it holds per answer and its own
// estimate (Cache.Bytes) per answer. Passes through other Caches first
// make the World sign and count every question (and a Validating
// validate the zone's keys), so that only the Cache's growth is measured.
func cacheBytesPerAnswer(tb testing.TB, upstream resolver.Resolver, zone string, n int, qtype uint16) (heap, estimate float64) {
	tb.Helper()
	ctx := context.Background()
	fill := func(c *resolver.Cache) {
		for i := range n {
			q := zoneQuestion(zone, i, qtype)
			a, err := c.Lookup(ctx, q, qtype)
			if err != nil || (len(a.Records) == 0) != (qtype == dns.TypeAAAA) {
				tb.Fatalf("%s: %v %v", q, a, err)
			}
		}
	}
	// The World's own memory settles after two passes.
	fill(&resolver.Cache{Resolver: upstream})
	fill(&resolver.Cache{Resolver: upstream})
	closeIdle(upstream)
	h0 := liveHeap()
	c := &resolver.Cache{Resolver: upstream}
	fill(c)
	closeIdle(upstream)
	h1 := liveHeap()
	runtime.KeepAlive(c)
	runtime.KeepAlive(upstream)
	if c.Len() != n {
		tb.Fatalf("%d entries, want %d", c.Len(), n)
	}
	return float64(int64(h1)-int64(h0)) / float64(n), float64(c.Bytes()) / float64(n)
}

// cacheUpstreams are the resolvers a Cache usually sits on: a Stub (whose
// records share their owner name with the answer) and a Validating
// (whose records do not).
func cacheUpstreams(w *smtptlstest.World) map[string]resolver.Resolver {
	return map[string]resolver.Resolver{
		"Stub":       w.Resolver(),
		"Validating": &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()},
	}
}

var cacheTypes = []uint16{dns.TypeMX, dns.TypeA, dns.TypeAAAA, dns.TypeTLSA}

// TestCacheBytesPerEntry checks that the size a Cache charges an entry
// against MaxBytes is the heap the entry retains, for the
// answers an MTA caches, from a Stub and from a Validating (whose
// Insecure answers carry a Reason). Not parallel: it measures the heap.
// Charging less than the heap by more than 10% fails (the cache would
// outgrow MaxBytes); charging more fails beyond 20%, a margin for the
// heap's own noise (seen: 232 B measured for 256 B charged), since
// over-charging only makes the cache hold somewhat fewer entries.
func TestCacheBytesPerEntry(t *testing.T) {
	const n = 500
	w := cacheWorld(t, n)
	for name, up := range cacheUpstreams(w) {
		for _, zone := range []string{"cache.test", "plain.test"} {
			for _, qt := range cacheTypes {
				if zone == "plain.test" && qt == dns.TypeTLSA {
					continue // an MTA does not ask for insecure TLSA records
				}
				heap, est := steadyHeap(func() (float64, float64) {
					return cacheBytesPerAnswer(t, up, zone, n, qt)
				}, 0.9, 1.2)
				what := fmt.Sprintf("%s %s %s", name, zone, dns.TypeToString[qt])
				t.Logf("%s: %.0f B per entry on the heap, %.0f B estimated", what, heap, est)
				if est < heap*0.9 || est > heap*1.2 {
					t.Errorf("%s: the Cache charges %.0f B per entry, the heap grew %.0f B", what, est, heap)
				}
			}
		}
	}
}

// TestCacheMaxBytes: the byte bound holds, whatever the size of the
// answers, and the least recently used answers go first.
func TestCacheMaxBytes(t *testing.T) {
	t.Parallel()
	const n = 200
	w := cacheWorld(t, n)
	ctx := context.Background()
	probe := &resolver.Cache{Resolver: w.Resolver()}
	if _, err := probe.Lookup(ctx, cacheQuestion(0, dns.TypeMX), dns.TypeMX); err != nil {
		t.Fatal(err)
	}
	per := probe.Bytes()
	// Room for 50 MX answers.
	c := &resolver.Cache{Resolver: w.Resolver(), MaxBytes: 50*per + per/2}
	for i := range n {
		if _, err := c.Lookup(ctx, cacheQuestion(i, dns.TypeMX), dns.TypeMX); err != nil {
			t.Fatal(err)
		}
		// Keep the first answer in use: it must survive.
		if _, ok, _ := c.Peek(cacheQuestion(0, dns.TypeMX), dns.TypeMX); !ok {
			t.Fatalf("after %d answers, the most recently used one was evicted", i+1)
		}
		if b := c.Bytes(); b > c.MaxBytes {
			t.Fatalf("%d bytes cached, MaxBytes %d", b, c.MaxBytes)
		}
	}
	if c.Len() != 50 {
		t.Errorf("%d entries, want 50", c.Len())
	}
	if _, ok, _ := c.Peek(cacheQuestion(1, dns.TypeMX), dns.TypeMX); ok {
		t.Error("the least recently used answer is still cached")
	}
	if _, ok, _ := c.Peek(cacheQuestion(n-1, dns.TypeMX), dns.TypeMX); !ok {
		t.Error("the most recently stored answer is not cached")
	}
	// Every entry used since the last eviction: the bound still holds,
	// and the new answer stays.
	for i := n - 49; i < n; i++ {
		if _, ok, _ := c.Peek(cacheQuestion(i, dns.TypeMX), dns.TypeMX); !ok {
			t.Fatalf("answer %d is not cached", i)
		}
	}
	if _, err := c.Lookup(ctx, cacheQuestion(1, dns.TypeMX), dns.TypeMX); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Peek(cacheQuestion(1, dns.TypeMX), dns.TypeMX); !ok || c.Bytes() > c.MaxBytes || c.Len() != 50 {
		t.Errorf("with every entry recently used: new answer cached %v, %d entries, %d bytes (MaxBytes %d)", ok, c.Len(), c.Bytes(), c.MaxBytes)
	}
	// MaxEntries bounds the count as well: the tighter bound wins.
	c.MaxEntries = 10
	c.Lookup(ctx, cacheQuestion(2, dns.TypeMX), dns.TypeMX)
	if c.Len() != 10 {
		t.Errorf("%d entries with MaxEntries 10", c.Len())
	}
	// An answer larger than MaxBytes is answered, not cached.
	small := &resolver.Cache{Resolver: w.Resolver(), MaxBytes: per / 2}
	if a, err := small.Lookup(ctx, cacheQuestion(0, dns.TypeMX), dns.TypeMX); err != nil || len(a.Records) != 2 {
		t.Fatalf("%v %v", a, err)
	}
	if small.Len() != 0 || small.Bytes() != 0 {
		t.Errorf("an answer larger than MaxBytes was cached: %d entries, %d bytes", small.Len(), small.Bytes())
	}
	c.Flush(".")
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after Flush: %d entries, %d bytes", c.Len(), c.Bytes())
	}
}

// BenchmarkCacheEntry reports the live heap one cached answer costs in a
// resolver.Cache ("B/entry") and what the Cache charges for it
// ("est-B/entry"): an MX RRset of two records, an A record, a NODATA
// AAAA answer, a TLSA record (SHA-256), as a Stub and a Validating return
// them.
func BenchmarkCacheEntry(b *testing.B) {
	const n = 2000
	w := cacheWorld(b, n)
	for name, up := range cacheUpstreams(w) {
		for _, qt := range cacheTypes {
			b.Run(name+"/"+dns.TypeToString[qt], func(b *testing.B) {
				var heap, est float64
				b.ReportAllocs()
				for b.Loop() {
					heap, est = cacheBytesPerAnswer(b, up, "cache.test", n, qt)
				}
				b.ReportMetric(heap, "B/entry")
				b.ReportMetric(est, "est-B/entry")
			})
		}
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
