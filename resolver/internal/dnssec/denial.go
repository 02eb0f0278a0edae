package dnssec

import (
	"bytes"
	"crypto/sha1"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/quote"
)

// Authenticated denial of existence: NSEC (RFC 4035 5.4, RFC 6840 4) and
// NSEC3 (RFC 5155 8). A proof is first worked out on the unverified
// records of the authority section, then only the records it relies on
// are verified, so padding a response with extra proofs costs the
// attacker bytes, not us signatures.

// MaxNSEC3Iterations is the iteration count above which NSEC3 proofs
// are treated as Insecure (RFC 9276 3.2, the limit common validators
// adopted). The count is checked before any hashing, and only after the
// NSEC3 record's signature has been verified.
const MaxNSEC3Iterations = 150

// nsecRec is one NSEC record of a proof.
type nsecRec struct {
	set   *rrset
	owner string
	next  string
	types []uint16
}

func (n *nsecRec) has(t uint16) bool { return hasType(n.types, t) }

// blocks reports whether n sits at a delegation point or a DNAME above
// name: such an NSEC belongs to the parent side of a cut (or to a
// redirection) and proves nothing about names below it (RFC 6840 4.1,
// 4.3).
func (n *nsecRec) blocks(name string) bool {
	return isProperAncestor(n.owner, name) && ((n.has(dns.TypeNS) && !n.has(dns.TypeSOA)) || n.has(dns.TypeDNAME))
}

// nsec3Rec is one NSEC3 record of a proof, hashes decoded.
type nsec3Rec struct {
	set  *rrset
	rr   *dns.NSEC3
	hash []byte
	next []byte
}

func (n *nsec3Rec) has(t uint16) bool { return hasType(n.rr.TypeBitMap, t) }
func (n *nsec3Rec) optOut() bool      { return n.rr.Flags&1 != 0 }

// covers reports whether h falls strictly between the owner hash and the
// next hash, with the last record of the chain wrapping around.
func (n *nsec3Rec) covers(h []byte) bool {
	lo, hi := bytes.Compare(n.hash, h), bytes.Compare(h, n.next)
	if bytes.Compare(n.hash, n.next) < 0 {
		return lo < 0 && hi < 0
	}
	return lo < 0 || hi < 0
}

func hasType(types []uint16, t uint16) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

var base32Hex = base32.HexEncoding.WithPadding(base32.NoPadding)

// proof is a denial being checked: the NSEC or NSEC3 records of one
// zone from an authority section, the zone's keys, and what was used.
type proof struct {
	l     *lookup
	zone  string
	z     *zoneState
	sec   Security
	ttl   uint32
	why   string // why an Insecure proof is Insecure
	ede   uint16 // its Extended DNS Error code, or 0
	nsec  []*nsecRec
	nsec3 []*nsec3Rec
	// NSEC3 parameters (RFC 5155 8.2: all records of a proof share them).
	iter   uint16
	salt   []byte
	hashes map[string][]byte
	used   []*rrset
}

