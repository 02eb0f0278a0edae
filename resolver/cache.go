package resolver

import (
	"context"
	"errors"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Defaults of a Cache whose fields are zero.
const (
	// DefaultCacheBytes is the memory bound of a Cache whose MaxBytes is
	// zero: the answers an MTA needs for 120,000 to 160,000 active
	// recipient domains (MX, the hosts' A, AAAA and TLSA, the _mta-sts
	// TXT record and, with MTA-STS, the policy host's addresses: 2.5 to
	// 3.3 KB per domain with two MX hosts, BENCHMARKS.md).
	DefaultCacheBytes = 384 << 20
	DefaultMaxTTL     = 6 * time.Hour
	DefaultErrorTTL   = 2 * time.Second
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
// The cache is bounded by memory: each entry is charged the heap it
// retains (its records, names and strings, as the Go runtime allocates
// them, and about 230 bytes of the cache's own bookkeeping), and the
// least recently used entries (as CLOCK approximates them: a hit costs
// no more than setting a bit) are evicted when the total exceeds
// MaxBytes. Answers vary in size a hundredfold (one address against forty
// TXT strings), so a byte bound holds as many small answers as fit where
// a count would either waste memory or evict early. An attacker who makes
// the MTA look up large answers fills the bound sooner and evicts the
// least recently used answers, never more memory.
//
// Answers returned by a Cache share their Records with the cache: callers
// must not modify them.
type Cache struct {
	// Resolver answers the lookups that miss the cache. Required.
	Resolver Resolver

	// MaxBytes bounds the estimated memory of the cached entries; the
	// least recently used entry is evicted first. Zero (or negative) means
	// DefaultCacheBytes. An answer larger than MaxBytes on its own is
	// passed through uncached.
	MaxBytes int64

	// MaxEntries, when positive, also bounds the number of cached entries:
	// an entry is evicted when either bound is exceeded. Zero (or
	// negative) means no bound on the number: MaxBytes alone bounds the
	// cache.
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

	mu sync.Mutex // guards entries, seed, lru, bytes and epoch, and the links and ref bits of the entries
	// entries maps the hash of a key (with seed, random per Cache) to its
	// entry (cachetable.go). An integer key keeps the slots small and
	// spares every probe a comparison of names, a cache miss each on the
	// warm path; a hit is confirmed against the entry's own key. Two keys
	// of one hash (an accident of one in 2^48 per pair of names that no
	// peer can aim at, the seed being secret) share a slot: the later
	// evicts the earlier.
	entries entryTable
	seed    maphash.Seed
	// lru is the sentinel of a circular list of the entries in an
	// approximate order of use, kept by CLOCK (second chance): a hit only
	// sets the entry's ref bit, and eviction takes the entry at the back
	// unless its bit is set, in which case the entry goes to the front
	// with its bit cleared. Moving an entry to the front at every hit, as
	// exact LRU does, would touch two other entries per lookup: cache
	// misses that double the cost of a warm Evaluate rotating over
	// 100,000 domains. The links live in the entries, so that an entry is
	// one object (with its answer inline) rather than three.
	lru   cacheEntry
	bytes int64
	// epoch is the time of the first store: expiries are kept as
	// durations since then, a third the size of a time.Time, and measured
	// on the monotonic clock when Now provides one.
	epoch time.Time
}

type cacheKey struct {
	name  string
	qtype uint16
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
	if c.entries.slots == nil {
		c.mu.Unlock()
		return nil, nil, false
	}
	e := c.entries.get(c.hash(k))
	if e == nil || e.key != k {
		c.mu.Unlock()
		return nil, nil, false
	}
	left := e.expires - now.Sub(c.epoch)
	if left <= 0 {
		c.removeLocked(e)
		c.mu.Unlock()
		return nil, nil, false
	}
	if !e.ref {
		// Written only when clear: a line written is a line the CPU
		// must later write back to memory.
		e.ref = true
	}
	c.mu.Unlock()
	// The entry's fields other than the links and ref never change once
	// stored.
	if e.err != nil {
		return nil, e.err, true
	}
	// Report the remaining lifetime, rounded up to whole seconds like a
	// recursive resolver's decremented TTL.
	return e.answer((left + time.Second - 1).Truncate(time.Second)), nil, true
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
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	e, size := newEntry(k, a, err)
	if size > maxBytes || size > math.MaxInt32 {
		return
	}
	e.size = int32(size)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries.slots == nil {
		c.entries.grow()
		c.seed = maphash.MakeSeed()
		c.lru.prev, c.lru.next = &c.lru, &c.lru
		c.epoch = now
	}
	e.expires = now.Sub(c.epoch) + ttl
	if old := c.entries.get(c.hash(k)); old != nil {
		c.removeLocked(old) // the same key, or another of its hash
	}
	c.entries.put(c.hash(k), e)
	c.pushFront(e)
	c.bytes += int64(e.size)
	for c.bytes > maxBytes || (c.MaxEntries > 0 && c.entries.n > c.MaxEntries) {
		old := c.victimLocked(e)
		if old == nil {
			break // cannot happen: e alone fits both bounds
		}
		c.removeLocked(old)
	}
}

// victimLocked returns the entry to evict other than keep: the one at the
// back of the list, after giving every entry met there that was used
// since it last came round (and keep) a second chance at the front. It
// ends within two turns of the list, since each chance clears a bit; it
// returns nil when keep is alone. Callers hold c.mu.
func (c *Cache) victimLocked(keep *cacheEntry) *cacheEntry {
	for {
		e := c.lru.prev
		switch {
		case e == &c.lru || (e == keep && e.next == &c.lru && e.prev == &c.lru):
			return nil
		case e == keep:
			c.moveToFront(e)
		case e.ref:
			e.ref = false
			c.moveToFront(e)
		default:
			return e
		}
	}
}

// hash returns the table key of k. Callers hold c.mu, and the table
// exists (the seed is set).
//
// The name's hash fills the bits above the lowest 16, from which
// entryTable takes a slot's home, and the query type fills the lowest
// 16: the answers of one name lie side by side. So do those of the names
// an MTA asks about a host or a domain: _25._tcp.mx.example (TLSA, RFC
// 7672 2.2.3; any port) hashes above as mx.example does, and
// _mta-sts.example (RFC 8461 3.1) as example does, their prefix hashed
// into the lowest bits. Only these two forms are folded, so that no
// caller can pile up more than a few names on one home.
func (c *Cache) hash(k cacheKey) uint64 {
	base, prefix := serviceBase(k.name)
	low := uint64(k.qtype)
	if prefix != "" {
		low ^= maphash.String(c.seed, prefix) & 0xffff
	}
	return maphash.String(c.seed, base)<<16 | low
}

// serviceBase splits "_25._tcp.host" (any port) into "host" and its
// prefix, and "_mta-sts.domain" into "domain" and its prefix; other names
// are their own base.
func serviceBase(name string) (base, prefix string) {
	if rest, ok := strings.CutPrefix(name, "_mta-sts."); ok && rest != "" {
		return rest, name[:len(name)-len(rest)]
	}
	if len(name) < 2 || name[0] != '_' {
		return name, ""
	}
	i := 1
	for i < len(name) && name[i] >= '0' && name[i] <= '9' {
		i++
	}
	if rest, ok := strings.CutPrefix(name[i:], "._tcp."); ok && i > 1 && rest != "" {
		return rest, name[:len(name)-len(rest)]
	}
	return name, ""
}

// pushFront makes e the most recently used entry. Callers hold c.mu.
func (c *Cache) pushFront(e *cacheEntry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

// moveToFront marks e as the most recently used. Callers hold c.mu.
func (c *Cache) moveToFront(e *cacheEntry) {
	if c.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	c.pushFront(e)
}

// removeLocked drops e from the cache. Callers hold c.mu.
func (c *Cache) removeLocked(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	c.entries.del(c.hash(e.key))
	c.bytes -= int64(e.size)
}

// Len returns the number of cached entries, expired ones included until
// they are looked up or evicted.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.n
}

// Bytes returns the estimated memory of the cached entries, the figure
// MaxBytes bounds.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
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
		if c.entries.slots != nil {
			c.entries = entryTable{}
			c.entries.grow()
			c.lru.prev, c.lru.next = &c.lru, &c.lru
		}
		c.bytes = 0
		return
	}
	var drop []*cacheEntry
	c.entries.all(func(e *cacheEntry) {
		if e.err != nil || dns.IsSubDomain(z, dns.Fqdn(e.key.name)) || chainIn(z, e.cnames) {
			drop = append(drop, e)
		}
	})
	for _, e := range drop {
		c.removeLocked(e)
	}
}

// chainIn reports whether one of the CNAME targets lies at or below zone.
func chainIn(zone string, cnames []string) bool {
	for _, n := range cnames {
		if dns.IsSubDomain(zone, n) {
			return true
		}
	}
	return false
}
