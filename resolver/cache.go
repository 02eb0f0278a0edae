package resolver

import (
	"container/list"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Defaults of a Cache whose fields are zero.
const (
	DefaultCacheEntries = 10000
	DefaultMaxTTL       = 6 * time.Hour
	DefaultErrorTTL     = 2 * time.Second
	// maxErrorTTL caps ErrorTTL: a failure is remembered only long enough
	// to stop a burst of identical queries, never long enough to delay
	// recovery noticeably.
	maxErrorTTL = 5 * time.Second
	// flightTimeout bounds an upstream lookup shared by several callers; it
	// runs detached from any one caller's context so that one caller giving
	// up does not fail the others.
	flightTimeout = 30 * time.Second
)

// Cache is a Resolver that caches the answers of another Resolver by their
// TTL, positive and negative alike (RFC 2308), and merges concurrent lookups
// of the same (name, type) into one upstream query. It is safe for
// concurrent use; the zero value is not usable until Resolver is set.
//
// Answers returned by a Cache share their Records with the cache: callers
// must not modify them.
type Cache struct {
	// Resolver answers the lookups that miss the cache. Required.
	Resolver Resolver

	// MaxEntries bounds the number of cached answers; the least recently
	// used entry is evicted first. Zero means DefaultCacheEntries.
	MaxEntries int

	// MaxTTL caps the time an answer is kept, whatever its TTL. Zero means
	// DefaultMaxTTL.
	MaxTTL time.Duration

	// ErrorTTL is how long a failed lookup is remembered, so that a burst
	// of lookups of a failing name sends one query. Zero means
	// DefaultErrorTTL; it is capped at 5 seconds and negative means never.
	ErrorTTL time.Duration

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	flight singleflight.Group

	mu      sync.Mutex // guards entries and lru
	entries map[cacheKey]*list.Element
	lru     *list.List // of *cacheEntry, most recently used first
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	key     cacheKey
	ans     *Answer
	err     error
	expires time.Time
}

// Lookup implements Resolver.
func (c *Cache) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	if c.Resolver == nil {
		return nil, &Error{Name: name, Type: qtype, Kind: KindNetwork, Reason: "resolver.Cache has no upstream Resolver"}
	}
	k := cacheKey{cacheName(name), qtype}
	if a, err, ok := c.get(k); ok {
		return a, err
	}
	ch := c.flight.DoChan(k.name+"/"+strconv.Itoa(int(qtype)), func() (any, error) {
		// Another caller may have filled the entry between our miss and
		// the start of this flight.
		if a, err, ok := c.get(k); ok {
			return a, err
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flightTimeout)
		defer cancel()
		a, err := c.Resolver.Lookup(fctx, k.name, qtype)
		c.put(k, a, err)
		return a, err
	})
	select {
	case res := <-ch:
		a, _ := res.Val.(*Answer)
		if a != nil {
			cp := *a
			a = &cp
		}
		return a, res.Err
	case <-ctx.Done():
		return nil, &Error{Name: k.name, Type: qtype, Kind: KindTimeout, Reason: "lookup abandoned", Err: ctx.Err()}
	}
}

// cacheName is the cache key form of name: lowercase without the trailing
// dot, which costs no allocation for names other packages already
// normalised.
func cacheName(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	if name == "" {
		return "."
	}
	return name
}

// Peek returns the cached outcome of a lookup without asking upstream; ok
// is false when nothing unexpired is cached. LookupAddrs uses it to skip
// its concurrent lookups when both answers are cached.
func (c *Cache) Peek(name string, qtype uint16) (a *Answer, ok bool, err error) {
	a, err, ok = c.get(cacheKey{cacheName(name), qtype})
	return a, ok, err
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cache) get(k cacheKey) (*Answer, error, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return nil, nil, false
	}
	e := el.Value.(*cacheEntry)
	left := e.expires.Sub(now)
	if left <= 0 {
		c.lru.Remove(el)
		delete(c.entries, k)
		return nil, nil, false
	}
	c.lru.MoveToFront(el)
	if e.err != nil {
		return nil, e.err, true
	}
	cp := *e.ans
	// Report the remaining lifetime, rounded up to whole seconds like a
	// recursive resolver's decremented TTL.
	cp.TTL = (left + time.Second - 1).Truncate(time.Second)
	return &cp, nil, true
}

func (c *Cache) put(k cacheKey, a *Answer, err error) {
	var ttl time.Duration
	switch {
	case err != nil:
		var re *Error
		if !errors.As(err, &re) {
			return // not a lookup outcome (a bug upstream?): don't remember it
		}
		ttl = c.ErrorTTL
		if ttl == 0 {
			ttl = DefaultErrorTTL
		}
		ttl = min(ttl, maxErrorTTL)
	case a == nil:
		return
	default:
		maxTTL := c.MaxTTL
		if maxTTL <= 0 {
			maxTTL = DefaultMaxTTL
		}
		ttl = min(a.TTL, maxTTL)
	}
	if ttl <= 0 {
		return
	}
	max := c.MaxEntries
	if max <= 0 {
		max = DefaultCacheEntries
	}
	e := &cacheEntry{key: k, ans: a, err: err, expires: c.now().Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[cacheKey]*list.Element)
		c.lru = list.New()
	}
	if el, ok := c.entries[k]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[k] = c.lru.PushFront(e)
	for c.lru.Len() > max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cacheEntry).key)
	}
}

// Len returns the number of cached entries, expired ones included until
// they are looked up or evicted.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Flush removes the cached answers at and below zone (label-wise: a
// flush of "example." keeps "anexample."), those whose CNAME chain
// passes through a name at or below zone, and every cached failure
// (they live a few seconds anyway). Flush(".") or Flush("") removes
// every entry.
//
// A change of what makes answers Secure or Insecure below the Cache (a
// negative trust anchor added or lifted with
// Validating.SetNegativeAnchors, new trust anchors) does not reach the
// answers already cached here: flush the zones concerned.
func (c *Cache) Flush(zone string) {
	z := Fqdn(zone)
	c.mu.Lock()
	defer c.mu.Unlock()
	if z == "." {
		c.entries = nil
		c.lru = nil
		return
	}
	for k, el := range c.entries {
		e := el.Value.(*cacheEntry)
		if e.err == nil && !dns.IsSubDomain(z, dns.Fqdn(k.name)) && !chainIn(z, e.ans) {
			continue
		}
		c.lru.Remove(el)
		delete(c.entries, k)
	}
}

// chainIn reports whether a CNAME target of a lies at or below zone.
func chainIn(zone string, a *Answer) bool {
	for _, n := range a.CNAMEs {
		if dns.IsSubDomain(zone, n) {
			return true
		}
	}
	return false
}
