package resolver

// entryTable maps the 64-bit hash of a key to its entry: an open-addressing
// table with linear probing, whose slots hold the hash beside the
// pointer. A lookup usually reads one cache line of slots, where a Go map
// reads a group's control word and then its slot, often two lines: on the
// warm path of an MTA delivering to many domains, every line is a cache
// miss. A slot's home is taken from the hash's bits above the lowest 16,
// which Cache.hash fills with the query type: the answers of one name
// (a host's A and AAAA, asked one after the other) lie side by side,
// usually in one line. It is not safe for concurrent use (Cache.mu guards
// it).
type entryTable struct {
	slots []tableSlot // a power of two in length, or nil
	n     int         // entries
}

type tableSlot struct {
	h uint64 // the key's hash, never 0; 0 marks a free slot
	e *cacheEntry
}

// minTableSlots is the size of a new table.
const minTableSlots = 64

// slotHash makes a hash usable as a slot's mark (0 means free).
func slotHash(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// home is the first slot a hash probes.
func home(h, mask uint64) uint64 { return (h >> 16) & mask }

// get returns the entry under h, or nil.
func (t *entryTable) get(h uint64) *cacheEntry {
	if t.slots == nil {
		return nil
	}
	h = slotHash(h)
	mask := uint64(len(t.slots) - 1)
	for i := home(h, mask); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.h == h {
			return s.e
		}
		if s.h == 0 {
			return nil
		}
	}
}

// put stores e under h, replacing the entry there, which it returns.
func (t *entryTable) put(h uint64, e *cacheEntry) (old *cacheEntry) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	h = slotHash(h)
	mask := uint64(len(t.slots) - 1)
	for i := home(h, mask); ; i = (i + 1) & mask {
		s := &t.slots[i]
		switch s.h {
		case h:
			old, s.e = s.e, e
			return old
		case 0:
			s.h, s.e = h, e
			t.n++
			return nil
		}
	}
}

// del removes the entry under h, shifting the entries that probed past
// its slot back so that no lookup stops early (no tombstones).
func (t *entryTable) del(h uint64) {
	if t.slots == nil {
		return
	}
	h = slotHash(h)
	mask := uint64(len(t.slots) - 1)
	i := home(h, mask)
	for ; t.slots[i].h != h; i = (i + 1) & mask {
		if t.slots[i].h == 0 {
			return
		}
	}
	t.n--
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := t.slots[j]
		if s.h == 0 {
			break
		}
		// s may move into the hole at i unless its home slot lies in
		// (i, j], cyclically.
		k := home(s.h, mask)
		if (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			t.slots[i] = s
			i = j
		}
	}
	t.slots[i] = tableSlot{}
}

// grow doubles the table and places every entry again.
func (t *entryTable) grow() {
	old := t.slots
	t.slots = make([]tableSlot, max(minTableSlots, 2*len(old)))
	mask := uint64(len(t.slots) - 1)
	for _, s := range old {
		if s.h == 0 {
			continue
		}
		i := home(s.h, mask)
		for t.slots[i].h != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// all calls f for every entry; f may not change the table.
func (t *entryTable) all(f func(e *cacheEntry)) {
	for _, s := range t.slots {
		if s.h != 0 {
			f(s.e)
		}
	}
}
