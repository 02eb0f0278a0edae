// Package rediscache is an MTA-STS policy store in Redis for a fleet of
// MTAs: an mtasts.Cache (and mtasts.Lister) that several mtasts.Clients
// share, and a Refresher that runs one refresh schedule for all of them.
//
// It is its own module (github.com/smtptls/smtptls/mtasts/rediscache), so
// that the library does not make every user depend on a Redis client.
//
// # Contract
//
// Cache stores the Client's opaque entries under Prefix+"policy:"+domain,
// each with a Redis expiry (TTL, by default the largest max_age, so that
// Redis never drops a policy that is still live). Get returns
// mtasts.ErrCacheMiss for a missing entry and reads at most MaxEntrySize
// bytes; every other failure is an *Error (KindRedis, KindTooLarge,
// KindBadKey), which the Client logs and reads as a miss: a broken Redis
// costs policy fetches, never a policy that is in force in memory. Each
// command is bounded by Timeout.
//
// # Sharing one store
//
// Every MTA gives its delivery mtasts.Client a Cache on the same Redis
// and Prefix:
//
//	store := &rediscache.Cache{Client: redis.NewClient(&redis.Options{Addr: "redis:6379"})}
//	sts := &mtasts.Client{Cache: store}
//
// A policy fetched by one MTA is then used by all: a Client re-reads the
// store right before fetching, so an MTA that meets a new policy id after
// another has fetched it does not fetch it again, and an MTA that starts
// (or restarts) finds every policy the fleet knows, which closes the
// trust-on-first-use window of a fresh memory cache. Several MTAs that
// meet a new policy id at the same moment fetch it once each (each
// Client's fetches are already shared per domain); that is bounded by the
// number of MTAs, once per policy change.
//
// # One refresh schedule, no stampede
//
// RFC 8461 10.2 asks senders to refresh cached policies proactively. Left
// to themselves, N MTAs running mtasts.Client.RefreshLoop fetch every
// domain N times a day, at the same hour after a fleet restart. Instead,
// each MTA runs a Refresher and not the Client's RefreshLoop:
//
//	r := &rediscache.Refresher{
//		Cache: store,
//		NewClient: func(c mtasts.Cache) *mtasts.Client {
//			return &mtasts.Client{Cache: c, Resolver: res, HTTPClient: hc, Logger: logger}
//		},
//	}
//	go r.Loop(ctx, 24*time.Hour)
//
// Each run claims domains with "SET <prefix>refresh:<domain> <owner> NX
// PX <claim>" and refreshes only those it won, so each domain is fetched
// by one MTA per period, whichever runs first, and the jitter of Loop
// spreads the runs. A claim is a lease that is never released early: it
// expires after Claim (80% of the interval), which is what keeps the other
// MTAs' runs of the same period away. If the claiming MTA dies, the
// domain waits for the claim to expire; its cached policy stays in force
// meanwhile.
//
// # Redis configuration
//
// Use "maxmemory-policy noeviction": an evicting Redis may drop live
// enforce policies under memory pressure that anyone able to make the
// MTAs look up many domains can create. Protect Redis like the MTAs'
// own files: whoever can write to it can replace or remove the policies
// the whole fleet applies.
package rediscache
