package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/mtasts/rediscache"
	"github.com/smtptls/smtptls/smtptlstest"
)

// fleet is a World with enforce domains and n MTAs sharing one store
// (each with its own Redis connection, as separate machines would have).
type fleet struct {
	w       *smtptlstest.World
	domains []string
	caches  []*rediscache.Cache
}

func newFleet(t *testing.T, mtas, domains int) *fleet {
	f := &fleet{w: smtptlstest.New(t)}
	for i := range domains {
		d := fmt.Sprintf("d%d.test", i)
		f.w.AddDomain(d, smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
		f.domains = append(f.domains, d)
	}
	prefix := testPrefix(t)
	for range mtas {
		f.caches = append(f.caches, &rediscache.Cache{Client: newRedisClient(t), Prefix: prefix})
	}
	// The first MTA fetches every policy into the store.
	c := f.client(f.caches[0])
	for _, d := range f.domains {
		if r, err := c.Lookup(context.Background(), d); err != nil || r.Policy == nil {
			t.Fatalf("lookup %s: %+v, %v", d, r, err)
		}
	}
	if n := f.fetches(); n != domains {
		t.Fatalf("%d fetches to fill the store, want %d", n, domains)
	}
	return f
}

// client is an MTA's mtasts.Client on cache, wired to the World.
func (f *fleet) client(cache mtasts.Cache) *mtasts.Client {
	return &mtasts.Client{Cache: cache, Resolver: f.w.Resolver(), HTTPClient: f.w.HTTPClient(), Logger: discard}
}

func (f *fleet) refresher(cache *rediscache.Cache, name string) *rediscache.Refresher {
	return &rediscache.Refresher{Cache: cache, NewClient: f.client, Name: name, Logger: discard}
}

func (f *fleet) fetches() int {
	n := 0
	for _, d := range f.domains {
		n += f.w.PolicyFetches(d)
	}
	return n
}

// runAll runs fn once per MTA, all at once.
func runAll(t *testing.T, n int, fn func(i int) error) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i); err != nil {
				t.Errorf("MTA %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
}

// TestRefreshFetchesOnce: two MTAs refreshing the same domain at the same
// moment fetch its policy once between them. Without the Refresher (each
// MTA's own Client.Refresh on the shared store) they fetch it twice: the
// stampede the claims prevent.
func TestRefreshFetchesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("uncoordinated", func(t *testing.T) {
		t.Parallel()
		f := newFleet(t, 2, 1)
		runAll(t, 2, func(i int) error { return f.client(f.caches[i]).Refresh(ctx) })
		if n := f.fetches() - 1; n != 2 {
			t.Errorf("two uncoordinated refreshes fetched %d times; the contrast expects 2", n)
		}
	})
	t.Run("refresher", func(t *testing.T) {
		t.Parallel()
		f := newFleet(t, 2, 1)
		runAll(t, 2, func(i int) error { return f.refresher(f.caches[i], fmt.Sprint("mta", i)).Refresh(ctx) })
		if n := f.fetches() - 1; n != 1 {
			t.Errorf("two coordinated refreshes fetched %d times, want 1", n)
		}
		// The claim is in Redis, owned by the MTA that refreshed.
		owner, err := f.caches[0].Client.Get(ctx, testPrefix(t)+"refresh:d0.test").Result()
		if err != nil || (owner != "mta0" && owner != "mta1") {
			t.Errorf("claim owner %q, %v", owner, err)
		}
	})
}

// TestRefreshManyDomains: three MTAs refreshing 12 domains at once fetch
// each domain exactly once, and the refreshed entries are in the store.
func TestRefreshManyDomains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFleet(t, 3, 12)
	before := f.fetches()
	runAll(t, 3, func(i int) error { return f.refresher(f.caches[i], "").Refresh(ctx) })
	for _, d := range f.domains {
		if n := f.w.PolicyFetches(d); n != 2 {
			t.Errorf("%s fetched %d times in all, want 2 (fill, one refresh)", d, n)
		}
	}
	if n := f.fetches() - before; n != len(f.domains) {
		t.Errorf("%d refresh fetches for %d domains", n, len(f.domains))
	}
	keys, err := f.caches[2].Keys(ctx)
	if err != nil || len(keys) != len(f.domains) {
		t.Errorf("Keys after refresh: %q, %v", keys, err)
	}
}

// TestClaimExpires: once its claim has expired, a domain is refreshed
// again, by whichever MTA runs next.
func TestClaimExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFleet(t, 2, 1)
	a, b := f.refresher(f.caches[0], "a"), f.refresher(f.caches[1], "b")
	a.Claim, b.Claim = 300*time.Millisecond, 300*time.Millisecond
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.fetches(); n != 2 {
		t.Fatalf("%d fetches after two runs within the claim, want 2 (fill, one refresh)", n)
	}
	time.Sleep(400 * time.Millisecond)
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.fetches(); n != 3 {
		t.Errorf("%d fetches after the claim expired, want 3", n)
	}
}

// TestRefresherNeedsTheView: a NewClient that ignores the cache it is
// given would refresh the whole store on every MTA; Refresh refuses.
func TestRefresherNeedsTheView(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1, 1)
	r := &rediscache.Refresher{Cache: f.caches[0], Logger: discard,
		NewClient: func(mtasts.Cache) *mtasts.Client { return f.client(f.caches[0]) }}
	err := r.Refresh(context.Background())
	var e *rediscache.Error
	if !errors.As(err, &e) || e.Kind != rediscache.KindConfig {
		t.Errorf("Refresh = %v, want KindConfig", err)
	}
	if n := f.fetches(); n != 1 {
		t.Errorf("%d fetches, want none after the fill", n-1)
	}
}

// TestRefresherLoop: Loop refreshes until its context ends.
func TestRefresherLoop(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1, 1)
	r := f.refresher(f.caches[0], "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Loop(ctx, 200*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.fetches() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches: Loop did not refresh twice", f.fetches())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Loop = %v", err)
	}
}
