package mtasts

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/smtptls/smtptls/internal/quote"
)

// DefaultRefreshInterval is RefreshLoop's interval when given zero: RFC
// 8461 10.2 suggests refreshing about daily.
const DefaultRefreshInterval = 24 * time.Hour

// Refresh runs one proactive refresh over every cached entry:
//
//   - an entry not used for PruneAfter is deleted;
//   - an entry that cannot be decoded is left alone (it may come from a
//     newer version sharing the Cache) and logged;
//   - an expired entry is deleted (it no longer protects anything, and a
//     later lookup fetches afresh);
//   - every other entry is fetched again, whatever the TXT record says
//     (RFC 8461 10.2), under the TXT record's current id when there is
//     one; success replaces the entry (keeping its last-use time, as a
//     refresh is not a use), failure leaves it in place and is logged at
//     warning level (info for mode none) with the expiry, so that
//     operators hear of it well before the policy lapses.
//
// The entries are those of the Cache when it implements Lister, plus those
// in the Client's memory. At most RefreshConcurrency fetches run at once.
// Refresh returns an error only when ctx ends or the Cache cannot list its
// keys.
func (c *Client) Refresh(ctx context.Context) error {
	c.init()
	keys := map[string]bool{}
	if l, ok := c.cache.(Lister); ok {
		ks, err := l.Keys(ctx)
		if err != nil {
			return err
		}
		for _, k := range ks {
			keys[k] = true
		}
	}
	c.mu.Lock()
	for _, st := range c.states {
		keys[st.domain] = true
	}
	c.mu.Unlock()

	n := c.RefreshConcurrency
	if n <= 0 {
		n = 4
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for k := range keys {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.refreshOne(ctx, k)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func (c *Client) refreshOne(ctx context.Context, key string) {
	d, err := normalizeDomain(key)
	if err != nil || d != key {
		// Not written by a Client: leave it alone.
		c.log.Warn("mtasts: ignoring cache key that is not a policy domain", slog.String("key", quote.Text(key)))
		return
	}
	e := c.reload(ctx, d)
	if e == nil {
		// Gone, or unreadable (load has logged why). An unreadable entry
		// may be a newer encoding written by another MTA sharing the
		// Cache: it is left for that MTA, and replaced here only by the
		// next successful fetch.
		c.forget(d)
		return
	}
	now := c.now()
	if pa := c.pruneAfter(); pa > 0 && now.Sub(e.used) > pa {
		c.log.Info("mtasts: pruning unused policy", slog.String("domain", d), slog.Time("last_used", e.used))
		c.delete(ctx, d)
		return
	}
	if !now.Before(e.expires) {
		c.log.Info("mtasts: deleting expired policy", slog.String("domain", d), slog.Time("expired", e.expires))
		c.delete(ctx, d)
		return
	}
	id := e.id
	if rec, err := lookupRecord(ctx, c.res, d); err == nil {
		id = rec.ID
	}
	fr, err := c.fetchShared(ctx, d, fetchRequest{id: id, force: true, used: e.used})
	if err != nil {
		return
	}
	if fr.err != nil {
		level := slog.LevelWarn
		if e.policy.Mode == None {
			level = slog.LevelInfo
		}
		c.log.Log(ctx, level, "mtasts: policy refresh failed; the cached policy stays until it expires",
			slog.String("domain", d), slog.String("mode", string(e.policy.Mode)),
			slog.Time("expires", e.expires), slog.Any("error", fr.err))
		return
	}
	c.log.Debug("mtasts: policy refreshed", slog.String("domain", d), slog.String("id", id))
}

// delete removes d from the Cache and the decoded layer.
func (c *Client) delete(ctx context.Context, d string) {
	mu := &c.putMu[stripe(d)]
	mu.Lock()
	defer mu.Unlock()
	if err := c.cache.Delete(ctx, d); err != nil {
		c.log.Error("mtasts: cache delete failed", slog.String("domain", d), slog.Any("error", err))
	}
	c.forget(d)
}

// forget drops d from the decoded layer.
func (c *Client) forget(d string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.lookupLocked(d); st != nil {
		c.removeLocked(st)
	}
}

// RefreshLoop runs Refresh about every interval (zero means
// DefaultRefreshInterval) until ctx ends, with ±10% random jitter so that
// a fleet of MTAs does not refresh in lockstep. The first run starts after
// one jittered interval. It returns ctx.Err(). Run it in its own
// goroutine:
//
//	go client.RefreshLoop(ctx, 0)
func (c *Client) RefreshLoop(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultRefreshInterval
	}
	for {
		jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(interval))
		t := time.NewTimer(interval + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("mtasts: refresh failed", slog.Any("error", err))
		}
	}
}
