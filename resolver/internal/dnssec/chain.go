package dnssec

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/memsize"
	"github.com/smtptls/smtptls/internal/quote"
)

// The chain of trust in stub mode. Zone cuts are not known in advance:
// signed data names its zone in the RRSIG signer field, and the DS RRset
// of that zone (or the proof of its absence) is signed by the parent, so
// following signer names from the bottom up finds every cut on a secure
// path (RFC 4035 5). Unsigned data is placed by walking down from the
// deepest known zone, asking for the DS of each name in turn, until a
// secure proof of an insecure delegation (Insecure) or the name itself
// (then the data should have been signed: Bogus).

// status is what the validator knows about a name as a zone apex.
type status uint8

const (
	// statusSecure: a zone apex with a validated DNSKEY RRset.
	statusSecure status = iota + 1
	// statusInsecure: the name is, or is below, an insecure delegation, or
	// its zone has no supported algorithm: everything at and below it is
	// Insecure.
	statusInsecure
	// statusNotCut: the name exists in the zone above it (or is an empty
	// non-terminal) and is not a zone apex.
	statusNotCut
	// statusNoName: the name provably does not exist.
	statusNoName
)

// zoneState is the validated state of one name, cached by name for
// statusSecure and statusInsecure.
type zoneState struct {
	name   string
	status status
	// keys are the usable keys of a secure zone (zoneKey, supported
	// algorithm), with their key tags in tags.
	keys []*dns.DNSKEY
	tags []uint16
	// ttl is how long (seconds) the state may be cached.
	ttl uint32
	// why says why an insecure state is insecure, naming the zone and
	// the proof; ede is its Extended DNS Error code (RFC 8914) or 0.
	why string
	ede uint16
}

// negative returns the Insecure state of a name at or below a negative
// trust anchor in force (RFC 7646), or nil. Such states are never cached
// (the operator may lift the NTA at any time) and the first use is
// remembered for the lookup's log line.
func (l *lookup) negative(name string) *zoneState {
	z, exp := l.ntas.active(name, l.now)
	if z == "" {
		return nil
	}
	used := z // only this path may allocate
	l.ntaUsed.CompareAndSwap(nil, &used)
	return &zoneState{name: z, status: statusInsecure,
		why: "negative trust anchor " + quote.String(z) + " until " + exp.UTC().Format(time.RFC3339) + " (RFC 7646)"}
}

// unanchored is the Insecure state of a name that no trust anchor
// encloses: there is nothing to validate it against (RFC 4035 4.3, as
// unbound and BIND do).
func unanchored(name string) *zoneState {
	return &zoneState{name: name, status: statusInsecure, why: "no trust anchor encloses " + quote.String(name)}
}

// keysFor returns the keys with the given tag and algorithm.
func (z *zoneState) keysFor(tag uint16, alg uint8) []*dns.DNSKEY {
	var out []*dns.DNSKEY
	for i, k := range z.keys {
		if z.tags[i] == tag && k.Algorithm == alg {
			out = append(out, k)
		}
	}
	return out
}

// maxDepth bounds the number of zone levels followed from a name up to
// the root (a chain-length limit against crafted delegation chains).
const maxDepth = 32

// zoneCache holds validated zone states. It is bounded by the estimated
// memory of its entries (a signed zone's keys take 500 bytes to a
// kilobyte, an insecure zone's state about 350) and, optionally, by their
// number: when full, expired entries go first, then arbitrary ones (Go's
// map order is random, which is good enough eviction for a cache of keys;
// an attacker can only evict entries by making us validate many zones,
// each costing him queries).
type zoneCache struct {
	mu       sync.Mutex // guards zones and bytes
	zones    map[string]cacheEntry
	bytes    int64
	maxBytes int64
	max      int // zero: no bound on the number
}

type cacheEntry struct {
	zone    *zoneState
	expires time.Time
	size    int64 // the estimate charged against maxBytes
}

// evictSample is how many entries a put into a full cache examines for
// expired ones before it evicts live ones.
const evictSample = 32

// stateOverhead is what every cached state costs besides its keys and
// strings: the state itself and its map slot.
var stateOverhead = memsize.Alloc(int(unsafe.Sizeof(zoneState{})), true) +
	memsize.MapEntry(unsafe.Sizeof(""), unsafe.Sizeof(cacheEntry{}))

// size estimates the heap a cached state retains.
func (z *zoneState) size() int64 {
	var c memsize.Counter
	return int64(stateOverhead + c.AddString(z.name) + c.AddString(z.why) + c.Add(z.keys) + c.Add(z.tags))
}