// proof gathers the denial in msg that applies to name (for a DS
// question, the proof must come from a zone above name). With no signed
// proof at all, the zone holding name decides: Insecure if it is, Bogus
// otherwise (RFC 4035 5.4: a signed zone must prove every denial).
//
// signed, when not "", is the zone already known to be secure for name
// (a wildcard answer's signer): then a missing proof is Bogus at once.
//
// A denial at or below a negative trust anchor in force, or under no
// trust anchor, is Insecure without any check; a proof signed above the
// closest trust anchor enclosing name is ignored (the anchor's zone must
// prove it).
func (l *lookup) proof(msg *dns.Msg, name string, qtype uint16, signed string, o keysOpt) (*proof, error) {
	above := qtype == dns.TypeDS && name != "."
	sets := group(msg.Ns)
	if z := l.negative(name); z != nil {
		return &proof{sec: Insecure, zone: z.name, ttl: soaNegTTL(sets, ""), why: z.why}, nil
	}
	at := name
	if above {
		at = parent(name)
	}
	anchor := l.anchors.closest(at)
	if anchor == "" {
		return &proof{sec: Insecure, zone: name, ttl: soaNegTTL(sets, ""), why: unanchored(at).why}, nil
	}
	zone := ""
	for _, s := range sets {
		if s.rrtype != dns.TypeNSEC && s.rrtype != dns.TypeNSEC3 {
			continue
		}
		for _, sig := range s.sigs {
			sn := lower(sig.SignerName)
			if !isAncestor(sn, name) || (above && sn == name) || !isAncestor(sn, s.name) || !isAncestor(anchor, sn) {
				continue
			}
			if zone == "" || dns.CountLabel(sn) > dns.CountLabel(zone) {
				zone = sn
			}
		}
	}
	negTTL := soaNegTTL(sets, zone)
	if zone == "" && signed != "" {
		return nil, bogus(dns.ExtendedErrorCodeNSECMissing, "no signed NSEC or NSEC3 proves the wildcard expansion at %s in zone %s", quote.String(name), quote.String(signed))
	}
	if zone == "" {
		z, err := l.walk(at)
		if err != nil {
			return nil, err
		}
		if z.status == statusInsecure {
			return &proof{sec: Insecure, zone: z.name, ttl: soaNegTTL(sets, ""), why: z.why, ede: z.ede}, nil
		}
		return nil, bogus(dns.ExtendedErrorCodeNSECMissing, "no signed NSEC or NSEC3 proves the denial of %s %s, but zone %s is signed", quote.String(name), dns.TypeToString[qtype], quote.String(z.name))
	}
	z, err := l.keys(zone, o)
	if err != nil {
		return nil, err
	}
	p := &proof{l: l, zone: zone, z: z, sec: Secure, ttl: negTTL, hashes: map[string][]byte{}}
	switch z.status {
	case statusInsecure:
		p.sec, p.why, p.ede = Insecure, z.why, z.ede
		return p, nil
	case statusSecure:
	default:
		return nil, bogus(dns.ExtendedErrorCodeDNSBogus, "denial signer %s is not a zone apex", quote.String(zone))
	}
	params := false
	for _, s := range sets {
		if len(s.rrs) != 1 || !signedBy(s, zone) {
			continue
		}
		switch rr := s.rrs[0].(type) {
		case *dns.NSEC:
			if isAncestor(zone, s.name) {
				p.nsec = append(p.nsec, &nsecRec{set: s, owner: s.name, next: lower(rr.NextDomain), types: rr.TypeBitMap})
			}
		case *dns.NSEC3:
			// RFC 5155 8.2: ignore unknown hash algorithms and flags.
			if rr.Hash != dns.SHA1 || rr.Flags&^1 != 0 || parent(s.name) != zone {
				continue
			}
			salt, err := hex.DecodeString(rr.Salt)
			if rr.Salt == "-" || rr.Salt == "" {
				salt, err = nil, nil
			}
			owner, err1 := base32Hex.DecodeString(strings.ToUpper(strings.SplitN(s.name, ".", 2)[0]))
			next, err2 := base32Hex.DecodeString(strings.ToUpper(rr.NextDomain))
			if err != nil || err1 != nil || err2 != nil || len(owner) != sha1.Size || len(next) != sha1.Size {
				continue
			}
			if !params {
				params, p.iter, p.salt = true, rr.Iterations, salt
			} else if rr.Iterations != p.iter || !bytes.Equal(salt, p.salt) {
				continue
			}
			p.nsec3 = append(p.nsec3, &nsec3Rec{set: s, rr: rr, hash: owner, next: next})
		}
	}
	if len(p.nsec) == 0 && len(p.nsec3) > 0 && p.iter > MaxNSEC3Iterations {
		// RFC 9276 3.2: validate the record, then call it insecure
		// without hashing anything.
		p.use(p.nsec3[0].set)
		if err := p.verifyUsed(); err != nil {
			return nil, err
		}
		p.sec, p.ede = Insecure, dns.ExtendedErrorCodeUnsupportedNSEC3IterValue
		p.why = fmt.Sprintf("NSEC3 iterations %d in %s exceed %d (RFC 9276 3.2)", p.iter, quote.String(zone), MaxNSEC3Iterations)
	}
	return p, nil
}

