package smtptlstest

import (
	"crypto"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Signing says whether and how a zone is signed.
type Signing int

const (
	// Unsigned is the zero value: the zone carries no DNSSEC records and
	// its parent publishes no DS, so everything in it is insecure.
	Unsigned Signing = iota
	// NSEC signs the zone and denies existence with NSEC (RFC 4034 section 4).
	NSEC
	// NSEC3 signs the zone and denies existence with hashed NSEC3 records
	// (RFC 5155), one for every name including empty non-terminals.
	NSEC3
	// NSEC3OptOut is NSEC3 with the Opt-Out flag (RFC 5155 section 6):
	// insecure delegations (NS without DS) get no NSEC3 record of their own,
	// so names in an opt-out span can only be proven insecure, never
	// absent. Real TLDs are signed this way.
	NSEC3OptOut
)

// String returns "unsigned", "nsec", "nsec3" or "nsec3-optout".
func (s Signing) String() string {
	switch s {
	case Unsigned:
		return "unsigned"
	case NSEC:
		return "nsec"
	case NSEC3:
		return "nsec3"
	case NSEC3OptOut:
		return "nsec3-optout"
	default:
		return fmt.Sprintf("signing(%d)", int(s))
	}
}

func (s Signing) nsec3() bool { return s == NSEC3 || s == NSEC3OptOut }

// ZoneConfig configures a zone. The zero value is an unsigned zone.
type ZoneConfig struct {
	// Signing selects unsigned, NSEC or NSEC3 (with or without opt-out).
	// The zero value is Unsigned: the zone and everything below it is
	// insecure.
	Signing Signing
	// Algorithm is the DNSSEC algorithm number of the zone's keys (RFC
	// 8624): 5 (RSASHA1), 7 (RSASHA1-NSEC3-SHA1), 8 (RSASHA256), 10
	// (RSASHA512), 13 (ECDSAP256SHA256), 14 (ECDSAP384SHA384) or 15
	// (ED25519). Zero means 13. RSA zones get a 2048-bit KSK and a 1024-bit
	// ZSK; RSA key generation makes such zones slower to create (tens of
	// milliseconds each).
	Algorithm uint8
	// NSEC3Iterations is the number of extra SHA-1 iterations of NSEC3
	// hashing. Zero, as RFC 9276 recommends, is the default. Above 150,
	// validators treat NSEC3 denials as insecure (RFC 9276 section 3.2),
	// and so does the World's validating front.
	NSEC3Iterations uint16
	// NSEC3Salt is the NSEC3 salt in hex; "" (or "-") is no salt, as RFC
	// 9276 recommends.
	NSEC3Salt string
	// NoDS signs the zone but publishes no DS for it in the parent: the
	// zone is an island of security, insecure to a validator that starts
	// at the root.
	NoDS bool
}

// DefaultTTL is the TTL of records added without one, and of the records
// the World creates itself (SOA, NS, DNSKEY, DS, NSEC, NSEC3).
const DefaultTTL = 300

// Algorithms this package signs with, with the key sizes it uses (KSK, ZSK).
var keyBits = map[uint8][2]int{
	dns.RSASHA1:          {2048, 1024},
	dns.RSASHA1NSEC3SHA1: {2048, 1024},
	dns.RSASHA256:        {2048, 1024},
	dns.RSASHA512:        {2048, 1024},
	dns.ECDSAP256SHA256:  {256, 256},
	dns.ECDSAP384SHA384:  {384, 384},
	dns.ED25519:          {256, 256},
}

func (c ZoneConfig) normalize() (ZoneConfig, error) {
	if c.Signing < Unsigned || c.Signing > NSEC3OptOut {
		return c, fmt.Errorf("smtptlstest: unknown Signing %d", int(c.Signing))
	}
	if c.Algorithm == 0 {
		c.Algorithm = dns.ECDSAP256SHA256
	}
	if _, ok := keyBits[c.Algorithm]; !ok {
		return c, fmt.Errorf("smtptlstest: cannot sign with DNSSEC algorithm %d", c.Algorithm)
	}
	if c.NSEC3Salt == "-" {
		c.NSEC3Salt = ""
	}
	if c.NSEC3Salt != "" {
		b, err := hex.DecodeString(c.NSEC3Salt)
		if err != nil || len(b) > 255 {
			return c, fmt.Errorf("smtptlstest: invalid NSEC3Salt %q", c.NSEC3Salt)
		}
		c.NSEC3Salt = strings.ToUpper(c.NSEC3Salt)
	}
	return c, nil
}

// A Zone is one zone of a World: unsigned data added with Add, served and
// signed on the fly by the World's DNS front. Its methods are safe for
// concurrent use, also while the World is serving.
type Zone struct {
	w    *World
	name string

	// Guarded by w.mu.
	cfg    ZoneConfig
	ksk    *zoneKey
	zsk    *zoneKey
	nodes  map[string]map[uint16][]dns.RR
	fault  Fault
	serial uint32

	// cacheMu guards what is derived from the data above: the index
	// (names, cuts, NSEC/NSEC3 chains) and the signatures. Both are
	// dropped by every change; taken after w.mu when both are held.
	cacheMu sync.Mutex
	idx     *zoneIndex
	sigs    map[sigKey]*sigEntry
}

type zoneKey struct {
	dnskey *dns.DNSKEY
	priv   crypto.Signer
	tag    uint16

	digestMu sync.Mutex       // guards digests
	digests  map[uint8]string // DS digest by digest type, see digest
}

// digest returns the DS digest of the key for digest type t ("" when t is
// not supported), computed once: the front's validator model compares it
// with the parent's DS for every answer from the zone.
func (k *zoneKey) digest(t uint8) string {
	k.digestMu.Lock()
	defer k.digestMu.Unlock()
	if d, ok := k.digests[t]; ok {
		return d
	}
	var d string
	if ds := k.dnskey.ToDS(t); ds != nil {
		d = ds.Digest
	}
	if k.digests == nil {
		k.digests = make(map[uint8]string)
	}
	k.digests[t] = d
	return d
}

func newZoneKey(zone string, flags uint16, alg uint8, bits int) (*zoneKey, error) {
	return newZoneKeyWith(zone, flags, alg, bits, (*dns.DNSKEY).Generate)
}

// maxKeyTries bounds the regeneration of keys whose tag is 0.
const maxKeyTries = 8

// newZoneKeyWith is newZoneKey with the key generator as a parameter, so
// that a test can make it produce a key whose tag is 0.
//
// Key tag 0 is valid DNSSEC (RFC 4034 appendix B gives no exception, and
// the validator accepts it), but miekg/dns refuses to sign with such a key
// (RRSIG.Sign returns ErrKey): the zone would answer SERVFAIL. One key in
// 65,536 has tag 0, so a world of a few thousand zones met one about once
// in fifteen runs. Such a key is generated again.
func newZoneKeyWith(zone string, flags uint16, alg uint8, bits int,
	gen func(*dns.DNSKEY, int) (crypto.PrivateKey, error)) (*zoneKey, error) {
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: DefaultTTL},
		Flags:     flags,
		Protocol:  3,
		Algorithm: alg,
	}
	var p crypto.PrivateKey
	for try := 0; ; try++ {
		var err error
		if p, err = gen(k, bits); err != nil {
			return nil, fmt.Errorf("smtptlstest: generating DNSKEY for %s: %w", zone, err)
		}
		if k.KeyTag() != 0 {
			break
		}
		if try == maxKeyTries {
			return nil, fmt.Errorf("smtptlstest: generating DNSKEY for %s: key tag 0 %d times", zone, maxKeyTries+1)
		}
	}
	s, ok := p.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("smtptlstest: DNSKEY algorithm %d has no crypto.Signer", alg)
	}
	return &zoneKey{dnskey: k, priv: s, tag: k.KeyTag()}, nil
}

