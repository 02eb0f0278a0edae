package resolver

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCache(t *testing.T, handle func(w dns.ResponseWriter, q *dns.Msg)) (*Cache, *wireServer, *fakeClock) {
	srv := newWireServer(t, handle)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	return &Cache{Resolver: &Stub{Servers: []string{srv.Addr}, Timeout: time.Second}, Now: clk.Now}, srv, clk
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	c, srv, clk := newTestCache(t, zone(true, map[string][]string{
		"a.test. A":   {"a.test. 120 IN A 192.0.2.1"},
		"b.test. TXT": nil,
	}))
	ctx := context.Background()
	look := func(name string, qtype uint16) *Answer {
		t.Helper()
		a, err := c.Lookup(ctx, name, qtype)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := look("a.test", dns.TypeA); a.TTL != 120*time.Second || len(a.Records) != 1 {
		t.Fatalf("first answer %+v", a)
	}
	clk.Add(100 * time.Second)
	if a := look("A.TEST.", dns.TypeA); a.TTL != 20*time.Second {
		t.Errorf("cached TTL = %v, want 20s", a.TTL)
	}
	if n := srv.queries.Load(); n != 1 {
		t.Fatalf("queries = %d after a hit, want 1", n)
	}
	clk.Add(21 * time.Second)
	look("a.test", dns.TypeA)
	if n := srv.queries.Load(); n != 2 {
		t.Fatalf("queries = %d after expiry, want 2", n)
	}

	// Negative answers are cached by the SOA's negative TTL (60 s here).
	for _, q := range []struct {
		name  string
		qtype uint16
		nx    bool
	}{{"b.test", dns.TypeMX, false}, {"nosuch.test", dns.TypeA, true}} {
		before := srv.queries.Load()
		if a := look(q.name, q.qtype); a.NXDomain != q.nx || len(a.Records) != 0 || a.TTL != time.Minute {
			t.Errorf("%s: %+v", q.name, a)
		}
		clk.Add(59 * time.Second)
		look(q.name, q.qtype)
		if n := srv.queries.Load() - before; n != 1 {
			t.Errorf("%s: %d queries within the negative TTL, want 1", q.name, n)
		}
		clk.Add(2 * time.Second)
		look(q.name, q.qtype)
		if n := srv.queries.Load() - before; n != 2 {
			t.Errorf("%s: %d queries after the negative TTL, want 2", q.name, n)
		}
	}
}

func TestCacheOneUpstreamQueryForConcurrentLookups(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	c, srv, _ := newTestCache(t, func(w dns.ResponseWriter, q *dns.Msg) {
		<-release // hold the answer until every caller is waiting
		w.WriteMsg(reply(q, dns.RcodeSuccess, true, "mx.test. 300 IN MX 10 mail.test."))
	})
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mx, _, err := LookupMX(context.Background(), c, "mx.test")
			if err != nil || len(mx) != 1 {
				failed.Add(1)
			}
		}()
	}
	time.AfterFunc(200*time.Millisecond, func() { once.Do(func() { close(release) }) })
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d lookups failed", failed.Load())
	}
	if n := srv.queries.Load(); n != 1 {
		t.Errorf("upstream queries = %d, want 1", n)
	}
}

func TestCacheErrors(t *testing.T) {
	t.Parallel()
	c, srv, clk := newTestCache(t, func(w dns.ResponseWriter, q *dns.Msg) {
		w.WriteMsg(reply(q, dns.RcodeServerFailure, false))
	})
	for range 3 {
		if _, err := c.Lookup(context.Background(), "fail.test", dns.TypeTLSA); lookupErrKind(t, err) != KindServFail {
			t.Fatalf("err = %v", err)
		}
	}
	if n := srv.queries.Load(); n != 1 {
		t.Errorf("queries = %d within ErrorTTL, want 1", n)
	}
	clk.Add(DefaultErrorTTL)
	c.Lookup(context.Background(), "fail.test", dns.TypeTLSA)
	if n := srv.queries.Load(); n != 2 {
		t.Errorf("queries = %d after ErrorTTL, want 2", n)
	}
	// A long ErrorTTL is capped: failures are never remembered for long.
	c.ErrorTTL = time.Hour
	c.Flush(".")
	c.Lookup(context.Background(), "fail.test", dns.TypeTLSA)
	clk.Add(maxErrorTTL)
	c.Lookup(context.Background(), "fail.test", dns.TypeTLSA)
	if n := srv.queries.Load(); n != 4 {
		t.Errorf("queries = %d, want 4: ErrorTTL must be capped at %v", n, maxErrorTTL)
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	c, srv, _ := newTestCache(t, func(w dns.ResponseWriter, q *dns.Msg) {
		w.WriteMsg(reply(q, dns.RcodeSuccess, true, q.Question[0].Name+" 300 IN A 192.0.2.1"))
	})
	c.MaxEntries = 10
	ctx := context.Background()
	c.Lookup(ctx, "keep.test", dns.TypeA)
	for i := range 50 {
		c.Lookup(ctx, "n"+string(rune('a'+i%26))+string(rune('a'+i/26))+".test", dns.TypeA)
		c.Lookup(ctx, "keep.test", dns.TypeA) // recently used: survives
	}
	if n := c.Len(); n != 10 {
		t.Errorf("Len = %d, want 10", n)
	}
	if n := srv.queries.Load(); n != 51 {
		t.Errorf("queries = %d, want 51 (keep.test stays cached)", n)
	}
}

// TestCacheCallerGivesUp: a caller whose context ends gets a timeout, and
// the lookup it started goes on for the other caller sharing it. Ordered
// by the server, not by sleeps: the first caller's query is known to have
// reached the server before the second caller starts and before the first
// is cancelled; that the second caller joined that query (rather than
// asking again after the cancellation) is checked by the query count,
// whatever the scheduling.
func TestCacheCallerGivesUp(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	c, srv, _ := newTestCache(t, func(w dns.ResponseWriter, q *dns.Msg) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		w.WriteMsg(reply(q, dns.RcodeSuccess, true, "slow.test. 300 IN A 192.0.2.1"))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Lookup(ctx, "slow.test", dns.TypeA); done <- err }()
	<-arrived
	other := make(chan error, 1)
	go func() { _, err := c.Lookup(context.Background(), "slow.test", dns.TypeA); other <- err }()
	cancel()
	if k := lookupErrKind(t, <-done); k != KindTimeout {
		t.Errorf("cancelled caller: kind %v, want timeout", k)
	}
	close(release)
	if err := <-other; err != nil {
		t.Errorf("the other caller failed with the first one: %v", err)
	}
	if n := srv.queries.Load(); n != 1 {
		t.Errorf("upstream queries = %d, want 1: the cancellation ended the shared lookup", n)
	}
}
