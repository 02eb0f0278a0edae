package mtasts

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
	"unsafe"

	"github.com/smtptls/smtptls/internal/memsize"
)

// DefaultMemoryCacheBytes is the memory bound of a MemoryCache whose
// MaxBytes is zero: about 115,000 typical policies (two mx patterns, 365
// bytes each with their key and bookkeeping: BENCHMARKS.md), or 550
// policies of the largest size allowed (MaxPolicySize). A Client's
// default decoded layer (DefaultDecodedBytes) holds more policies than
// that, so that none the cache holds is parsed again at every lookup.
const DefaultMemoryCacheBytes = 40 << 20

// MemoryCache is a bounded in-memory Cache. It understands the Client's
// entry encoding just enough (the fixed header's expiry and mode) to evict
// wisely: when full, it evicts an expired entry, then a mode-none entry
// (neither protects anything), then anything it cannot decode, and only
// then the least recently used live policy, which it logs. The order
// matters: an attacker who can make the MTA look up many domains of his
// own (each serving a live policy) could otherwise push a target's enforce
// policy out of the cache and then strip TLS on the next delivery.
//
// Sizing: a sender needs one entry per destination domain it delivers to
// within max_age (typically days to a year). An entry holds the policy body
// (at most 64 KiB, usually about a hundred bytes) plus about 140 bytes of
// header and 100 of bookkeeping: a typical policy costs 365 bytes. The
// cache is bounded by that memory (MaxBytes, each entry charged the heap
// it retains), so that it holds as many typical policies as fit while
// large hostile policies cannot use more; an entry bound (NewMemoryCache)
// can be added. A live-policy eviction in the log means the cache is too
// small or under attack. For policies to survive restarts use DirCache
// (or a shared cache) instead.
//
// A MemoryCache is safe for concurrent use. Its zero value is ready to
// use, bounded by DefaultMemoryCacheBytes; so is NewMemoryCache(0).
type MemoryCache struct {
	// Logger receives a warning when a live policy has to be evicted. nil
	// means slog.Default(): such an eviction weakens protection for a
	// domain and must not go unseen.
	Logger *slog.Logger
	// Now returns the current time, to tell expired entries. nil means
	// time.Now.
	Now func() time.Time
	// MaxBytes bounds the estimated memory of the stored entries: their
	// keys and data as allocated, and the cache's bookkeeping. Zero (or
	// negative) means DefaultMemoryCacheBytes.
	MaxBytes int64

	max int // zero: no bound on the number of entries

	mu      sync.Mutex // guards entries, lru and size
	entries map[string]*memEntry
	// lru is the sentinel of a circular list of the entries: lru.next is
	// the most recently used, lru.prev the least. An intrusive list (and
	// the data kept as a string) costs 48 bytes per entry where a
	// container/list element and a separate entry cost 96, a fifth of a
	// typical cached policy.
	lru  memEntry
	size int64 // the estimated memory of the entries
}

type memEntry struct {
	key        string
	data       string
	prev, next *memEntry
}