// signedBy reports whether one of the RRSIGs of s names signer.
func signedBy(s *rrset, signer string) bool {
	for _, sig := range s.sigs {
		if lower(sig.SignerName) == signer {
			return true
		}
	}
	return false
}

// soaNegTTL returns the negative-caching TTL (RFC 2308 5): the smaller
// of the SOA's TTL and its MINIMUM field, from the SOA of zone (any SOA
// when zone is ""). Without an SOA it is 0: do not cache.
func soaNegTTL(sets []*rrset, zone string) uint32 {
	for _, s := range sets {
		if s.rrtype != dns.TypeSOA || (zone != "" && s.name != zone) {
			continue
		}
		for _, rr := range s.rrs {
			if soa, ok := rr.(*dns.SOA); ok {
				return min(soa.Hdr.Ttl, soa.Minttl, maxTTL)
			}
		}
	}
	return 0
}

func (p *proof) use(sets ...*rrset) {
	for _, s := range sets {
		if !containsSet(p.used, s) {
			p.used = append(p.used, s)
		}
	}
}

func containsSet(list []*rrset, s *rrset) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// verifyUsed verifies the records the proof relies on.
func (p *proof) verifyUsed() error {
	for _, s := range p.used {
		r, err := p.l.verifyWithKeys(s, p.z)
		if err != nil {
			return err
		}
		p.ttl = min(p.ttl, r.ttl)
	}
	return nil
}

// done verifies what was used; an opt-out proof (RFC 5155 6, 8.6) then
// makes the answer Insecure: it proves nothing about unsigned
// delegations inside its span.
func (p *proof) done(optOut bool) error {
	if err := p.verifyUsed(); err != nil {
		return err
	}
	if optOut {
		p.sec, p.why = Insecure, "NSEC3 opt-out span in "+quote.String(p.zone)+" (RFC 5155 6)"
	}
	return nil
}

func (p *proof) fail(format string, args ...any) error {
	return bogus(dns.ExtendedErrorCodeNSECMissing, format, args...)
}

func (p *proof) exactNSEC(name string) *nsecRec {
	for _, n := range p.nsec {
		if n.owner == name {
			return n
		}
	}
	return nil
}

// coverNSEC returns an NSEC proving that name does not exist: it covers
// name, is not a parent-side or DNAME NSEC above it, and (unless ent)
// its next name is not below name, which would make name an empty
// non-terminal. With ent it returns such an empty non-terminal proof
// instead.
func (p *proof) coverNSEC(name string, ent bool) *nsecRec {
	for _, n := range p.nsec {
		if n.blocks(name) || !less(n.owner, name) {
			continue
		}
		inside := less(name, n.next)
		if !less(n.owner, n.next) {
			// Last NSEC of the zone: its next name is the apex.
			inside = isAncestor(n.next, name)
		}
		if !inside {
			continue
		}
		if below := isProperAncestor(name, n.next); below == ent {
			return n
		}
	}
	return nil
}

// closestEncloserNSEC derives the closest encloser of a name proved
// absent by n (RFC 4035 5.4): the longer of its common ancestors with
// the owner and the next name.
func (p *proof) closestEncloserNSEC(name string, n *nsecRec) string {
	ce := commonAncestor(name, n.owner)
	if c := commonAncestor(name, n.next); dns.CountLabel(c) > dns.CountLabel(ce) {
		ce = c
	}
	if !isAncestor(p.zone, ce) {
		ce = p.zone
	}
	return ce
}

