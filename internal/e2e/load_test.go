package e2e_test

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

var (
	loadDomainsFlag = flag.Int("load-domains", 10000, "distinct domains of BenchmarkLoad")
	loadConcFlag    = flag.Int("load-conc", 512, "concurrent Evaluate calls of BenchmarkLoad")
)

// loadRTT is the simulated round trip time of the load runs: a nearby
// resolver and policy hosts on the same continent.
const loadRTT = 2 * time.Millisecond

// loadQueryTimeout is the per-query timeout of the load runs' Stub.
const loadQueryTimeout = 30 * time.Second

// loadZone is the zone of the load World's domains.
const loadZone = "load.test"

// loadPolicyAddr is the one address every policy host of the load World
// resolves to; the World maps it, port 443, to its MTA-STS server.
const loadPolicyAddr = "127.0.0.53"

// loadDomain is the i-th domain of the load World. Its configuration is
// i%4: 0 DANE, 1 MTA-STS enforce, 2 both, 3 neither.
func loadDomain(i int) string { return fmt.Sprintf("d%05d.%s", i, loadZone) }

// loadLevel is the level every host of loadDomain(i) must get.
func loadLevel(i int) smtptls.Level {
	switch i % 4 {
	case 0, 2:
		return smtptls.DANE
	case 1:
		return smtptls.STSEnforce
	}
	return smtptls.Opportunistic
}

// loadWorld builds a World with n distinct mail domains of two MX hosts
// each. World.AddDomain builds a zone, SMTP servers and certificates per
// domain, which costs superlinear time and a listener per host (400
// domains take seconds): the load World instead holds every domain in
// one signed zone, each with its own MX, host, TLSA, TXT and policy
// host names, so that every domain still costs the resolver its own
// lookups and, with MTA-STS, its own fetch. Evaluate never connects to
// the MX hosts, which get documentation addresses.
func loadWorld(tb testing.TB, n int) *smtptlstest.World {
	tb.Helper()
	w := smtptlstest.New(tb)
	z := w.AddZone(loadZone, smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	tlsa := strings.Repeat("5a", 32) // Evaluate does not verify it
	var zb strings.Builder
	for i := range n {
		d := fmt.Sprintf("d%05d", i)
		for h := 1; h <= 2; h++ {
			fmt.Fprintf(&zb, "%s MX %d mx%d.%s\n", d, h*10, h, d)
			fmt.Fprintf(&zb, "mx%d.%s A 192.0.2.%d\n", h, d, h)
			if i%4 == 0 || i%4 == 2 {
				fmt.Fprintf(&zb, "_25._tcp.mx%d.%s TLSA 3 1 1 %s\n", h, d, tlsa)
			}
		}
		if i%4 == 1 || i%4 == 2 {
			fmt.Fprintf(&zb, "_mta-sts.%s TXT \"v=STSv1; id=1\"\n", d)
			fmt.Fprintf(&zb, "mta-sts.%s A %s\n", d, loadPolicyAddr)
		}
	}
	z.MustAdd(zb.String())
	for i := range n {
		if i%4 == 1 || i%4 == 2 {
			d := loadDomain(i)
			w.SetPolicy(d, smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmx: mx1." + d + "\nmx: mx2." + d + "\nmax_age: 604800\n"})
		}
	}
	return w
}

// loadEvaluator is an Evaluator as an MTA runs one: one shared resolver
// cache and MTA-STS with its default memory cache and decoded layer, all
// at their default bounds (which hold 100,000 domains), and a policy
// client that resolves policy hosts through the World's DNS front (with
// the Stub, not the cache, as a system resolver would).
//
// Its Stub waits up to loadQueryTimeout for an answer instead of 3 s: the
// World's DNS front runs in the test's own process, so with hundreds of
// Evaluate calls in flight on a small (or shared) machine its answers
// queue behind the evaluations' own CPU use, which a separate recursive
// resolver would not.
//
// Its caches keep their default bounds, which hold 100,000 domains.
func loadEvaluator(w *smtptlstest.World) *smtptls.Evaluator {
	stub := w.Resolver()
	stub.Timeout = loadQueryTimeout
	r := &resolver.Cache{Resolver: stub}
	return &smtptls.Evaluator{
		Resolver: r,
		STS:      &mtasts.Client{Resolver: r, HTTPClient: w.HTTPClientWith(stub), Logger: discard},
		Roots:    w.CA().Pool(),
		Logger:   discard,
	}
}

// loadStats is what a load run measured.
type loadStats struct {
	elapsed        time.Duration
	errors         int64
	peakGoroutines int // runtime.NumGoroutine, sampled every millisecond
	baseGoroutines int // before the run
	firstErr       error
}

// runLoad evaluates domains 0..n-1 with conc workers and checks every
// decision.
func runLoad(ctx context.Context, ev *smtptls.Evaluator, n, conc int) loadStats {
	st := loadStats{baseGoroutines: runtime.NumGoroutine()}
	var (
		next    atomic.Int64
		errs    atomic.Int64
		errMu   sync.Mutex
		wg      sync.WaitGroup
		peak    atomic.Int64
		stopCh  = make(chan struct{})
		sampled sync.WaitGroup
	)
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if g := int64(runtime.NumGoroutine()); g > peak.Load() {
				peak.Store(g)
			}
			select {
			case <-stopCh:
				return
			case <-t.C:
			}
		}
	}()
	fail := func(err error) {
		if errs.Add(1) == 1 {
			errMu.Lock()
			st.firstErr = err
			errMu.Unlock()
		}
	}
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				d := loadDomain(i)
				dec, err := ev.Evaluate(ctx, d)
				if err != nil {
					fail(err)
					continue
				}
				if err := checkLoadDecision(dec, i); err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	close(stopCh)
	sampled.Wait()
	st.errors = errs.Load()
	st.peakGoroutines = int(peak.Load())
	return st
}

