package mtasts

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// typicalPolicy is a policy body as large domains publish them: two mx
// patterns (a host and a wildcard), enforce, a day's max_age.
func typicalPolicy(domain string) string {
	return "version: STSv1\nmode: enforce\nmx: mx." + domain + "\nmx: *.mx." + domain + "\nmax_age: 86400\n"
}

// typicalEntry is the entry the Client stores for domain after fetching
// typicalPolicy: a 14-character id (a date and time, as publishers
// commonly use), no failed fetch.
func typicalEntry(tb testing.TB, domain string, fetched time.Time) *entry {
	tb.Helper()
	body := typicalPolicy(domain)
	p, err := ParsePolicy([]byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	return &entry{domain: domain, id: "20260301T1200Z", fetched: fetched, expires: fetched.Add(p.MaxAge), used: fetched,
		body: []byte(body), policy: p}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// memoryCachePerEntry fills a MemoryCache with n typical entries of
// distinct domains, as the Client encodes them, and returns the live heap
// it holds per entry (key, encoded entry, bookkeeping) and the encoded
// entry's size.
func memoryCachePerEntry(tb testing.TB, n int) (perEntry float64, encoded int) {
	ctx := context.Background()
	// A fetch time as the clock gives it, with nanoseconds.
	fetched := t0.Add(123456789 * time.Nanosecond)
	encoded = len(typicalEntry(tb, "d000000.example.com", fetched).marshal())
	h0 := liveHeap()
	m := NewMemoryCache(n)
	for i := range n {
		// The key (the Client's domain string) is kept by the cache and
		// counted; the encoded entry is garbage once Put has copied it.
		key := fmt.Sprintf("d%06d.example.com", i)
		if err := m.Put(ctx, key, typicalEntry(tb, key, fetched).marshal()); err != nil {
			tb.Fatal(err)
		}
	}
	h1 := liveHeap()
	runtime.KeepAlive(m)
	if m.Len() != n {
		tb.Fatalf("%d entries, want %d", m.Len(), n)
	}
	return float64(int64(h1)-int64(h0)) / float64(n), encoded
}

// maxBytesPerEntry is the memory budget of one cached policy in a
// MemoryCache.
const maxBytesPerEntry = 400

func TestMemoryCacheBytesPerEntry(t *testing.T) {
	per, enc := memoryCachePerEntry(t, 4000)
	t.Logf("MemoryCache: %.0f B per typical entry (%d B encoded)", per, enc)
	if per > maxBytesPerEntry {
		t.Errorf("MemoryCache holds %.0f B per typical policy, want at most %d", per, maxBytesPerEntry)
	}
}

// BenchmarkMemoryCacheEntry reports the live heap one typical cached
// policy costs in a MemoryCache ("B/entry"), and the encoded entry's size.
func BenchmarkMemoryCacheEntry(b *testing.B) {
	var per float64
	var enc int
	b.ReportAllocs()
	for b.Loop() {
		per, enc = memoryCachePerEntry(b, 10000)
	}
	b.ReportMetric(per, "B/entry")
	b.ReportMetric(float64(enc), "encoded-B")
}