// Name returns the zone's apex: lowercase A-labels, fully qualified ("."
// for the root), as the DNS speaks it.
func (z *Zone) Name() string { return z.name }

// Config returns the zone's configuration, with defaults filled in.
func (z *Zone) Config() ZoneConfig {
	z.w.mu.RLock()
	defer z.w.mu.RUnlock()
	return z.cfg
}

// KSK returns a copy of the zone's key-signing key (flags 257), which
// signs the DNSKEY RRset and whose digest the parent's DS holds, or nil
// for an unsigned zone.
func (z *Zone) KSK() *dns.DNSKEY {
	z.w.mu.RLock()
	defer z.w.mu.RUnlock()
	if z.ksk == nil {
		return nil
	}
	return dns.Copy(z.ksk.dnskey).(*dns.DNSKEY)
}

// ZSK returns a copy of the zone's zone-signing key (flags 256), which
// signs every RRset but the DNSKEY RRset, or nil for an unsigned zone.
func (z *Zone) ZSK() *dns.DNSKEY {
	z.w.mu.RLock()
	defer z.w.mu.RUnlock()
	if z.zsk == nil {
		return nil
	}
	return dns.Copy(z.zsk.dnskey).(*dns.DNSKEY)
}

// DS returns the DS record (SHA-256 digest, RFC 4509) of the zone's KSK,
// as the parent publishes it unless NoDS is set, or nil for an unsigned
// zone.
func (z *Zone) DS() *dns.DS {
	z.w.mu.RLock()
	defer z.w.mu.RUnlock()
	return z.ds()
}