func (c *zoneCache) get(name string, now time.Time) *zoneState {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.zones[name]
	if !ok {
		return nil
	}
	if !now.Before(e.expires) {
		c.bytes -= e.size
		delete(c.zones, name)
		return nil
	}
	return e.zone
}

func (c *zoneCache) put(z *zoneState, now time.Time) {
	if c == nil || z.ttl == 0 || (z.status != statusSecure && z.status != statusInsecure) {
		return
	}
	size := z.size()
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.zones[z.name]; ok {
		c.bytes -= old.size
		delete(c.zones, z.name)
	}
	full := func() bool {
		return c.bytes+size > c.maxBytes || (c.max > 0 && len(c.zones) >= c.max)
	}
	// Among the first evictSample entries met (in random order), only
	// expired ones go; then any. Scanning the whole map for expired
	// entries would cost every put a pass over 100,000 zones.
	for _, anyLive := range []bool{false, true} {
		seen := 0
		for k, e := range c.zones {
			if !full() || (!anyLive && seen >= evictSample) {
				break
			}
			seen++
			if anyLive || !now.Before(e.expires) {
				c.bytes -= e.size
				delete(c.zones, k)
			}
		}
	}
	c.zones[z.name] = cacheEntry{zone: z, expires: now.Add(time.Duration(min(z.ttl, maxTTL)) * time.Second), size: size}
	c.bytes += size
}

// stats returns the number of cached states and their estimated memory.
func (c *zoneCache) stats() (zones int, bytes int64) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.zones), c.bytes
}

// deepest returns the cached state of name or of its closest ancestor
// that has one, looking no higher than top.
func (c *zoneCache) deepest(name, top string, now time.Time) *zoneState {
	for n := name; ; n = parent(n) {
		if z := c.get(n, now); z != nil {
			return z
		}
		if n == top || n == "." {
			return nil
		}
	}
}

// keysOpt tunes a keys call.
type keysOpt struct {
	// speculate prefetches the DS and DNSKEY of the parent name, which
	// is usually the parent zone: it saves a round trip per level when
	// the guess is right and costs two queries when it is not.
	speculate bool
	// depth counts the levels above the name that started the chain.
	depth int
}

// keys returns the state of zone: its validated keys, or insecure, or
// not a zone apex. Results are cached and concurrent requests for the
// same zone share one flight.
//
// A zone at or below a negative trust anchor, or under no trust anchor,
// is Insecure without any query, before the cache is consulted.
func (l *lookup) keys(zone string, o keysOpt) (*zoneState, error) {
	if z := l.negative(zone); z != nil {
		return z, nil
	}
	if l.anchors.closest(zone) == "" {
		return unanchored(zone), nil
	}
	if z := l.v.cache.get(zone, l.now); z != nil {
		return z, nil
	}
	if o.depth > maxDepth {
		return nil, bogus(dns.ExtendedErrorCodeDNSBogus, "work limit: chain of trust deeper than %d zones at %s", maxDepth, quote.String(zone))
	}
	// A follower whose leader's lookup was cancelled tries again with
	// its own context rather than inherit someone else's timeout.
	for range 3 {
		ch := l.v.flights.DoChan(zone, func() (any, error) {
			// A flight that ended between the cache miss above and
			// this one has cached its keys: concurrent lookups (and
			// the prefetches of one) ask for a zone's keys once.
			if z := l.v.cache.get(zone, l.now); z != nil {
				return z, nil
			}
			z, err := l.keysUncached(zone, o)
			if err == nil {
				l.v.cache.put(z, l.now)
			}
			return z, err
		})
		select {
		case r := <-ch:
			if r.Err != nil {
				if l.ctx.Err() == nil && r.Shared && (errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded)) {
					continue
				}
				return nil, r.Err
			}
			return r.Val.(*zoneState), nil
		case <-l.ctx.Done():
			return nil, ctxError(zone, dns.TypeDNSKEY, l.ctx.Err())
		}
	}
	return nil, ctxError(zone, dns.TypeDNSKEY, context.Canceled)
}