// unlink removes e from the list.
func (e *memEntry) unlink() {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// pushFront makes e the most recently used entry. Callers hold m.mu.
func (m *MemoryCache) pushFront(e *memEntry) {
	if m.lru.next == nil {
		m.lru.next, m.lru.prev = &m.lru, &m.lru
	}
	e.prev, e.next = &m.lru, m.lru.next
	m.lru.next.prev = e
	m.lru.next = e
}

// moveToFront marks e as the most recently used. Callers hold m.mu.
func (m *MemoryCache) moveToFront(e *memEntry) {
	e.unlink()
	m.pushFront(e)
}

// back returns the least recently used entry, or nil. Callers hold m.mu.
func (m *MemoryCache) back() *memEntry {
	if m.lru.prev == nil || m.lru.prev == &m.lru {
		return nil
	}
	return m.lru.prev
}

// older returns the entry used just before e, or nil. Callers hold m.mu.
func (m *MemoryCache) older(e *memEntry) *memEntry {
	if e.prev == &m.lru {
		return nil
	}
	return e.prev
}

var _ Lister = (*MemoryCache)(nil)

// NewMemoryCache returns a cache holding at most max entries, within
// MaxBytes; max <= 0 means no bound on the number of entries, MaxBytes
// alone bounding the cache.
func NewMemoryCache(max int) *MemoryCache {
	return &MemoryCache{max: max, entries: make(map[string]*memEntry)}
}

// memEntryOverhead is what every entry costs besides its key and data:
// the entry and its map slot.
var memEntryOverhead = int64(memsize.Alloc(int(unsafe.Sizeof(memEntry{})), true) +
	memsize.MapEntry(unsafe.Sizeof(""), unsafe.Sizeof(&memEntry{})))

// memSize estimates the heap an entry of this key and data retains.
func memSize(key, data string) int64 {
	return memEntryOverhead + int64(memsize.String(key)+memsize.String(data))
}

// Get implements Cache. It returns a copy of the entry.
func (m *MemoryCache) Get(ctx context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return nil, ErrCacheMiss
	}
	m.moveToFront(e)
	return []byte(e.data), nil
}

// Put implements Cache. It stores a copy of data and evicts as described
// on MemoryCache when a bound is exceeded.
func (m *MemoryCache) Put(ctx context.Context, key string, data []byte) error {
	if len(data) > maxEntrySize {
		return errors.New("mtasts: cache entry too large")
	}
	s := string(data)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = make(map[string]*memEntry)
	}
	e, ok := m.entries[key]
	if ok {
		m.size += memSize(e.key, s) - memSize(e.key, e.data)
		e.data = s
		m.moveToFront(e)
	} else {
		e = &memEntry{key: key, data: s}
		m.entries[key] = e
		m.pushFront(e)
		m.size += memSize(key, s)
	}
	maxBytes := m.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMemoryCacheBytes
	}
	for ((m.max > 0 && len(m.entries) > m.max) || m.size > maxBytes) && len(m.entries) > 1 {
		m.evictLocked(e)
	}
	return nil
}

// evictLocked removes one entry other than keep. It scans from the least
// recently used end: O(n) per eviction, paid only on a Put into a full
// cache, which follows a network fetch.
func (m *MemoryCache) evictLocked(keep *memEntry) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	t := now()
	var victim, undecodable, none *memEntry
	for e := m.back(); e != nil; e = m.older(e) {
		if e == keep {
			continue
		}
		exp, mode, ok := peekEntryString(e.data)
		switch {
		case !ok:
			if undecodable == nil {
				undecodable = e
			}
		case !t.Before(exp):
			victim = e
		case mode == None:
			if none == nil {
				none = e
			}
		}
		if victim != nil {
			break
		}
	}
	live := false
	switch {
	case victim != nil:
	case none != nil:
		victim = none
	case undecodable != nil:
		victim = undecodable
	default:
		victim = m.back()
		if victim == keep {
			victim = m.older(keep)
		}
		live = true
	}
	if victim == nil {
		return
	}
	if live {
		logger := m.Logger
		if logger == nil {
			logger = slog.Default()
		}
		exp, mode, _ := peekEntryString(victim.data)
		logger.Warn("mtasts: memory cache full, evicting a live policy; enlarge the cache",
			slog.String("domain", victim.key), slog.String("mode", string(mode)),
			slog.Time("expires", exp), slog.Int("entries", len(m.entries)))
	}
	victim.unlink()
	delete(m.entries, victim.key)
	m.size -= memSize(victim.key, victim.data)
}

// Delete implements Cache.
func (m *MemoryCache) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok {
		m.size -= memSize(e.key, e.data)
		e.unlink()
		delete(m.entries, key)
	}
	return nil
}

// Keys implements Lister.
func (m *MemoryCache) Keys(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.entries))
	for k := range m.entries {
		keys = append(keys, k)
	}
	return keys, nil
}

// Len returns the number of entries.
func (m *MemoryCache) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// Bytes returns the estimated memory of the entries, the figure MaxBytes
// bounds.
func (m *MemoryCache) Bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.size
}