// hash returns the NSEC3 hash of name (RFC 5155 5), counted against the
// lookup's Limits.NSEC3Hashes.
func (p *proof) hash(name string) ([]byte, error) {
	if h, ok := p.hashes[name]; ok {
		return h, nil
	}
	if err := p.l.spendHash(); err != nil {
		return nil, err
	}
	var buf [256]byte
	off, err := dns.PackDomainName(lower(name), buf[:], 0, nil, false)
	if err != nil {
		return nil, p.fail("cannot hash %s", quote.String(name))
	}
	s := sha1.New()
	s.Write(buf[:off])
	s.Write(p.salt)
	h := s.Sum(nil)
	for range p.iter {
		s.Reset()
		s.Write(h)
		s.Write(p.salt)
		h = s.Sum(h[:0])
	}
	p.hashes[name] = h
	return h, nil
}

func (p *proof) match3(h []byte) *nsec3Rec {
	for _, n := range p.nsec3 {
		if bytes.Equal(n.hash, h) {
			return n
		}
	}
	return nil
}

func (p *proof) cover3(h []byte) *nsec3Rec {
	for _, n := range p.nsec3 {
		if n.covers(h) {
			return n
		}
	}
	return nil
}

// closestEncloser3 is the closest encloser proof of RFC 5155 8.3: the
// closest ancestor of name with a matching NSEC3, and an NSEC3 covering
// the next closer name. nc is "" when name itself matches.
func (p *proof) closestEncloser3(name string) (ce, nc string, ceRec, ncRec *nsec3Rec, err error) {
	for sname := name; ; sname = parent(sname) {
		if !isAncestor(p.zone, sname) {
			return "", "", nil, nil, p.fail("no NSEC3 closest encloser for %s in %s", quote.String(name), quote.String(p.zone))
		}
		h, err := p.hash(sname)
		if err != nil {
			return "", "", nil, nil, err
		}
		if m := p.match3(h); m != nil {
			ce, ceRec = sname, m
			break
		}
		nc = sname
		if sname == p.zone {
			return "", "", nil, nil, p.fail("no NSEC3 matches the apex of %s", quote.String(p.zone))
		}
	}
	if nc == "" {
		return ce, "", ceRec, nil, nil
	}
	h, err := p.hash(nc)
	if err != nil {
		return "", "", nil, nil, err
	}
	if ncRec = p.cover3(h); ncRec == nil {
		return "", "", nil, nil, p.fail("no NSEC3 covers the next closer name %s", quote.String(nc))
	}
	// RFC 5155 8.3, RFC 6840 4.1 and 4.3: a delegation point or a DNAME
	// cannot be the closest encloser of a name the zone itself denies.
	if ceRec.has(dns.TypeDNAME) || (ceRec.has(dns.TypeNS) && !ceRec.has(dns.TypeSOA)) {
		return "", "", nil, nil, bogus(dns.ExtendedErrorCodeDNSBogus, "NSEC3 closest encloser %s of %s is a delegation or DNAME", quote.String(ce), quote.String(name))
	}
	return ce, nc, ceRec, ncRec, nil
}

// nxdomain proves that name does not exist (RFC 4035 5.4, RFC 5155 8.4).
func (p *proof) nxdomain(name string) error {
	if p.sec != Secure {
		return nil
	}
	if len(p.nsec) > 0 {
		c := p.coverNSEC(name, false)
		if c == nil {
			return p.fail("no NSEC proves that %s does not exist", quote.String(name))
		}
		w := wildcard(p.closestEncloserNSEC(name, c))
		if p.exactNSEC(w) != nil {
			return bogus(dns.ExtendedErrorCodeDNSBogus, "NXDOMAIN for %s, but wildcard %s exists", quote.String(name), quote.String(w))
		}
		wc := p.coverNSEC(w, false)
		if wc == nil {
			return p.fail("no NSEC proves that wildcard %s does not exist", quote.String(w))
		}
		p.use(c.set, wc.set)
		return p.done(false)
	}
	ce, nc, ceRec, ncRec, err := p.closestEncloser3(name)
	if err != nil {
		return err
	}
	if nc == "" {
		return bogus(dns.ExtendedErrorCodeDNSBogus, "NXDOMAIN for %s, but an NSEC3 matches it", quote.String(name))
	}
	p.use(ceRec.set, ncRec.set)
	if ncRec.optOut() {
		// The name may be below an unsigned delegation in the span:
		// the NXDOMAIN is not provable (unbound agrees; RFC 5155 8.4
		// does not mention opt-out, see the interop expectations).
		return p.done(true)
	}
	h, err := p.hash(wildcard(ce))
	if err != nil {
		return err
	}
	wc := p.cover3(h)
	if wc == nil {
		return p.fail("no NSEC3 proves that wildcard %s does not exist", quote.String(wildcard(ce)))
	}
	p.use(wc.set)
	return p.done(false)
}