func (l *lookup) keysUncached(zone string, o keysOpt) (*zoneState, error) {
	if l.anchors.isAnchor(zone) {
		// The closest anchor wins: an anchored zone's keys come from
		// its anchor, never from a DS in its parent.
		return l.anchorKeys(zone)
	}
	if o.speculate {
		// Zones whose keys prefetchKeys asked for have flights of their
		// own, which ask for their DS and DNSKEY RRsets.
		l.start(zone, dns.TypeDNSKEY)
		if p := parent(zone); p != "." && !l.prefetched[p] && l.v.cache.get(p, l.now) == nil {
			l.start(p, dns.TypeDS)
			l.start(p, dns.TypeDNSKEY)
		}
		if !l.prefetched["."] && l.v.cache.get(".", l.now) == nil {
			l.start(".", dns.TypeDNSKEY)
		}
	}
	msg, err := l.fetch(zone, dns.TypeDS)
	if err != nil {
		return nil, err
	}
	up := keysOpt{speculate: true, depth: o.depth + 1}
	if ds := find(group(msg.Answer), zone, dns.TypeDS); ds != nil {
		r, err := l.verifySet(ds, up)
		if err != nil {
			return nil, err
		}
		if r.sec != Secure {
			return &zoneState{name: zone, status: statusInsecure, ttl: r.ttl, why: r.why, ede: r.ede}, nil
		}
		return l.fromDS(zone, ds.rrs, r.ttl)
	}
	return l.dsDenied(zone, msg, up)
}

// fromDS validates the DNSKEY RRset of zone against its validated DS
// RRset (RFC 4035 5.2).
func (l *lookup) fromDS(zone string, ds []dns.RR, dsTTL uint32) (*zoneState, error) {
	usable, why, ede := usableDS(ds)
	if len(usable) == 0 {
		return &zoneState{name: zone, status: statusInsecure, ttl: dsTTL, why: "DS RRset of " + quote.String(zone) + ": " + why, ede: ede}, nil
	}
	msg, err := l.fetch(zone, dns.TypeDNSKEY)
	if err != nil {
		return nil, err
	}
	return l.validateDNSKEY(zone, msg, usable, dsTTL)
}

// anchorKeys validates the DNSKEY RRset of an anchored zone against its
// trust anchors. An anchor that cannot be used (no supported algorithm
// or digest, keys too small) is Indeterminate, not Insecure: it is a
// configuration the operator must fix, not a property of the zone.
func (l *lookup) anchorKeys(zone string) (*zoneState, error) {
	usable, why, _ := usableDS(l.anchors.ds(zone))
	if len(usable) == 0 {
		return nil, &Error{Kind: KindIndeterminate, EDE: dns.ExtendedErrorCodeDNSSECIndeterminate, Reason: "no usable trust anchor for " + quote.String(zone) + ": " + why}
	}
	msg, err := l.fetch(zone, dns.TypeDNSKEY)
	if err != nil {
		return nil, err
	}
	z, err := l.validateDNSKEY(zone, msg, usable, maxTTL)
	if err != nil {
		return nil, err
	}
	if z.status != statusSecure {
		return nil, &Error{Kind: KindIndeterminate, EDE: dns.ExtendedErrorCodeDNSSECIndeterminate, Reason: "trust anchor for " + quote.String(zone) + " unusable: " + z.why}
	}
	return z, nil
}

