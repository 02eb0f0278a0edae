package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/smtptls/smtptls/mtasts"
)

// claimBatch is the number of claims sent in one pipeline.
const claimBatch = 500

// Refresher runs the proactive refresh of a shared Cache (RFC 8461 10.2)
// once for a whole fleet: every MTA runs Loop, and each domain is fetched
// by the one MTA that claims it first, instead of by every MTA.
//
// A run lists the store's domains and claims each one with
// "SET <prefix>refresh:<domain> <name> NX PX <claim>": only the MTA whose
// SET succeeds refreshes the domain, with a fresh mtasts.Client whose
// Cache shows it only the domains it claimed; the others skip it until
// the claim expires. The claim is not released after the refresh: it is
// what keeps the other MTAs' runs of the same period from fetching the
// domain again. An MTA that dies in the middle of a run leaves its
// remaining domains unrefreshed until their claims expire; their cached
// policies stay in force meanwhile, and a lookup that sees a new policy
// id fetches it at once.
//
// The MTAs' delivery Clients must then not run their own RefreshLoop,
// which would refresh every domain they hold, uncoordinated.
//
// Set the fields before first use and do not change them afterwards.
type Refresher struct {
	// Cache is the shared store. Required.
	Cache *Cache

	// NewClient returns the mtasts.Client of one refresh run, configured
	// like the MTA's delivery Client (Resolver, HTTPClient, Logger,
	// PruneAfter, FetchTimeout, ...), with cache as its Cache: cache shows
	// the Client only the domains this run claimed. Refresh fails if the
	// Client uses another Cache. Nil means &mtasts.Client{Cache: cache}:
	// the system's resolver and roots, slog.Default().
	NewClient func(cache mtasts.Cache) *mtasts.Client

	// Claim is how long a domain stays claimed by the MTA that refreshes
	// it. Zero means 80% of the interval given to Loop, or of
	// mtasts.DefaultRefreshInterval for Refresh: long enough that no other
	// MTA refreshes the domain in the same period, short enough that the
	// next period's first run claims it again. A claim longer than the
	// interval skips periods; a very short one lets MTAs refresh a domain
	// again soon after another did.
	Claim time.Duration

	// Name identifies this MTA in its claims, for operators reading
	// Redis. Empty means "<hostname>:<pid>:<random>".
	Name string

	// Logger receives a line per run. Nil means slog.Default().
	Logger *slog.Logger

	nameOnce sync.Once
	name     string
}

func (r *Refresher) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Refresher) owner() string {
	r.nameOnce.Do(func() {
		r.name = r.Name
		if r.name == "" {
			host, _ := os.Hostname()
			var b [4]byte
			rand.Read(b[:])
			r.name = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
		}
	})
	return r.name
}

// Refresh runs one coordinated refresh: it claims the domains no other
// MTA has claimed within Claim, and refreshes those with the Client's
// Refresh (re-fetch, prune unused entries, delete expired ones). It
// returns an error when ctx ends, Redis fails, or NewClient does not use
// the cache it is given.
func (r *Refresher) Refresh(ctx context.Context) error {
	return r.refresh(ctx, r.claimFor(mtasts.DefaultRefreshInterval))
}

func (r *Refresher) claimFor(interval time.Duration) time.Duration {
	if r.Claim > 0 {
		return r.Claim
	}
	return interval / 10 * 8
}

func (r *Refresher) refresh(ctx context.Context, claim time.Duration) error {
	if r.Cache == nil || r.Cache.Client == nil {
		return &Error{Kind: KindConfig, Op: "refresh", Err: errors.New("Refresher needs a Cache with a Redis client")}
	}
	v := &claimView{Cache: r.Cache, owner: r.owner(), claim: claim}
	var client *mtasts.Client
	if r.NewClient != nil {
		client = r.NewClient(v)
	} else {
		client = &mtasts.Client{Cache: v}
	}
	if client == nil || client.Cache != mtasts.Cache(v) {
		return &Error{Kind: KindConfig, Op: "refresh", Err: errors.New("NewClient must return a Client using the cache it is given; with another cache the refresh would not be coordinated")}
	}
	start := time.Now()
	err := client.Refresh(ctx)
	v.mu.Lock()
	listed, claimed := v.listed, v.claimed
	v.mu.Unlock()
	r.log().Info("rediscache: fleet refresh run", slog.Int("domains", listed), slog.Int("claimed", claimed),
		slog.String("owner", v.owner), slog.Duration("took", time.Since(start).Round(time.Millisecond)), slog.Any("error", err))
	return err
}

// Loop runs Refresh about every interval (zero means
// mtasts.DefaultRefreshInterval), with ±10% random jitter, until ctx
// ends; the first run starts after one jittered interval. With a zero
// Claim, claims last 80% of interval. It returns ctx.Err(). Run it in its
// own goroutine on every MTA of the fleet, instead of the delivery
// Client's RefreshLoop.
func (r *Refresher) Loop(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = mtasts.DefaultRefreshInterval
	}
	claim := r.claimFor(interval)
	for {
		jitter := time.Duration((mrand.Float64()*0.2 - 0.1) * float64(interval))
		t := time.NewTimer(interval + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if err := r.refresh(ctx, claim); err != nil && ctx.Err() == nil {
			r.log().Error("rediscache: fleet refresh failed", slog.Any("error", err))
		}
	}
}

// claimView is the Cache as one refresh run sees it: Keys lists only the
// domains the run claimed.
type claimView struct {
	*Cache
	owner string
	claim time.Duration

	mu              sync.Mutex // guards listed and claimed
	listed, claimed int
}

// Keys claims every domain of the store that no one holds a claim on,
// and returns those.
func (v *claimView) Keys(ctx context.Context) ([]string, error) {
	all, err := v.Cache.Keys(ctx)
	if err != nil {
		return nil, err
	}
	var mine []string
	for len(all) > 0 {
		batch := all[:min(claimBatch, len(all))]
		all = all[len(batch):]
		octx, cancel := v.opContext(ctx)
		cmds := make([]*redis.BoolCmd, len(batch))
		_, err := v.Client.Pipelined(octx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.SetNX(octx, v.claimKey(k), v.owner, v.claim)
			}
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, &Error{Kind: KindRedis, Op: "claim", Err: err}
		}
		for i, cmd := range cmds {
			if cmd.Val() {
				mine = append(mine, batch[i])
			}
		}
		v.mu.Lock()
		v.listed += len(batch)
		v.mu.Unlock()
	}
	v.mu.Lock()
	v.claimed += len(mine)
	v.mu.Unlock()
	return mine, nil
}