// typesDeny checks the bitmap of the record matching name for a NODATA
// answer to qtype: the type and CNAME absent; for DS the record must be
// from the parent side (SOA absent), for any other type not from the
// parent side of a delegation (RFC 6840 4.1, RFC 5155 8.5, 8.6).
func typesDeny(name string, qtype uint16, has func(uint16) bool) string {
	switch {
	case has(qtype):
		return fmt.Sprintf("the denial's bitmap at %s lists %s", name, dns.TypeToString[qtype])
	case qtype != dns.TypeCNAME && has(dns.TypeCNAME):
		return fmt.Sprintf("the denial's bitmap at %s lists CNAME", name)
	case qtype == dns.TypeDS && name != "." && has(dns.TypeSOA):
		return fmt.Sprintf("the DS denial for %s comes from the child zone", name)
	case qtype != dns.TypeDS && has(dns.TypeNS) && !has(dns.TypeSOA):
		return fmt.Sprintf("a parent-side denial at delegation %s cannot deny %s", name, dns.TypeToString[qtype])
	}
	return ""
}

// nodata proves that name exists without records of qtype (RFC 4035
// 5.4, RFC 5155 8.5 to 8.7), including at an empty non-terminal and by
// a wildcard that lacks the type.
func (p *proof) nodata(name string, qtype uint16) error {
	if p.sec != Secure {
		return nil
	}
	if len(p.nsec) > 0 {
		if m := p.exactNSEC(name); m != nil {
			if why := typesDeny(name, qtype, m.has); why != "" {
				return bogus(dns.ExtendedErrorCodeDNSBogus, "%s", why)
			}
			p.use(m.set)
			return p.done(false)
		}
		if e := p.coverNSEC(name, true); e != nil {
			p.use(e.set)
			return p.done(false)
		}
		if c := p.coverNSEC(name, false); c != nil {
			w := wildcard(p.closestEncloserNSEC(name, c))
			if m := p.exactNSEC(w); m != nil && typesDeny(w, qtype, m.has) == "" {
				p.use(c.set, m.set)
				return p.done(false)
			}
		}
		return p.fail("no NSEC proves that %s has no %s records", quote.String(name), dns.TypeToString[qtype])
	}
	h, err := p.hash(name)
	if err != nil {
		return err
	}
	if m := p.match3(h); m != nil {
		if why := typesDeny(name, qtype, m.has); why != "" {
			return bogus(dns.ExtendedErrorCodeDNSBogus, "%s", why)
		}
		p.use(m.set)
		return p.done(false)
	}
	ce, _, ceRec, ncRec, err := p.closestEncloser3(name)
	if err != nil {
		return err
	}
	p.use(ceRec.set, ncRec.set)
	if ncRec.optOut() {
		// RFC 5155 8.6 (and errata 3441 for empty non-terminals of
		// unsigned delegations): no provable answer, Insecure.
		return p.done(true)
	}
	h, err = p.hash(wildcard(ce))
	if err != nil {
		return err
	}
	if m := p.match3(h); m != nil && typesDeny(wildcard(ce), qtype, m.has) == "" {
		p.use(m.set)
		return p.done(false)
	}
	return p.fail("no NSEC3 proves that %s has no %s records", quote.String(name), dns.TypeToString[qtype])
}

