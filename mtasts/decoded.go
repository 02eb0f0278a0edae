package mtasts

import (
	"context"
	"hash/maphash"
	"time"
	"unsafe"

	"github.com/smtptls/smtptls/internal/memsize"
)

// DefaultDecodedBytes is the memory bound of a Client's decoded layer when
// its DecodedBytes is zero: about 135,000 domains with a typical policy
// (two mx patterns, about 950 bytes decoded), more than a MemoryCache of
// DefaultMemoryCacheBytes holds, so that no policy the Cache keeps is
// parsed again at every lookup; or 650,000 domains without one (about
// 200 bytes each: BENCHMARKS.md).
const DefaultDecodedBytes = 128 << 20

// domainState is the decoded in-memory layer for one domain: the cached
// entry (as in the Cache) and the fetch back-off. The layer is a map of
// states and a list of them in an approximate order of use, bounded by
// their estimated memory (Client.DecodedBytes): a lookup sets the state's
// ref bit, and eviction takes the state at the back of the list unless
// its bit is set, which sends it to the front with the bit cleared
// (CLOCK). Moving the state to the front at every lookup would touch two
// other states, cache misses on the warm path. The fields are guarded by
// Client.mu.
type domainState struct {
	domain string
	entry  *entry // nil when the Cache holds no usable entry
	failID string
	failAt time.Time
	// failErr is the error of the last failed fetch of failID.
	failErr error
	// reloadedAt is when reloadStale last read the Cache.
	reloadedAt time.Time

	// prev and next link the states in the order of use as CLOCK keeps
	// it (nil once the state has left the layer), ref says the state was
	// used since the hand last passed, size is what it is charged.
	prev, next *domainState
	size       int32
	ref        bool
}

// stateBlock holds a state and the bytes of its domain in one
// allocation, the domain first: the lookup that compares it reads one
// object where it read two, each a cache miss on the warm path of an MTA
// delivering to more domains than the CPU's caches hold. The states are
// mapped by a seeded hash of the domain, confirmed against the state's
// own (two domains of one hash, which no peer can aim at, share a slot:
// the later evicts the earlier).
type stateBlock[B any] struct {
	buf B
	st  domainState
}

// newState returns a state for d in a block of its own.
func newState(d string) *domainState {
	switch {
	case len(d) <= 32:
		return newStateIn[[32]byte](d)
	case len(d) <= 64:
		return newStateIn[[64]byte](d)
	case len(d) <= 128:
		return newStateIn[[128]byte](d)
	}
	return newStateIn[[256]byte](d) // a domain name has at most 253
}

func newStateIn[B any](d string) *domainState {
	b := new(stateBlock[B])
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&b.buf)), unsafe.Sizeof(b.buf))
	n := copy(buf, d)
	b.st.domain = unsafe.String(&buf[0], n)
	return &b.st
}

// blockSize is the size of the block of a state whose domain has n bytes.
func blockSize(n int) uintptr {
	switch {
	case n <= 32:
		return unsafe.Sizeof(stateBlock[[32]byte]{})
	case n <= 64:
		return unsafe.Sizeof(stateBlock[[64]byte]{})
	case n <= 128:
		return unsafe.Sizeof(stateBlock[[128]byte]{})
	}
	return unsafe.Sizeof(stateBlock[[256]byte]{})
}

// mapSlot is what a state's slot in the map costs.
var mapSlot = memsize.MapEntry(unsafe.Sizeof(uint64(0)), unsafe.Sizeof(&domainState{}))

// memSize estimates the heap st retains: its block (the state and its
// domain), its map slot, the decoded entry (header fields, policy body,
// parsed policy, warnings) and the error of the last failed fetch.
func (st *domainState) memSize() int32 {
	var c memsize.Counter
	c.AddString(st.domain) // in the block
	n := memsize.Alloc(int(blockSize(len(st.domain))), true) + mapSlot +
		c.AddString(st.failID) + c.Add(st.entry) + c.Add(st.failErr)
	// An entry is at most MaxPolicySize and a few fields; an error
	// holding far more (certificates) is still far below 2 GiB.
	return int32(min(n, 1<<30))
}

