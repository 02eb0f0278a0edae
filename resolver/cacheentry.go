package resolver

import (
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/memsize"
)

// cacheEntry is one cached lookup: an answer without its TTL (computed
// from expires), or a failure. The answer's fields are inline, and so is
// the slice of its records when there are at most two (most answers).
// The fields every hit reads come first.
//
// Entries are laid out for the warm path of an MTA that delivers to more
// domains than the CPU's caches hold, where each object a lookup touches
// is a cache miss (and on a virtual machine a TLB miss too), as dear as
// the rest of the lookup. newEntry therefore packs an answer of no
// record or of up to two A, AAAA, MX or TLSA records, whose name and
// record data fit in maxPacked bytes, into one allocation, a block: the
// entry, copies of the records, and a buffer with the name, addresses,
// host names and certificate digests they point into. A lookup then
// touches the map's slot and the block, where it touched up to seven
// objects before; a warm Evaluate rotating over 100,000 domains got
// about twice as fast. Other answers keep the upstream's records.
type cacheEntry struct {
	key     cacheKey
	expires time.Duration // since the Cache's epoch
	err     error         // nil for an answer
	name    string
	records []dns.RR
	cnames  []string
	reason  string
	ede     uint16
	nx      bool
	sec     Security
	ref     bool  // used since the CLOCK hand last passed
	size    int32 // the estimate charged against MaxBytes

	prev, next *cacheEntry
	rrs        [2]dns.RR // the records when there are at most two
}

// answer returns the cached answer with the given remaining lifetime.
func (e *cacheEntry) answer(ttl time.Duration) *Answer {
	return &Answer{Name: e.name, Type: e.key.qtype, Records: e.records, CNAMEs: e.cnames, NXDomain: e.nx,
		TTL: ttl, Security: e.sec, EDE: e.ede, Reason: e.reason}
}

// block0, block1 and block2 hold an entry, copies of its records (none,
// one or two of type R) and the bytes of its strings (B, a byte array) in
// one allocation. The bytes come first, the name first among them, so
// that the name and the entry's key, which every lookup compares, share
// a cache line.
type block0[B any] struct {
	buf B
	e   cacheEntry
}

type block1[R, B any] struct {
	buf B
	e   cacheEntry
	rr  [1]R
}

type block2[R, B any] struct {
	buf B
	e   cacheEntry
	rr  [2]R
}

// maxPacked is the largest string buffer of a packed entry; an answer
// whose name and record data take more keeps its own objects.
const maxPacked = 192

// mapSlot is what an entry's slot in the Cache's table costs: a slot over
// the table's occupancy, 3/8 to 3/4 as it doubles.
var mapSlot = int(unsafe.Sizeof(tableSlot{})) * 2

// newEntry returns the entry of a lookup's outcome (a nil a for a
// failure) and the heap it retains: its objects, its strings and records
// where they are its own, its map slot. The key shares the answer's name
// (the same name without the trailing dot) rather than keep the caller's
// string.
func newEntry(k cacheKey, a *Answer, err error) (*cacheEntry, int64) {
	if a == nil {
		var c memsize.Counter
		e := &cacheEntry{key: k, err: err}
		n := memsize.Alloc(int(unsafe.Sizeof(*e)), true) + mapSlot + c.AddString(k.name) + c.Add(err)
		return e, int64(n)
	}
	e, objects := packed(a)
	var c memsize.Counter
	n := objects + mapSlot
	if e == nil {
		e = &cacheEntry{name: a.Name, records: a.Records}
		if l := len(a.Records); l > 0 && l <= len(e.rrs) {
			copy(e.rrs[:], a.Records)
			e.records = e.rrs[:l:l]
			for _, rr := range e.records {
				n += c.Add(rr)
			}
		} else {
			n += c.Add(a.Records)
		}
		n += memsize.Alloc(int(unsafe.Sizeof(*e)), true) + c.AddString(e.name)
	}
	e.key, e.cnames, e.reason = k, a.CNAMEs, a.Reason
	e.ede, e.nx, e.sec = a.EDE, a.NXDomain, a.Security
	if l := len(k.name); len(e.name) == l+1 && e.name[:l] == k.name {
		e.key.name = e.name[:l]
	} else {
		n += c.AddString(k.name)
	}
	n += c.Add(a.CNAMEs) + c.AddString(a.Reason)
	return e, int64(n)
}