func (z *Zone) ds() *dns.DS {
	if z.ksk == nil {
		return nil
	}
	ds := z.ksk.dnskey.ToDS(dns.SHA256)
	ds.Hdr.Ttl = DefaultTTL
	return ds
}

// Add adds records given as RFC 1035 zone-file text: one or more records
// per string, each with the usual syntax ("www 60 IN A 192.0.2.1", "@ MX
// 10 mx", "_25._tcp.mx TLSA 3 1 1 ..."). As in a zone file, a name
// without a trailing dot (owner or in the data) is relative to the zone
// apex, "@" is the apex, and a record without TTL gets the one before it
// in the same string, or DefaultTTL. All records of an RRset share the
// TTL of the record added last.
//
// Owners must be in the zone. Records the World computes itself (RRSIG,
// NSEC, NSEC3, NSEC3PARAM) are refused; a DNSKEY added at the apex joins
// the DNSKEY RRset. An SOA replaces the zone's SOA. A CNAME cannot share
// its name with other data (RFC 2181 section 10.1). Data at or below a
// child zone's apex is occluded, as in real DNS: only the delegation (NS,
// DS) and glue may live there.
//
// NS records below the apex are delegations: names below them are
// answered only if a zone of the World is delegated there, and are
// otherwise a lame delegation (SERVFAIL), while the parent still answers
// DS queries for the cut. DNAME records are served as data but not used
// to synthesize CNAMEs.
//
// Add is atomic: on error nothing is added. It is safe to call while the
// World serves; signatures and denial chains are recomputed.
func (z *Zone) Add(lines ...string) error {
	var rrs []dns.RR
	for _, text := range lines {
		zp := dns.NewZoneParser(strings.NewReader(text), z.name, "")
		zp.SetDefaultTTL(DefaultTTL)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			rrs = append(rrs, rr)
		}
		if err := zp.Err(); err != nil {
			return fmt.Errorf("smtptlstest: zone %s: %w", z.name, err)
		}
	}
	z.w.mu.Lock()
	defer z.w.mu.Unlock()
	return z.addLocked(rrs)
}

// MustAdd is Add that panics on error, for tests whose records are
// constants.
func (z *Zone) MustAdd(lines ...string) {
	if err := z.Add(lines...); err != nil {
		panic(err)
	}
}

// AddRR adds records already parsed, with absolute owner names. The rules
// of Add apply; the records are copied.
func (z *Zone) AddRR(rrs ...dns.RR) error {
	cp := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		cp[i] = dns.Copy(rr)
	}
	z.w.mu.Lock()
	defer z.w.mu.Unlock()
	return z.addLocked(cp)
}

