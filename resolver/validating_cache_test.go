package resolver_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// keysWorld has n signed zones (ECDSA P-256, or the algorithm given) and
// n unsigned ones under keys.test, each with an address at its apex: one
// cached zone state each in a Validating.
func keysWorld(tb testing.TB, n int, alg uint8) *smtptlstest.World {
	tb.Helper()
	w := smtptlstest.New(tb)
	w.AddZone("keys.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	for i := range n {
		for _, z := range []struct {
			name string
			cfg  smtptlstest.ZoneConfig
		}{
			{fmt.Sprintf("s%04d.keys.test", i), smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, Algorithm: alg}},
			{fmt.Sprintf("u%04d.keys.test", i), smtptlstest.ZoneConfig{}},
		} {
			w.AddZone(z.name, z.cfg).MustAdd("@ A 192.0.2.1")
		}
	}
	return w
}

// fillKeys looks up the apex address of every zone of a keysWorld whose
// name starts with prefix ("s" or "u") through v.
func fillKeys(tb testing.TB, v *resolver.Validating, prefix string, n int) {
	tb.Helper()
	ctx := context.Background()
	for i := range n {
		name := fmt.Sprintf("%s%04d.keys.test.", prefix, i)
		if _, err := v.Lookup(ctx, name, dns.TypeA); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
	}
}

// zoneStateBytes fills a Validating with the states of n zones of a
// keysWorld and returns the heap it retains per zone and what it charges
// per zone (Stats.CacheBytes). A first Validating makes the World sign
// everything first.
func zoneStateBytes(tb testing.TB, w *smtptlstest.World, prefix string, n int) (heap, estimate float64) {
	tb.Helper()
	newV := func() *resolver.Validating {
		return &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}
	}
	// The earlier Validatings' sockets are closed now, not by their idle
	// timer in the middle of the measurement (which made the heap shrink).
	for range 2 {
		warm := newV()
		fillKeys(tb, warm, prefix, n)
		warm.CloseIdleConnections()
	}
	v := newV()
	fillKeys(tb, v, prefix, 1) // the root's, test.'s and keys.test.'s states
	s0 := v.Stats()
	v.CloseIdleConnections()
	h0 := liveHeap()
	fillKeys(tb, v, prefix, n)
	v.CloseIdleConnections()
	h1 := liveHeap()
	s1 := v.Stats()
	runtime.KeepAlive(v)
	if got := s1.CachedZones - s0.CachedZones; got != n-1 {
		tb.Fatalf("%d zone states cached, want %d", got, n-1)
	}
	return float64(int64(h1)-int64(h0)) / float64(n-1), float64(s1.CacheBytes-s0.CacheBytes) / float64(n-1)
}

// TestValidatingCacheBytesPerZone checks that what the zone state cache
// charges against CacheBytes is the heap a state retains, within 10%:
// the keys of a signed zone (ECDSA P-256), the state of an insecure zone
// with its reason. BenchmarkValidatingCacheZone adds RSA keys, too slow
// to generate for every test run. Not parallel: it measures the heap.
func TestValidatingCacheBytesPerZone(t *testing.T) {
	const n = 300
	w := keysWorld(t, n, dns.ECDSAP256SHA256)
	for _, c := range []struct{ name, prefix string }{{"insecure", "u"}, {"ECDSA P-256", "s"}} {
		heap, est := steadyHeap(func() (float64, float64) {
			return zoneStateBytes(t, w, c.prefix, n)
		}, 0.9, 1.1)
		t.Logf("%s: %.0f B per zone on the heap, %.0f B estimated", c.name, heap, est)
		if est < heap*0.9 || est > heap*1.1 {
			t.Errorf("%s: the cache charges %.0f B per zone, the heap grew %.0f B", c.name, est, heap)
		}
	}
}

// BenchmarkValidatingCacheZone reports the heap one cached zone state
// retains ("B/zone") and what the cache charges for it ("est-B/zone"):
// an insecure zone, a signed zone with two ECDSA P-256 keys, one with an
// RSA 2048-bit KSK and a 1024-bit ZSK.
func BenchmarkValidatingCacheZone(b *testing.B) {
	const n = 300
	for _, c := range []struct {
		name   string
		alg    uint8
		prefix string
	}{
		{"insecure", dns.ECDSAP256SHA256, "u"},
		{"ECDSA-P256", dns.ECDSAP256SHA256, "s"},
		{"RSA", dns.RSASHA256, "s"},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := keysWorld(b, n, c.alg)
			var heap, est float64
			for b.Loop() {
				heap, est = zoneStateBytes(b, w, c.prefix, n)
			}
			b.ReportMetric(heap, "B/zone")
			b.ReportMetric(est, "est-B/zone")
		})
	}
}

// TestValidatingCacheBytesBound: the zone state cache stays within
// CacheBytes, and a Validating whose cache is full still validates.
func TestValidatingCacheBytesBound(t *testing.T) {
	t.Parallel()
	const n = 60
	w := keysWorld(t, n, 0)
	probe := &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}
	fillKeys(t, probe, "s", n)
	fillKeys(t, probe, "u", n)
	all := probe.Stats()
	v := &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors(), CacheBytes: all.CacheBytes / 4}
	for range 2 {
		fillKeys(t, v, "s", n)
		fillKeys(t, v, "u", n)
		if s := v.Stats(); s.CacheBytes > v.CacheBytes || s.CachedZones >= all.CachedZones/2 {
			t.Errorf("%d zones, %d bytes cached with CacheBytes %d (%d zones, %d bytes unbounded)",
				s.CachedZones, s.CacheBytes, v.CacheBytes, all.CachedZones, all.CacheBytes)
		}
	}
	v = &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors(), CacheSize: 10}
	fillKeys(t, v, "s", n)
	if s := v.Stats(); s.CachedZones > 10 {
		t.Errorf("%d zones cached with CacheSize 10", s.CachedZones)
	}
	v = &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors(), CacheBytes: -1}
	fillKeys(t, v, "s", 3)
	if s := v.Stats(); s.CachedZones != 0 || s.CacheBytes != 0 {
		t.Errorf("a disabled cache holds %d zones, %d bytes", s.CachedZones, s.CacheBytes)
	}
}