// state returns the decoded state of d, loading it from the Cache when
// the decoded layer does not hold it.
func (c *Client) state(ctx context.Context, d string) *domainState {
	c.mu.Lock()
	if st := c.lookupLocked(d); st != nil {
		if !st.ref {
			st.ref = true // written only when clear: no line dirtied per lookup
		}
		c.mu.Unlock()
		return st
	}
	c.mu.Unlock()
	e := c.load(ctx, d)
	st := newState(d)
	st.entry = e
	if e != nil {
		e.domain = st.domain // one copy of the name
		if !e.failAt.IsZero() {
			st.failID, st.failAt = e.failID, e.failAt
			st.failErr = &Error{Kind: e.failKind, Domain: d, Result: e.failType,
				Reason: "remembered from " + e.failAt.UTC().Format(time.RFC3339)}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.lookupLocked(d); cur != nil {
		// Loaded concurrently; keep the first.
		return cur
	}
	h := maphash.String(c.seed, d)
	if old := c.states[h]; old != nil {
		c.removeLocked(old) // another domain of the same hash
	}
	c.states[h] = st
	c.pushFront(st)
	c.chargeLocked(st)
	return st
}

// lookupLocked returns the state of d in the decoded layer, or nil.
// Callers hold c.mu.
func (c *Client) lookupLocked(d string) *domainState {
	if st := c.states[maphash.String(c.seed, d)]; st != nil && st.domain == d {
		return st
	}
	return nil
}

// chargeLocked recomputes what st is charged after a change of its entry
// or back-off, then evicts the least recently used states other than st
// while the layer exceeds its bound. A state that has left the layer
// (evicted while a lookup held it) is not charged. Callers hold c.mu.
func (c *Client) chargeLocked(st *domainState) {
	if st.prev == nil {
		return
	}
	n := st.memSize()
	c.decodedBytes += int64(n - st.size)
	st.size = n
	max := c.DecodedBytes
	if max <= 0 {
		max = DefaultDecodedBytes
	}
	for c.decodedBytes > max {
		old := c.victimLocked(st)
		if old == nil {
			break
		}
		c.removeLocked(old)
	}
}

// victimLocked returns the state to evict other than keep: the one at the
// back of the list, after giving every state met there that was used
// since it last came round (and keep) a second chance at the front. It
// ends within two turns of the list, since each chance clears a bit; it
// returns nil when keep is alone. Callers hold c.mu.
func (c *Client) victimLocked(keep *domainState) *domainState {
	for {
		st := c.lru.prev
		switch {
		case st == &c.lru || (st == keep && st.next == &c.lru && st.prev == &c.lru):
			return nil
		case st == keep:
			c.moveToFront(st)
		case st.ref:
			st.ref = false
			c.moveToFront(st)
		default:
			return st
		}
	}
}

// pushFront makes st the most recently used state. Callers hold c.mu.
func (c *Client) pushFront(st *domainState) {
	st.prev, st.next = &c.lru, c.lru.next
	c.lru.next.prev = st
	c.lru.next = st
}

// moveToFront marks st as the most recently used. Callers hold c.mu.
func (c *Client) moveToFront(st *domainState) {
	if c.lru.next == st {
		return
	}
	st.prev.next, st.next.prev = st.next, st.prev
	c.pushFront(st)
}

// removeLocked drops st from the decoded layer; the Cache still holds its
// entry. Callers hold c.mu.
func (c *Client) removeLocked(st *domainState) {
	st.prev.next, st.next.prev = st.next, st.prev
	st.prev, st.next = nil, nil
	delete(c.states, maphash.String(c.seed, st.domain))
	c.decodedBytes -= int64(st.size)
	st.size = 0
}