func (z *Zone) addLocked(rrs []dns.RR) error {
	// Check everything first so that a failed Add changes nothing.
	for _, rr := range rrs {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		if h.Class != dns.ClassINET {
			return fmt.Errorf("smtptlstest: zone %s: %q: class must be IN", z.name, rr.String())
		}
		if !dns.IsSubDomain(z.name, h.Name) {
			return fmt.Errorf("smtptlstest: zone %s: %q: owner is outside the zone", z.name, rr.String())
		}
		switch h.Rrtype {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM, dns.TypeOPT, dns.TypeTSIG:
			return fmt.Errorf("smtptlstest: zone %s: %q: the World computes %s records itself",
				z.name, rr.String(), dns.TypeToString[h.Rrtype])
		case dns.TypeSOA:
			if h.Name != z.name {
				return fmt.Errorf("smtptlstest: zone %s: %q: SOA is only allowed at the apex", z.name, rr.String())
			}
		case dns.TypeCNAME:
			if h.Name == z.name {
				return fmt.Errorf("smtptlstest: zone %s: %q: CNAME at the apex", z.name, rr.String())
			}
		}
	}
	// A CNAME cannot share its name with other data, nor with a second
	// CNAME (RFC 2181 section 10.1), counting this batch too.
	types := make(map[string]map[uint16]int)
	for _, rr := range rrs {
		h := rr.Header()
		ts := types[h.Name]
		if ts == nil {
			ts = make(map[uint16]int)
			for t, set := range z.nodes[h.Name] {
				ts[t] += len(set)
			}
			types[h.Name] = ts
		}
		dup := false
		for _, old := range z.nodes[h.Name][h.Rrtype] {
			dup = dup || dns.IsDuplicate(old, rr)
		}
		if !dup {
			ts[h.Rrtype]++
		}
	}
	for name, ts := range types {
		if ts[dns.TypeCNAME] > 1 || (ts[dns.TypeCNAME] > 0 && len(ts) > 1) {
			return fmt.Errorf("smtptlstest: zone %s: CNAME and other data at %s", z.name, name)
		}
	}
	for _, rr := range rrs {
		z.put(rr)
	}
	z.changed()
	return nil
}

// put stores rr, replacing the SOA, dropping duplicates and giving the
// RRset the TTL of rr. Callers hold w.mu.
func (z *Zone) put(rr dns.RR) {
	h := rr.Header()
	node := z.nodes[h.Name]
	if node == nil {
		node = make(map[uint16][]dns.RR)
		z.nodes[h.Name] = node
	}
	if h.Rrtype == dns.TypeSOA {
		node[dns.TypeSOA] = []dns.RR{rr}
		return
	}
	set := node[h.Rrtype]
	for _, old := range set {
		old.Header().Ttl = h.Ttl
	}
	for _, old := range set {
		if dns.IsDuplicate(old, rr) {
			return
		}
	}
	node[h.Rrtype] = append(set, rr)
}

// Remove removes the RRset of type qtype at name, or with qtype 0 every
// RRset at name. As in Add, a name without a trailing dot is relative to
// the apex and "@" is the apex. The apex SOA is never removed (the zone
// needs it for negative answers). Removing the DS of a child zone in its
// parent makes the child an island; removing the NS of a child makes the
// child unreachable (the parent answers for its names). Remove panics if
// name is not in the zone.
func (z *Zone) Remove(name string, qtype uint16) {
	owner, err := z.absolute(name)
	if err != nil {
		panic(err)
	}
	z.w.mu.Lock()
	defer z.w.mu.Unlock()
	node := z.nodes[owner]
	if node == nil {
		return
	}
	for t := range node {
		if (qtype == 0 || t == qtype) && !(t == dns.TypeSOA && owner == z.name) {
			delete(node, t)
		}
	}
	if len(node) == 0 {
		delete(z.nodes, owner)
	}
	z.changed()
}

// Records returns copies of the RRset of type qtype at name (relative as
// in Remove), unsigned, as stored; nil if there is none.
func (z *Zone) Records(name string, qtype uint16) []dns.RR {
	owner, err := z.absolute(name)
	if err != nil {
		return nil
	}
	z.w.mu.RLock()
	defer z.w.mu.RUnlock()
	var out []dns.RR
	for _, rr := range z.nodes[owner][qtype] {
		out = append(out, dns.Copy(rr))
	}
	return out
}

func (z *Zone) absolute(name string) (string, error) {
	var owner string
	switch {
	case name == "@" || name == "":
		owner = z.name
	case strings.HasSuffix(name, "."):
		owner = name
	case z.name == ".":
		owner = name + "."
	default:
		owner = name + "." + z.name
	}
	owner = strings.ToLower(owner)
	if _, ok := dns.IsDomainName(owner); !ok || !dns.IsSubDomain(z.name, owner) {
		return "", fmt.Errorf("smtptlstest: zone %s: name %q is not in the zone", z.name, name)
	}
	return owner, nil
}

// SetFault sets the faults of every name in the zone (f = 0 clears them).
// Signature faults then apply to every RRset the zone signs, FaultWrongDS
// to the DS the parent publishes for the zone, and server faults to every
// question the zone answers. See Fault.
func (z *Zone) SetFault(f Fault) {
	z.w.mu.Lock()
	defer z.w.mu.Unlock()
	z.fault = f
}