// validateDNSKEY checks that a key of the DNSKEY RRset of zone matches a
// DS and signs the RRset; the usable keys of the RRset then form the
// zone's validated key set.
func (l *lookup) validateDNSKEY(zone string, msg *dns.Msg, ds []*dns.DS, dsTTL uint32) (*zoneState, error) {
	set := find(group(msg.Answer), zone, dns.TypeDNSKEY)
	if set == nil {
		return nil, bogus(dns.ExtendedErrorCodeDNSKEYMissing, "DS for %s exists but the zone has no DNSKEY RRset", quote.String(zone))
	}
	var (
		matched, small bool
		smallWhy       string
		lastErr        error
		tried          int
	)
	for _, d := range ds {
		n := 0
		for _, rr := range set.rrs {
			k, ok := rr.(*dns.DNSKEY)
			if !ok || k.KeyTag() != d.KeyTag || k.Algorithm != d.Algorithm {
				continue
			}
			// Bound the digests computed per DS as the verifications are.
			if n++; n > l.lim.keysPerTag {
				return nil, bogus(dns.ExtendedErrorCodeDNSBogus, "work limit: more than %d DNSKEYs of %s match DS tag %d", l.lim.keysPerTag, quote.String(zone), d.KeyTag)
			}
			if !dsMatches(d, k) {
				continue
			}
			if k.Flags&dns.REVOKE != 0 {
				// RFC 5011 2.1: a revoked key validates nothing but
				// its own revocation.
				lastErr = bogus(dns.ExtendedErrorCodeDNSBogus, "DNSKEY %d of %s named by the DS is revoked", d.KeyTag, quote.String(zone))
				continue
			}
			if !zoneKey(k) {
				lastErr = bogus(dns.ExtendedErrorCodeNoZoneKeyBitSet, "DNSKEY %d of %s named by the DS is not a zone key", d.KeyTag, quote.String(zone))
				continue
			}
			matched = true
			if why := keyUnusable(k); why != "" {
				small, smallWhy = true, why
				continue
			}
			if tried >= l.lim.sigs {
				return nil, bogus(dns.ExtendedErrorCodeDNSBogus, "work limit: more than %d trust paths tried for %s", l.lim.sigs, quote.String(zone))
			}
			tried++
			one := &zoneState{name: zone, status: statusSecure, keys: []*dns.DNSKEY{k}, tags: []uint16{d.KeyTag}}
			r, err := l.verifyWithKeys(set, one)
			if err != nil {
				lastErr = err
				continue
			}
			z := &zoneState{name: zone, status: statusSecure, ttl: min(r.ttl, dsTTL)}
			for _, rr := range set.rrs {
				if k, ok := rr.(*dns.DNSKEY); ok && zoneKey(k) && algSupported(k.Algorithm) && keyUnusable(k) == "" {
					z.keys = append(z.keys, k)
					z.tags = append(z.tags, k.KeyTag())
				}
			}
			return z, nil
		}
	}
	if small && lastErr == nil {
		// RFC 4035 5.2: no usable authentication path, as for an
		// unsupported algorithm (EDE 1).
		return &zoneState{name: zone, status: statusInsecure, ttl: dsTTL, why: smallWhy, ede: dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm}, nil
	}
	if lastErr != nil {
		var e *Error
		if errors.As(lastErr, &e) {
			c := *e
			c.Reason = "DNSKEY RRset of " + zone + ": " + c.Reason
			return nil, &c
		}
		return nil, lastErr
	}
	if !matched {
		return nil, bogus(dns.ExtendedErrorCodeDNSKEYMissing, "no DNSKEY of %s matches its DS RRset", quote.String(zone))
	}
	return nil, bogus(dns.ExtendedErrorCodeDNSBogus, "DNSKEY RRset of %s is not signed by a key its DS names", quote.String(zone))
}

// dsDenied handles a DS answer without a DS RRset: a signed proof from
// the parent zone that zone has no DS (an insecure delegation, or not a
// cut at all), or an unsigned answer whose security the parent decides.
func (l *lookup) dsDenied(zone string, msg *dns.Msg, o keysOpt) (*zoneState, error) {
	p, err := l.proof(msg, zone, dns.TypeDS, "", o)
	if err != nil {
		return nil, err
	}
	if p.sec == Insecure {
		return &zoneState{name: zone, status: statusInsecure, ttl: p.ttl, why: p.why, ede: p.ede}, nil
	}
	st, why, err := p.dsStatus(zone)
	if err != nil {
		return nil, err
	}
	return &zoneState{name: zone, status: st, ttl: p.ttl, why: why}, nil
}

// walk returns the state of the zone holding name as data: the deepest
// secure zone above or at name, or an insecure state when an insecure
// delegation lies on the way. It asks for the DS of each name below the
// deepest known zone in turn, prefetching a few ahead.
func (l *lookup) walk(name string) (*zoneState, error) {
	if z := l.negative(name); z != nil {
		return z, nil
	}
	anchor := l.anchors.closest(name)
	if anchor == "" {
		return unanchored(name), nil
	}
	z := l.v.cache.deepest(name, anchor, l.now)
	if z != nil && z.status == statusInsecure {
		return z, nil
	}
	top := anchor
	if z != nil {
		top = z.name
	}
	var names []string
	for n := name; n != top; n = parent(n) {
		if n == "." {
			return nil, &Error{Kind: KindIndeterminate, Reason: fmt.Sprintf("%s is not below %s", name, top)}
		}
		names = append(names, n)
	}
	const ahead = 3
	// The first DS queries go out together with the root DNSKEY query:
	// for unsigned data each of them is needed, and asking them only after
	// the keys above are known costs a round trip per zone. Not when the
	// first name's keys are being prefetched (prefetchKeys): its flight
	// asks for them, and whether the names below need asking depends on
	// what it finds.
	if len(names) > 0 && !l.prefetched[names[len(names)-1]] {
		for j := len(names) - 1; j >= 0 && j >= len(names)-1-ahead; j-- {
			l.start(names[j], dns.TypeDS)
		}
		if len(names) > 1 {
			// The zone just below top signs the DS answers (or denials)
			// of the names under it: its keys are needed next, whether
			// the data is signed or not.
			l.start(names[len(names)-1], dns.TypeDNSKEY)
		}
	}
	if z == nil {
		var err error
		if z, err = l.keys(anchor, keysOpt{}); err != nil {
			return nil, err
		}
	}
	for i := len(names) - 1; i >= 0; i-- {
		for j := i; j >= 0 && j >= i-ahead && !l.prefetched[names[i]]; j-- {
			l.start(names[j], dns.TypeDS)
		}
		c := names[i]
		r, err := l.keys(c, keysOpt{depth: 1})
		if err != nil {
			return nil, err
		}
		switch r.status {
		case statusSecure:
			z = r
		case statusInsecure:
			return r, nil
		case statusNoName:
			// name lies in z as a name z says does not exist: z is the
			// zone that must sign whatever the caller holds.
			return z, nil
		}
	}
	return z, nil
}

