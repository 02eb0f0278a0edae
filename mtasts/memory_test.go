package mtasts

import (
	"context"
	"fmt"
	"runtime"
	"strings"
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
// it holds per entry (key, encoded entry, bookkeeping), what it charges
// per entry (Bytes) and the encoded entry's size.
func memoryCachePerEntry(tb testing.TB, n int) (perEntry, estimate float64, encoded int) {
	ctx := context.Background()
	// A fetch time as the clock gives it, with nanoseconds.
	fetched := t0.Add(123456789 * time.Nanosecond)
	encoded = len(typicalEntry(tb, "d000000.example.com", fetched).marshal())
	h0 := liveHeap()
	m := NewMemoryCache(0)
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
	return float64(int64(h1)-int64(h0)) / float64(n), float64(m.Bytes()) / float64(n), encoded
}

// maxBytesPerEntry is the memory budget of one cached policy in a
// MemoryCache.
const maxBytesPerEntry = 400

// TestMemoryCacheBytesPerEntry checks the memory of a typical cached
// policy against its budget, and that what the cache charges for it
// against MaxBytes is that memory, within 10%.
func TestMemoryCacheBytesPerEntry(t *testing.T) {
	per, est, enc := memoryCachePerEntry(t, 4000)
	t.Logf("MemoryCache: %.0f B per typical entry (%d B encoded), %.0f B charged", per, enc, est)
	if per > maxBytesPerEntry {
		t.Errorf("MemoryCache holds %.0f B per typical policy, want at most %d", per, maxBytesPerEntry)
	}
	if est < per*0.9 || est > per*1.1 {
		t.Errorf("MemoryCache charges %.0f B per typical policy, the heap grew %.0f B", est, per)
	}
}

// BenchmarkMemoryCacheEntry reports the live heap one typical cached
// policy costs in a MemoryCache ("B/entry"), what the cache charges for
// it ("est-B/entry"), and the encoded entry's size.
func BenchmarkMemoryCacheEntry(b *testing.B) {
	var per, est float64
	var enc int
	b.ReportAllocs()
	for b.Loop() {
		per, est, enc = memoryCachePerEntry(b, 10000)
	}
	b.ReportMetric(per, "B/entry")
	b.ReportMetric(est, "est-B/entry")
	b.ReportMetric(float64(enc), "encoded-B")
}

// decodedPerDomain loads n domains into the decoded layer of a Client
// whose Cache holds a typical policy for each (withPolicy) or nothing,
// as Lookup does, and returns the live heap the layer holds per domain
// and what it charges per domain.
func decodedPerDomain(tb testing.TB, n int, withPolicy bool) (perDomain, estimate float64) {
	ctx := context.Background()
	fetched := t0.Add(123456789 * time.Nanosecond)
	mc := NewMemoryCache(0)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("d%06d.example.com", i)
		if withPolicy {
			if err := mc.Put(ctx, keys[i], typicalEntry(tb, keys[i], fetched).marshal()); err != nil {
				tb.Fatal(err)
			}
		}
	}
	c := &Client{Cache: mc, Now: func() time.Time { return t0 }}
	c.init()
	h0 := liveHeap()
	for _, k := range keys {
		// A lookup's own domain string, as normalizeDomain returns it.
		k = strings.Clone(k)
		if st := c.state(ctx, k); (st.entry != nil) != withPolicy {
			tb.Fatalf("%s: entry %v", k, st.entry)
		}
	}
	h1 := liveHeap()
	runtime.KeepAlive(c)
	runtime.KeepAlive(keys)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.states) != n {
		tb.Fatalf("%d decoded states, want %d", len(c.states), n)
	}
	return float64(int64(h1)-int64(h0)) / float64(n), float64(c.decodedBytes) / float64(n)
}

// TestDecodedBytesPerDomain checks that what the decoded layer charges a
// domain against DecodedBytes is the heap it retains, within 10%, with
// and without a policy, and that the default layer holds more typical
// policies than a default MemoryCache (a policy the Cache holds must not
// be parsed again at every lookup).
func TestDecodedBytesPerDomain(t *testing.T) {
	perPolicy, _, _ := memoryCachePerEntry(t, 2000)
	for _, withPolicy := range []bool{true, false} {
		per, est := decodedPerDomain(t, 2000, withPolicy)
		t.Logf("decoded layer, policy %v: %.0f B per domain, %.0f B charged", withPolicy, per, est)
		if est < per*0.9 || est > per*1.1 {
			t.Errorf("policy %v: the decoded layer charges %.0f B per domain, the heap grew %.0f B", withPolicy, est, per)
		}
		if withPolicy {
			decoded, cached := DefaultDecodedBytes/est, DefaultMemoryCacheBytes/perPolicy
			t.Logf("defaults: %.0f decoded policies, %.0f in a MemoryCache", decoded, cached)
			if decoded < cached || decoded < 100000 {
				t.Errorf("the default decoded layer holds %.0f typical policies, a default MemoryCache %.0f; want more, and at least 100,000", decoded, cached)
			}
		}
	}
}

// TestDecodedBound: the decoded layer stays within DecodedBytes and
// drops the least recently used domains, which are read back from the
// Cache.
func TestDecodedBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mc := NewMemoryCache(0)
	const n = 100
	for i := range n {
		k := fmt.Sprintf("d%03d.example.com", i)
		if err := mc.Put(ctx, k, typicalEntry(t, k, t0).marshal()); err != nil {
			t.Fatal(err)
		}
	}
	c := &Client{Cache: mc, Now: func() time.Time { return t0 }}
	c.init()
	one := int64(c.state(ctx, "d000.example.com").size)
	c.DecodedBytes = 10*one + one/2
	for i := range n {
		c.state(ctx, fmt.Sprintf("d%03d.example.com", i))
		c.state(ctx, "d000.example.com") // in use: stays
		c.mu.Lock()
		b, l := c.decodedBytes, len(c.states)
		c.mu.Unlock()
		if b > c.DecodedBytes || l > 10 {
			t.Fatalf("after %d domains: %d states, %d bytes; DecodedBytes %d", i+1, l, b, c.DecodedBytes)
		}
	}
	c.mu.Lock()
	keep := c.lookupLocked("d000.example.com") != nil
	dropped := c.lookupLocked("d001.example.com") == nil
	c.mu.Unlock()
	if !keep || !dropped {
		t.Errorf("the most recently used domain kept: %v; the least: %v", keep, dropped)
	}
	if st := c.state(ctx, "d001.example.com"); st.entry == nil {
		t.Error("a domain dropped from the decoded layer was not read back from the Cache")
	}
}