// dsStatus reads a proof of DS absence at name from the parent zone:
// an insecure delegation (with why it is one), a name that is not a cut,
// or a name that does not exist.
func (p *proof) dsStatus(name string) (st status, why string, err error) {
	st, how, err := p.dsStatusBy(name)
	if err == nil && st == statusInsecure {
		why = "insecure delegation: no DS for " + quote.String(name) + " (" + how + ")"
	}
	return st, why, err
}

// dsStatusBy is dsStatus; how names the proof of an insecure delegation.
func (p *proof) dsStatusBy(name string) (status, string, error) {
	if len(p.nsec) > 0 {
		if m := p.exactNSEC(name); m != nil {
			var st status
			switch {
			case m.has(dns.TypeDS):
				return 0, "", bogus(dns.ExtendedErrorCodeDNSBogus, "NSEC at %s lists a DS the answer did not contain", quote.String(name))
			case m.has(dns.TypeSOA):
				return 0, "", bogus(dns.ExtendedErrorCodeDNSBogus, "the DS denial for %s comes from the child zone", quote.String(name))
			case m.has(dns.TypeNS):
				st = statusInsecure
			default:
				st = statusNotCut
			}
			p.use(m.set)
			return st, "NSEC proof from " + quote.String(p.zone), p.done(false)
		}
		if e := p.coverNSEC(name, true); e != nil {
			p.use(e.set)
			return statusNotCut, "", p.done(false)
		}
		if c := p.coverNSEC(name, false); c != nil {
			p.use(c.set)
			return statusNoName, "", p.done(false)
		}
		return 0, "", p.fail("no NSEC proves the absence of a DS at %s", quote.String(name))
	}
	h, err := p.hash(name)
	if err != nil {
		return 0, "", err
	}
	if m := p.match3(h); m != nil {
		var st status
		switch {
		case m.has(dns.TypeDS):
			return 0, "", bogus(dns.ExtendedErrorCodeDNSBogus, "NSEC3 for %s lists a DS the answer did not contain", quote.String(name))
		case m.has(dns.TypeSOA):
			return 0, "", bogus(dns.ExtendedErrorCodeDNSBogus, "the DS denial for %s comes from the child zone", quote.String(name))
		case m.has(dns.TypeNS):
			st = statusInsecure
		default:
			st = statusNotCut
		}
		p.use(m.set)
		return st, "NSEC3 proof from " + quote.String(p.zone), p.done(false)
	}
	_, _, ceRec, ncRec, err := p.closestEncloser3(name)
	if err != nil {
		return 0, "", err
	}
	p.use(ceRec.set, ncRec.set)
	if ncRec.optOut() {
		// RFC 5155 6: an opt-out span may hide an unsigned delegation.
		return statusInsecure, "NSEC3 opt-out span of " + quote.String(p.zone), p.done(false)
	}
	return statusNoName, "", p.done(false)
}

// wildcardAnswer proves that a wildcard expansion at name, whose closest
// encloser ce the RRSIG Labels field gave, was legitimate: the next
// closer name does not exist (RFC 4035 5.3.4, RFC 5155 8.8).
func (p *proof) wildcardAnswer(name, ce string) error {
	if p.sec != Secure {
		return nil
	}
	nc := suffix(name, dns.CountLabel(ce)+1)
	if len(p.nsec) > 0 {
		if c := p.coverNSEC(nc, false); c != nil {
			p.use(c.set)
			return p.done(false)
		}
		return p.fail("no NSEC proves that %s, expanded from wildcard %s, does not exist", quote.String(name), quote.String(wildcard(ce)))
	}
	h, err := p.hash(nc)
	if err != nil {
		return err
	}
	c := p.cover3(h)
	if c == nil {
		return p.fail("no NSEC3 proves that %s, expanded from wildcard %s, does not exist", quote.String(name), quote.String(wildcard(ce)))
	}
	p.use(c.set)
	return p.done(c.optOut())
}
