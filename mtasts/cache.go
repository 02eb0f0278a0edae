package mtasts

import (
	"context"
)

// Cache stores policy entries across lookups (and, for persistent
// implementations, across restarts). It has the shape of
// golang.org/x/crypto/acme/autocert's Cache: the Client owns the encoding,
// the Cache stores opaque bytes under a key (the policy domain, lowercase
// A-labels). Implementations must be safe for concurrent use. MemoryCache
// and DirCache ship with this package; a cache shared by a fleet of MTAs
// (Redis, a database) plugs in the same way.
//
// Error contract: Get returns ErrCacheMiss when no entry exists; any other
// error is logged by the Client and treated as a miss (a policy is then
// fetched again: a broken cache costs fetches, never security beyond
// trust-on-first-use). Put and Delete errors are logged.
type Cache interface {
	// Get returns the entry stored under key, or ErrCacheMiss.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores data under key, replacing any entry. The Cache must not
	// retain data after Put returns unless it copies it.
	Put(ctx context.Context, key string, data []byte) error
	// Delete removes the entry under key; deleting a missing entry is not
	// an error.
	Delete(ctx context.Context, key string) error
}

// Lister is implemented by caches that can enumerate their keys. Client's
// Refresh uses it to re-fetch and prune entries that this process has not
// looked up since it started; with a Cache that is not a Lister, Refresh
// only covers the domains held in the Client's memory.
type Lister interface {
	// Keys returns the keys of all entries, in no particular order.
	Keys(ctx context.Context) ([]string, error)
}