// verifySet validates an RRset: with keys of its signer, or when it has
// no RRSIGs, by proving that its owner lies in an insecure zone.
//
// An RRset at or below a negative trust anchor in force is Insecure
// without any check (RFC 7646); one under no trust anchor is Insecure;
// one signed only by zones above the closest trust anchor enclosing it
// is Bogus (the closest anchor wins, as in unbound).
func (l *lookup) verifySet(s *rrset, o keysOpt) (rrsetResult, error) {
	if z := l.negative(s.name); z != nil {
		return rrsetResult{sec: Insecure, ttl: minTTL(s.rrs), zone: z.name, why: z.why}, nil
	}
	// DS RRsets live in the parent zone: the zone holding the parent
	// name decides (and asking keys(owner) from inside keys(owner)
	// would wait on itself).
	at := s.name
	if s.rrtype == dns.TypeDS {
		at = parent(s.name)
	}
	anchor := l.anchors.closest(at)
	if anchor == "" {
		z := unanchored(at)
		return rrsetResult{sec: Insecure, ttl: minTTL(s.rrs), zone: z.name, why: z.why}, nil
	}
	if len(s.sigs) == 0 {
		z, err := l.walk(at)
		if err != nil {
			return rrsetResult{}, err
		}
		if z.status == statusInsecure {
			return rrsetResult{sec: Insecure, ttl: minTTL(s.rrs), zone: z.name, why: z.why, ede: z.ede}, nil
		}
		return rrsetResult{}, bogus(dns.ExtendedErrorCodeRRSIGsMissing, "%s %s has no RRSIG but zone %s is signed", quote.String(s.name), dns.TypeToString[s.rrtype], quote.String(z.name))
	}
	var signers []string
	aboveAnchor := false
	for _, sig := range s.sigs {
		sn := lower(sig.SignerName)
		ok := isAncestor(sn, s.name)
		if ok && !isAncestor(anchor, sn) {
			ok, aboveAnchor = false, true
		}
		switch s.rrtype {
		case dns.TypeDS:
			// The child cannot sign its own DS (RFC 4035 5.2).
			ok = ok && (sn != s.name || s.name == ".")
		case dns.TypeDNSKEY:
			ok = sn == s.name
		}
		if ok && !containsName(signers, sn) {
			signers = append(signers, sn)
		}
	}
	if len(signers) == 0 {
		if aboveAnchor {
			return rrsetResult{}, bogus(dns.ExtendedErrorCodeDNSBogus, "RRSIG signer %s of %s %s lies above the trust anchor %s",
				quote.String(lower(s.sigs[0].SignerName)), quote.String(s.name), dns.TypeToString[s.rrtype], quote.String(anchor))
		}
		return rrsetResult{}, bogus(dns.ExtendedErrorCodeDNSBogus, "RRSIG signer %s of %s %s is not the owner or an ancestor of it",
			quote.String(lower(s.sigs[0].SignerName)), quote.String(s.name), dns.TypeToString[s.rrtype])
	}
	var firstErr error
	for i, sn := range signers {
		if i == 2 {
			break
		}
		z, err := l.keys(sn, o)
		if err == nil {
			switch z.status {
			case statusInsecure:
				return rrsetResult{sec: Insecure, ttl: minTTL(s.rrs), zone: z.name, why: z.why, ede: z.ede}, nil
			case statusSecure:
				var r rrsetResult
				if r, err = l.verifyWithKeys(s, z); err == nil {
					return r, nil
				}
			default:
				err = bogus(dns.ExtendedErrorCodeDNSBogus, "RRSIG signer %s of %s %s is not a zone apex", quote.String(sn), quote.String(s.name), dns.TypeToString[s.rrtype])
			}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return rrsetResult{}, firstErr
}

func containsName(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