// changed bumps the SOA serial and drops the derived state. Callers hold
// w.mu for writing.
func (z *Zone) changed() {
	z.serial++
	if soa, ok := z.soa(); ok {
		soa.Serial = z.serial
	}
	z.cacheMu.Lock()
	z.idx = nil
	z.sigs = nil
	z.cacheMu.Unlock()
}

func (z *Zone) soa() (*dns.SOA, bool) {
	set := z.nodes[z.name][dns.TypeSOA]
	if len(set) == 0 {
		return nil, false
	}
	soa, ok := set[0].(*dns.SOA)
	return soa, ok
}

// negTTL is the TTL of negative answers and of NSEC/NSEC3 records: the
// smaller of the SOA's TTL and its MINIMUM field (RFC 2308 section 5, RFC
// 9077).
func (z *Zone) negTTL() uint32 {
	soa, ok := z.soa()
	if !ok {
		return DefaultTTL
	}
	return min(soa.Hdr.Ttl, soa.Minttl)
}

func (z *Zone) signed() bool { return z.cfg.Signing != Unsigned && z.ksk != nil }

// setup (re)creates the zone's own records for cfg: SOA and NS on
// creation, keys, DNSKEY and NSEC3PARAM whenever the signing changes.
// Callers hold w.mu for writing.
func (z *Zone) setup(cfg ZoneConfig, fresh bool) error {
	old := z.cfg
	oldKSK, oldZSK := z.ksk, z.zsk
	rekey := fresh || z.ksk == nil || old.Algorithm != cfg.Algorithm
	if cfg.Signing == Unsigned {
		rekey = false
	}
	if rekey {
		bits := keyBits[cfg.Algorithm]
		ksk, err := newZoneKey(z.name, dns.ZONE|dns.SEP, cfg.Algorithm, bits[0])
		if err != nil {
			return err
		}
		var zsk *zoneKey
		for zsk == nil || zsk.tag == ksk.tag {
			// Distinct key tags keep the zone easy to reason about; a
			// collision (1 in 65536) is simply regenerated.
			if zsk, err = newZoneKey(z.name, dns.ZONE, cfg.Algorithm, bits[1]); err != nil {
				return err
			}
		}
		z.ksk, z.zsk = ksk, zsk
	}
	if cfg.Signing == Unsigned {
		z.ksk, z.zsk = nil, nil
	}
	z.cfg = cfg
	if fresh {
		mbox := "hostmaster." + z.name
		if z.name == "." {
			mbox = "hostmaster."
		}
		z.put(&dns.SOA{
			Hdr:     dns.RR_Header{Name: z.name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: DefaultTTL},
			Ns:      nsName(z.name),
			Mbox:    mbox,
			Serial:  1,
			Refresh: 7200, Retry: 3600, Expire: 1209600, Minttl: DefaultTTL,
		})
		z.put(&dns.NS{
			Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: DefaultTTL},
			Ns:  nsName(z.name),
		})
	}
	apex := z.nodes[z.name]
	if oldKSK != nil && (rekey || cfg.Signing == Unsigned) {
		// Keys added with Add stay; the zone's own are replaced.
		apex[dns.TypeDNSKEY] = slices.DeleteFunc(apex[dns.TypeDNSKEY], func(rr dns.RR) bool {
			return dns.IsDuplicate(rr, oldKSK.dnskey) || dns.IsDuplicate(rr, oldZSK.dnskey)
		})
		if len(apex[dns.TypeDNSKEY]) == 0 {
			delete(apex, dns.TypeDNSKEY)
		}
	}
	if cfg.Signing != Unsigned && rekey {
		z.put(dns.Copy(z.ksk.dnskey))
		z.put(dns.Copy(z.zsk.dnskey))
	}
	delete(apex, dns.TypeNSEC3PARAM)
	if cfg.Signing.nsec3() {
		apex[dns.TypeNSEC3PARAM] = []dns.RR{&dns.NSEC3PARAM{
			Hdr:        dns.RR_Header{Name: z.name, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET, Ttl: DefaultTTL},
			Hash:       dns.SHA1,
			Flags:      0, // RFC 5155 section 4.1.2: the opt-out flag lives only in NSEC3
			Iterations: cfg.NSEC3Iterations,
			SaltLength: uint8(len(cfg.NSEC3Salt) / 2),
			Salt:       cfg.NSEC3Salt,
		}}
	}
	z.changed()
	return nil
}

func nsName(zone string) string {
	if zone == "." {
		return "ns1."
	}
	return "ns1." + zone
}