func checkLoadDecision(dec *smtptls.Decision, i int) error {
	hosts := dec.Deliverable()
	if len(hosts) != 2 {
		return fmt.Errorf("%s: %d deliverable hosts of %d (%v)", dec.Domain, len(hosts), len(dec.Hosts), dec.Hosts[0].Err)
	}
	for _, h := range hosts {
		if h.Level != loadLevel(i) {
			why := ""
			if r := dec.STS; r != nil {
				why = fmt.Sprintf(" (MTA-STS record %v %v, fetch error %v)", r.RecordStatus, r.RecordError, r.FetchError)
			}
			return fmt.Errorf("%s: %s level %v, want %v%s", dec.Domain, h.Name, h.Level, loadLevel(i), why)
		}
	}
	return nil
}

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestLoad is the test-sized load run: 500 distinct domains (a quarter
// each DANE, MTA-STS, both and neither) evaluated by 64 workers against
// the World with a 2 ms round trip time (100 domains by 16 workers with
// -short, 200 by 32 under the race detector, which slows it fivefold). It asserts that every decision is
// right, that goroutines stay bounded by the concurrency and end with the
// run, and that the heap retained per domain stays small. BenchmarkLoad
// is the same at 10,000 domains and concurrency 512.
func TestLoad(t *testing.T) {
	leakcheck.Check(t)
	n, conc := 500, 64
	switch {
	case testing.Short():
		n, conc = 100, 16
	case raceEnabled:
		n, conc = 200, 32
	}
	w := loadWorld(t, n)
	w.SetDelay(loadRTT)
	w.SetNetDelay(loadRTT)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	h0 := heapAfterGC()
	ev := loadEvaluator(w)
	st := runLoad(ctx, ev, n, conc)
	h1 := heapAfterGC()
	runtime.KeepAlive(ev)
	perDomain := float64(int64(h1)-int64(h0)) / float64(n)
	perWorker := float64(st.peakGoroutines-st.baseGoroutines) / float64(conc)
	t.Logf("%d domains, concurrency %d: %v (%.0f domains/s), %d errors, goroutines %d before, peak %d (%.1f per worker), heap retained %.0f B/domain",
		n, conc, st.elapsed.Round(time.Millisecond), float64(n)/st.elapsed.Seconds(), st.errors,
		st.baseGoroutines, st.peakGoroutines, perWorker, perDomain)
	if st.errors > 0 {
		t.Errorf("%d of %d evaluations failed; first: %v", st.errors, n, st.firstErr)
	}
	// Each in-flight Evaluate runs a few goroutines of its own (MTA-STS
	// lookup, one per MX host, the concurrent AAAA lookups, cache
	// flights) and the World serves it with a few more (DNS answers,
	// HTTPS connections): a bound per worker, whatever n is.
	if perWorker > maxGoroutinesPerWorker {
		t.Errorf("goroutines peaked at %d, %.1f per worker; want at most %d per worker", st.peakGoroutines, perWorker, maxGoroutinesPerWorker)
	}
	// What stays is the caches: about ten DNS answers per domain and,
	// for half of them, an MTA-STS policy (encoded and decoded).
	if perDomain > maxHeapPerDomain {
		t.Errorf("heap retained %.0f B per domain, want at most %d", perDomain, maxHeapPerDomain)
	}
}

// Bounds of TestLoad, about three times what it measures.
const (
	maxGoroutinesPerWorker = 40
	maxHeapPerDomain       = 48 << 10
)

// BenchmarkLoad evaluates 10,000 distinct domains with 512 workers against
// the World with a 2 ms round trip time, each iteration with a fresh
// Evaluator and caches (the World is built once). It reports throughput,
// failures (must be 0), the goroutine peak and the heap the caches retain
// per domain.
func BenchmarkLoad(b *testing.B) {
	n, conc := *loadDomainsFlag, *loadConcFlag
	start := time.Now()
	w := loadWorld(b, n)
	b.Logf("World of %d domains built in %v", n, time.Since(start).Round(time.Millisecond))
	// One pass without delays signs every RRset the run asks for: real
	// authoritative zones are signed in advance, and the World's
	// on-the-fly signing would otherwise compete with the Evaluator for
	// the CPU.
	ctx := context.Background()
	start = time.Now()
	if st := runLoad(ctx, loadEvaluator(w), n, 64); st.errors > 0 {
		b.Fatalf("warm-up: %d of %d evaluations failed; first: %v", st.errors, n, st.firstErr)
	}
	b.Logf("warm-up pass in %v", time.Since(start).Round(time.Millisecond))
	w.SetDelay(loadRTT)
	w.SetNetDelay(loadRTT)
	b.ReportAllocs()
	var last loadStats
	var perDomain float64
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		h0 := heapAfterGC()
		ev := loadEvaluator(w)
		b.StartTimer()
		last = runLoad(ctx, ev, n, conc)
		elapsed += last.elapsed
		b.StopTimer()
		perDomain = float64(int64(heapAfterGC())-int64(h0)) / float64(n)
		runtime.KeepAlive(ev)
		b.StartTimer()
		if last.errors > 0 {
			b.Fatalf("%d of %d evaluations failed; first: %v", last.errors, n, last.firstErr)
		}
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "domains/s")
	b.ReportMetric(float64(last.peakGoroutines), "peak-goroutines")
	b.ReportMetric(float64(last.peakGoroutines-last.baseGoroutines)/float64(conc), "goroutines/worker")
	b.ReportMetric(perDomain, "heap-B/domain")
}