// packed returns a's entry packed as cacheEntry's comment describes,
// with its memory, or nil when a's records are not of a kind it packs.
// The records' owner names become the packed name (or the last CNAME
// target), as they were.
func packed(a *Answer) (*cacheEntry, int) {
	owner := a.Target()
	if len(a.Records) > 2 {
		return nil, 0
	}
	size := len(a.Name)
	for _, rr := range a.Records {
		if rr.Header().Name != owner {
			return nil, 0
		}
		switch r := rr.(type) {
		case *dns.A:
			size += len(r.A)
		case *dns.AAAA:
			size += len(r.AAAA)
		case *dns.MX:
			size += len(r.Mx)
		case *dns.TLSA:
			size += len(r.Certificate)
		default:
			return nil, 0
		}
	}
	if size > maxPacked {
		return nil, 0
	}
	if len(a.Records) == 0 {
		return packSized[struct{}](a, size)
	}
	switch a.Records[0].(type) {
	case *dns.A:
		return packSized[dns.A](a, size)
	case *dns.AAAA:
		return packSized[dns.AAAA](a, size)
	case *dns.MX:
		return packSized[dns.MX](a, size)
	case *dns.TLSA:
		return packSized[dns.TLSA](a, size)
	}
	return nil, 0
}

// packSized packs a into a block whose buffer holds size bytes.
func packSized[R any](a *Answer, size int) (*cacheEntry, int) {
	switch {
	case size <= 32:
		return packBlock[R, [32]byte](a)
	case size <= 64:
		return packBlock[R, [64]byte](a)
	case size <= 128:
		return packBlock[R, [128]byte](a)
	}
	return packBlock[R, [maxPacked]byte](a)
}

// packBlock copies a's name and records (none, or all of type *R) into a new
// block with buffer B, and returns its entry and the block's memory; nil
// when a record is of another type.
func packBlock[R, B any](a *Answer) (*cacheEntry, int) {
	var (
		e    *cacheEntry
		dst  []R
		buf  []byte
		size uintptr
	)
	view := func(b *B) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(b)), unsafe.Sizeof(*b))[:0] }
	switch len(a.Records) {
	case 0:
		b := new(block0[B])
		e, buf, size = &b.e, view(&b.buf), unsafe.Sizeof(*b)
	case 1:
		b := new(block1[R, B])
		e, dst, buf, size = &b.e, b.rr[:], view(&b.buf), unsafe.Sizeof(*b)
	default:
		b := new(block2[R, B])
		e, dst, buf, size = &b.e, b.rr[:], view(&b.buf), unsafe.Sizeof(*b)
	}
	sb := stringBuf{b: buf}
	e.name = sb.str(a.Name)
	owner := e.name
	if n := len(a.CNAMEs); n > 0 {
		owner = a.CNAMEs[n-1]
	}
	for i, rr := range a.Records {
		var p dns.RR
		d := any(&dst[i])
		switch r := rr.(type) {
		case *dns.A:
			c, ok := d.(*dns.A)
			if !ok {
				return nil, 0
			}
			*c = *r
			c.A = sb.bytes(r.A)
			p = c
		case *dns.AAAA:
			c, ok := d.(*dns.AAAA)
			if !ok {
				return nil, 0
			}
			*c = *r
			c.AAAA = sb.bytes(r.AAAA)
			p = c
		case *dns.MX:
			c, ok := d.(*dns.MX)
			if !ok {
				return nil, 0
			}
			*c = *r
			c.Mx = sb.str(r.Mx)
			p = c
		case *dns.TLSA:
			c, ok := d.(*dns.TLSA)
			if !ok {
				return nil, 0
			}
			*c = *r
			c.Certificate = sb.str(r.Certificate)
			p = c
		default:
			return nil, 0
		}
		p.Header().Name = owner
		e.rrs[i] = p
	}
	if n := len(a.Records); n > 0 {
		e.records = e.rrs[:n:n]
	}
	return e, memsize.Alloc(int(size), true)
}

// stringBuf hands out strings and byte slices copied into a buffer sized
// in advance, which it never grows (that would leave earlier strings in
// another array).
type stringBuf struct{ b []byte }

func (s *stringBuf) str(v string) string {
	if v == "" {
		return ""
	}
	off := len(s.b)
	s.b = append(s.b, v...)
	return unsafe.String(&s.b[off], len(v))
}

func (s *stringBuf) bytes(v []byte) []byte {
	if len(v) == 0 {
		return v
	}
	off := len(s.b)
	s.b = append(s.b, v...)
	return s.b[off : off+len(v) : off+len(v)]
}
