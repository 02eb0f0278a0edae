package mtasts_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestClientHundredsOfGoroutines runs one Client over a small MemoryCache
// from hundreds of goroutines against a world of policy hosts that
// answer, fail or are slow: lookups, rechecks and refreshes at once,
// callers whose contexts end before or during their lookup, a clock that
// jumps past max_age, and direct use of the cache — under the race
// detector. Every result must be about its own domain, a policy only ever
// the one its host serves, errors only the caller's cancellation, and
// nothing may be left running.
func TestClientHundredsOfGoroutines(t *testing.T) {
	leakcheck.Check(t)
	w := smtptlstest.New(t)
	z := w.AddZone("example", smtptlstest.ZoneConfig{})
	const n = 16
	mode := func(i int) mtasts.Mode {
		switch i % 4 {
		case 0, 3:
			return mtasts.Enforce
		case 1:
			return mtasts.Testing
		}
		return "" // the fetch always fails
	}
	for i := range n {
		d := fmt.Sprintf("d%d.example", i)
		z.MustAdd(fmt.Sprintf(`_mta-sts.d%d TXT "v=STSv1; id=1"`, i))
		p := smtptlstest.Policy{Body: fmt.Sprintf("version: STSv1\nmode: %s\nmx: mx.%s\nmax_age: 86400\n", mode(i), d)}
		switch i % 4 {
		case 2:
			p = smtptlstest.Policy{Status: 503, Body: "down\n"}
		case 3:
			p.Delay = 200 * time.Millisecond
		}
		w.SetPolicy(d, p)
	}
	clk := newClock()
	quiet := slog.New(slog.DiscardHandler)
	mc := mtasts.NewMemoryCache(6) // smaller than the domain set: evictions
	mc.Now, mc.Logger = clk.Now, quiet
	r := w.Resolver()
	r.Timeout = time.Second
	c := &mtasts.Client{Resolver: r, HTTPClient: w.HTTPClient(), Cache: mc, Now: clk.Now, Logger: quiet, FetchTimeout: 3 * time.Second}

	var policies, cancelled atomic.Int64
	var wg sync.WaitGroup
	for g := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 2))
			for op := range 6 {
				i := rnd.IntN(n)
				d := fmt.Sprintf("d%d.example", i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				switch op % 5 {
				case 0:
					cancel()
				case 1:
					time.AfterFunc(time.Duration(rnd.IntN(100))*time.Millisecond, cancel)
				}
				var res *mtasts.Result
				var err error
				switch rnd.IntN(10) {
				case 0:
					res, err = c.Recheck(ctx, d)
				case 1:
					rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
					c.Refresh(rctx)
					rcancel()
					res, err = c.Lookup(ctx, d)
				case 2:
					clk.Advance(25 * time.Hour) // past every max_age
					res, err = c.Lookup(ctx, d)
				case 3:
					mc.Delete(ctx, d)
					mc.Keys(ctx)
					mc.Len()
					res, err = c.Lookup(ctx, d)
				default:
					res, err = c.Lookup(ctx, d)
				}
				ended := ctx.Err() != nil
				cancel()
				if err != nil {
					var e *mtasts.Error
					if !errors.As(err, &e) || e.Kind != mtasts.KindCanceled || !ended || res != nil {
						t.Errorf("%s: %v (ctx ended: %v)", d, err, ended)
					}
					cancelled.Add(1)
					continue
				}
				if res.Domain != d {
					t.Errorf("result for %s when asking for %s", res.Domain, d)
				}
				if res.Policy == nil {
					continue
				}
				policies.Add(1)
				if res.Policy.Mode != mode(i) || len(res.Policy.MX) != 1 || res.Policy.MX[0] != "mx."+d {
					t.Errorf("%s: policy %+v", d, res.Policy)
				}
			}
		}()
	}
	wg.Wait()
	if policies.Load() == 0 || cancelled.Load() == 0 {
		t.Errorf("%d policies applied, %d lookups cancelled: the mix exercised too little", policies.Load(), cancelled.Load())
	}
	if mc.Len() > 6 {
		t.Errorf("MemoryCache holds %d entries, bound 6", mc.Len())
	}
	t.Logf("%d lookups applied a policy, %d were cancelled", policies.Load(), cancelled.Load())
}