// TestConcurrentEvaluateOneDomain checks that 1,000 concurrent Evaluate
// calls for one domain cost the upstream what one call costs: the
// resolver.Cache merges concurrent lookups of a (name, type) into one
// query and the MTA-STS client one fetch per domain.
func TestConcurrentEvaluateOneDomain(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	s := smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, MX: 2}
	w.AddDomain("reference.test", s)
	w.AddDomain("burst.test", s)
	// A round trip long enough for every call to start while the first
	// lookups are in flight.
	w.SetDelay(20 * time.Millisecond)
	w.SetNetDelay(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	newEv := func() *smtptls.Evaluator {
		r := &resolver.Cache{Resolver: w.Resolver()}
		return &smtptls.Evaluator{
			Resolver: r,
			// The policy host is resolved through r too, so that its
			// lookups count and must be merged as well.
			STS:    &mtasts.Client{Resolver: r, HTTPClient: w.HTTPClientWith(r), Logger: discard},
			Roots:  w.CA().Pool(),
			Logger: discard,
		}
	}

	before := w.QueryCount()
	dec, err := newEv().Evaluate(ctx, "reference.test")
	if err != nil || len(dec.Deliverable()) != 2 {
		t.Fatalf("reference: %v %v", dec, err)
	}
	one := w.QueryCount() - before

	ev := newEv()
	const calls = 1000
	before = w.QueryCount()
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec, err := ev.Evaluate(ctx, "burst.test")
			switch {
			case err != nil:
				errs <- err
			case len(dec.Deliverable()) != 2 || dec.Deliverable()[0].Level != smtptls.DANE:
				errs <- fmt.Errorf("decision %+v", dec.Hosts)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := w.QueryCount() - before
	t.Logf("one Evaluate: %d queries; %d concurrent: %d queries, %d policy fetches", one, calls, got, w.PolicyFetches("burst.test"))
	if got != one {
		t.Errorf("%d concurrent Evaluate calls sent %d queries, one call sends %d", calls, got, one)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"burst.test", dns.TypeMX}, {"_mta-sts.burst.test", dns.TypeTXT},
		{"mx1.burst.test", dns.TypeA}, {"mx2.burst.test", dns.TypeAAAA},
		{"_25._tcp.mx1.burst.test", dns.TypeTLSA}, {"mta-sts.burst.test", dns.TypeA},
	} {
		if n := w.QueryCountFor(q.name, q.qtype); n != 1 {
			t.Errorf("%s %s asked %d times, want once", q.name, dns.TypeToString[q.qtype], n)
		}
	}
	if n := w.PolicyFetches("burst.test"); n != 1 {
		t.Errorf("policy fetched %d times, want once", n)
	}
}
