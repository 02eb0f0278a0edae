package smtptlstest

import (
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// zoneIndex is what the front derives from a zone's data: which names
// exist, where the zone cuts are, and the NSEC or NSEC3 chain. It is
// immutable once built and rebuilt after every change.
type zoneIndex struct {
	// exists holds every name of the zone that is not occluded: names
	// with data and empty non-terminals (RFC 4592 section 2.2.2).
	exists map[string]bool
	ents   map[string]bool
	// cuts holds the delegation points below the apex (NS RRsets).
	cuts map[string]bool

	nsec   []*dns.NSEC // canonical order (RFC 4034 section 6.1)
	nsecOf map[string]*dns.NSEC

	nsec3  []*dns.NSEC3 // hash order
	hashes []string     // owner hashes (uppercase base32hex), sorted
	iter   uint16
	salt   string
}

// index returns the zone's index, building it if a change dropped it.
// Callers hold w.mu (read or write).
func (z *Zone) index() *zoneIndex {
	z.cacheMu.Lock()
	defer z.cacheMu.Unlock()
	if z.idx == nil {
		z.idx = z.buildIndex()
	}
	return z.idx
}

func (z *Zone) buildIndex() *zoneIndex {
	ix := &zoneIndex{
		exists: make(map[string]bool),
		ents:   make(map[string]bool),
		cuts:   make(map[string]bool),
		nsecOf: make(map[string]*dns.NSEC),
		iter:   z.cfg.NSEC3Iterations,
		salt:   z.cfg.NSEC3Salt,
	}
	var names []string
	delegation := make(map[string]bool)
	for n, node := range z.nodes {
		if !hasData(node) {
			continue
		}
		names = append(names, n)
		if n != z.name && len(node[dns.TypeNS]) > 0 {
			delegation[n] = true
		}
	}
	// Occluded names (below a cut) are not part of the zone's namespace
	// (RFC 4035 section 2.3): they get no NSEC and never answer.
	auth := names[:0]
	for _, n := range names {
		occluded := false
		for a := parentName(n); a != z.name && a != ""; a = parentName(a) {
			if delegation[a] {
				occluded = true
				break
			}
		}
		if !occluded {
			auth = append(auth, n)
		}
	}
	names = auth
	for _, n := range names {
		ix.exists[n] = true
		if delegation[n] {
			ix.cuts[n] = true
		}
	}
	for _, n := range names {
		for a := parentName(n); a != z.name && a != ""; a = parentName(a) {
			if !ix.exists[a] {
				ix.ents[a] = true
				ix.exists[a] = true
			}
		}
	}
	ix.exists[z.name] = true
	switch {
	case z.cfg.Signing == NSEC:
		z.buildNSEC(ix, names)
	case z.cfg.Signing.nsec3():
		z.buildNSEC3(ix, names)
	}
	return ix
}

func hasData(node map[uint16][]dns.RR) bool {
	for _, set := range node {
		if len(set) > 0 {
			return true
		}
	}
	return false
}

// typesAt returns the types of the RRsets at name, as the NSEC/NSEC3 type
// bitmap lists them: at a delegation only NS and DS are the zone's own.
func (z *Zone) typesAt(ix *zoneIndex, name string) []uint16 {
	node := z.nodes[name]
	var ts []uint16
	if ix.cuts[name] {
		ts = append(ts, dns.TypeNS)
		if len(node[dns.TypeDS]) > 0 {
			ts = append(ts, dns.TypeDS)
		}
		return ts
	}
	for t, set := range node {
		if len(set) > 0 {
			ts = append(ts, t)
		}
	}
	return ts
}

func (z *Zone) buildNSEC(ix *zoneIndex, names []string) {
	sorted := slices.Clone(names)
	keys := make(map[string][][]byte, len(sorted))
	for _, n := range sorted {
		keys[n] = canonicalLabels(n)
	}
	slices.SortFunc(sorted, func(a, b string) int { return compareLabels(keys[a], keys[b]) })
	ttl := z.negTTL()
	for i, n := range sorted {
		ts := append(z.typesAt(ix, n), dns.TypeNSEC, dns.TypeRRSIG)
		slices.Sort(ts)
		rec := &dns.NSEC{
			Hdr:        dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl},
			NextDomain: sorted[(i+1)%len(sorted)],
			TypeBitMap: ts,
		}
		ix.nsec = append(ix.nsec, rec)
		ix.nsecOf[n] = rec
	}
}

func compareLabels(la, lb [][]byte) int {
	for i := 0; i < len(la) && i < len(lb); i++ {
		if c := strings.Compare(string(la[i]), string(lb[i])); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

func (z *Zone) buildNSEC3(ix *zoneIndex, names []string) {
	optOut := z.cfg.Signing == NSEC3OptOut
	type hashed struct {
		hash, name string
	}
	var hs []hashed
	seen := make(map[string]bool)
	add := func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		hs = append(hs, hashed{ix.hash(n), n})
	}
	for _, n := range names {
		// RFC 5155 section 7.1: with opt-out, insecure delegations may
		// go without an NSEC3 of their own; we leave them all out.
		if optOut && ix.cuts[n] && len(z.nodes[n][dns.TypeDS]) == 0 {
			continue
		}
		add(n)
	}
	for n := range ix.ents {
		add(n)
	}
	slices.SortFunc(hs, func(a, b hashed) int { return strings.Compare(a.hash, b.hash) })
	ttl := z.negTTL()
	var flags uint8
	if optOut {
		flags = 1
	}
	for i, h := range hs {
		var ts []uint16
		if !ix.ents[h.name] {
			ts = z.typesAt(ix, h.name)
			if !ix.cuts[h.name] || len(z.nodes[h.name][dns.TypeDS]) > 0 {
				// Everything but an insecure delegation's NS is signed.
				ts = append(ts, dns.TypeRRSIG)
			}
			slices.Sort(ts)
		}
		owner := strings.ToLower(h.hash) + "." + z.name
		if z.name == "." {
			owner = strings.ToLower(h.hash) + "."
		}
		ix.nsec3 = append(ix.nsec3, &dns.NSEC3{
			Hdr:        dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: ttl},
			Hash:       dns.SHA1,
			Flags:      flags,
			Iterations: ix.iter,
			SaltLength: uint8(len(ix.salt) / 2),
			Salt:       ix.salt,
			HashLength: 20,
			NextDomain: hs[(i+1)%len(hs)].hash,
			TypeBitMap: ts,
		})
		ix.hashes = append(ix.hashes, h.hash)
	}
}

func (ix *zoneIndex) hash(name string) string {
	return dns.HashName(name, dns.SHA1, ix.iter, ix.salt)
}

// nsecCover returns the NSEC whose span covers name, which does not exist.
func (ix *zoneIndex) nsecCover(name string) *dns.NSEC {
	key := canonicalLabels(name)
	i := sort.Search(len(ix.nsec), func(i int) bool {
		return compareLabels(canonicalLabels(ix.nsec[i].Hdr.Name), key) > 0
	})
	if i == 0 {
		return ix.nsec[len(ix.nsec)-1]
	}
	return ix.nsec[i-1]
}

// nsec3Match returns the NSEC3 whose owner is the hash of name, or nil.
func (ix *zoneIndex) nsec3Match(name string) *dns.NSEC3 {
	h := ix.hash(name)
	i := sort.SearchStrings(ix.hashes, h)
	if i < len(ix.hashes) && ix.hashes[i] == h {
		return ix.nsec3[i]
	}
	return nil
}

// nsec3Cover returns the NSEC3 whose span covers the hash of name.
func (ix *zoneIndex) nsec3Cover(name string) *dns.NSEC3 {
	h := ix.hash(name)
	i := sort.SearchStrings(ix.hashes, h)
	if i < len(ix.hashes) && ix.hashes[i] == h {
		return ix.nsec3[i]
	}
	if i == 0 {
		return ix.nsec3[len(ix.nsec3)-1]
	}
	return ix.nsec3[i-1]
}

// A part is one RRset of an answer, with what the front needs to sign it
// and to judge its security.
type part struct {
	zone   *Zone
	owner  string // owner as served
	rrtype uint16
	rrs    []dns.RR // as stored: copy before serving
	ttl    uint32   // served TTL if not zero (negative answers)
	// wildcard is the wildcard owner the RRset was synthesized from
	// (RFC 4592); its RRSIG is the wildcard's, with Labels < owner labels.
	wildcard string
	// proofFor and proofType are the question a denial part answers.
	proofFor  string
	proofType uint16
}

// zoneResult is the answer of one zone to one question.
type zoneResult struct {
	rcode  int
	answer []*part
	auth   []*part
	cname  string // CNAME target to chase, lowercase
	lame   bool   // below a delegation to no zone of the World
	// optOut is set when a denial relies on an opt-out NSEC3 span, which
	// proves insecurity, not absence (RFC 5155 section 9.2).
	optOut bool
	// nsec3 is set when a denial uses NSEC3 records.
	nsec3 bool
}

// lookup answers (qname, qtype) from the zone's data, as an authoritative
// server would (RFC 1034 section 4.3.2, RFC 4035 section 3.1.3), but
// without referrals: the World routes each question to its zone first.
// Callers hold w.mu.
func (z *Zone) lookup(qname string, qtype uint16) *zoneResult {
	ix := z.index()
	r := &zoneResult{rcode: dns.RcodeSuccess}
	apexLabels, qLabels := dns.CountLabel(z.name), dns.CountLabel(qname)
	for n := apexLabels + 1; n <= qLabels; n++ {
		a := ancestorAt(qname, n)
		if !ix.cuts[a] {
			continue
		}
		if a == qname && qtype == dns.TypeDS {
			// The parent side of a cut is authoritative for the DS
			// (RFC 4035 section 3.1.4.1).
			break
		}
		r.lame = true
		return r
	}
	d := denier{z: z, ix: ix, r: r, qname: qname, qtype: qtype}
	node := z.nodes[qname]
	if ix.exists[qname] && !ix.ents[qname] {
		switch {
		case ix.cuts[qname]:
			if set := node[dns.TypeDS]; len(set) > 0 {
				r.answer = append(r.answer, z.part(qname, dns.TypeDS, set))
			} else {
				d.nodata()
			}
		case len(node[dns.TypeCNAME]) > 0 && qtype != dns.TypeCNAME && qtype != dns.TypeANY:
			set := node[dns.TypeCNAME]
			r.answer = append(r.answer, z.part(qname, dns.TypeCNAME, set))
			r.cname = strings.ToLower(set[0].(*dns.CNAME).Target)
		case qtype == dns.TypeANY:
			r.answer = append(r.answer, z.allParts(qname, node)...)
		case qtype == dns.TypeNSEC && ix.nsecOf[qname] != nil:
			r.answer = append(r.answer, z.part(qname, dns.TypeNSEC, []dns.RR{ix.nsecOf[qname]}))
		case len(node[qtype]) > 0:
			r.answer = append(r.answer, z.part(qname, qtype, node[qtype]))
		default:
			d.nodata()
		}
		return r
	}
	if ix.ents[qname] {
		d.nodata()
		return r
	}
	// The name does not exist: find the closest encloser and its
	// wildcard (RFC 4592 section 3.3.1).
	ce := z.name
	for n := qLabels - 1; n > apexLabels; n-- {
		if a := ancestorAt(qname, n); ix.exists[a] {
			ce = a
			break
		}
	}
	d.ce = ce
	d.wc = "*." + ce
	if ce == "." {
		d.wc = "*."
	}
	wnode := z.nodes[d.wc]
	if !ix.exists[d.wc] || !hasData(wnode) {
		d.nxdomain()
		return r
	}
	synth := func(t uint16, set []dns.RR) *part {
		p := z.part(qname, t, set)
		p.wildcard = d.wc
		return p
	}
	switch {
	case len(wnode[dns.TypeCNAME]) > 0 && qtype != dns.TypeCNAME && qtype != dns.TypeANY:
		set := wnode[dns.TypeCNAME]
		r.answer = append(r.answer, synth(dns.TypeCNAME, set))
		r.cname = strings.ToLower(set[0].(*dns.CNAME).Target)
		d.wildcardAnswer()
	case qtype == dns.TypeANY:
		for _, p := range z.allParts(d.wc, wnode) {
			r.answer = append(r.answer, synth(p.rrtype, p.rrs))
		}
		d.wildcardAnswer()
	case len(wnode[qtype]) > 0:
		r.answer = append(r.answer, synth(qtype, wnode[qtype]))
		d.wildcardAnswer()
	default:
		d.wildcardNodata()
	}
	return r
}

func (z *Zone) part(owner string, t uint16, set []dns.RR) *part {
	return &part{zone: z, owner: owner, rrtype: t, rrs: set}
}

func (z *Zone) allParts(owner string, node map[uint16][]dns.RR) []*part {
	var ts []uint16
	for t, set := range node {
		if len(set) > 0 {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	var ps []*part
	for _, t := range ts {
		ps = append(ps, z.part(owner, t, node[t]))
	}
	return ps
}

// denier adds the SOA and the NSEC or NSEC3 records that prove a negative
// or wildcard answer to a zoneResult.
type denier struct {
	z      *Zone
	ix     *zoneIndex
	r      *zoneResult
	qname  string
	qtype  uint16
	ce, wc string // closest encloser and its wildcard, for non-existent names
}

func (d *denier) soa() {
	set := d.z.nodes[d.z.name][dns.TypeSOA]
	if len(set) == 0 {
		return
	}
	p := d.z.part(d.z.name, dns.TypeSOA, set)
	p.ttl = d.z.negTTL()
	d.add(p)
}

func (d *denier) add(p *part) {
	p.proofFor, p.proofType = d.qname, d.qtype
	for _, q := range d.r.auth {
		if q.owner == p.owner && q.rrtype == p.rrtype {
			return
		}
	}
	d.r.auth = append(d.r.auth, p)
}

func (d *denier) nsec(rec *dns.NSEC) {
	if rec != nil {
		d.add(d.z.part(rec.Hdr.Name, dns.TypeNSEC, []dns.RR{rec}))
	}
}

func (d *denier) nsec3(rec *dns.NSEC3) {
	if rec != nil {
		d.r.nsec3 = true
		d.add(d.z.part(rec.Hdr.Name, dns.TypeNSEC3, []dns.RR{rec}))
	}
}

// cover3 adds the NSEC3 covering the next closer name and notes opt-out.
func (d *denier) cover3(name string) {
	rec := d.ix.nsec3Cover(name)
	if rec.Flags&1 != 0 {
		d.r.optOut = true
	}
	d.nsec3(rec)
}

func (d *denier) signing() Signing { return d.z.cfg.Signing }

// nodata proves that qname exists without qtype (RFC 4035 section
// 3.1.3.1, RFC 5155 section 7.2.3/7.2.4).
func (d *denier) nodata() {
	d.soa()
	switch {
	case d.signing() == NSEC:
		if rec := d.ix.nsecOf[d.qname]; rec != nil {
			d.nsec(rec)
		} else {
			// An empty non-terminal has no NSEC: the one before it
			// covers it, its next name being a descendant.
			d.nsec(d.ix.nsecCover(d.qname))
		}
	case d.signing().nsec3():
		if rec := d.ix.nsec3Match(d.qname); rec != nil {
			d.nsec3(rec)
			return
		}
		// An insecure delegation left out by opt-out: prove the
		// closest provable encloser and cover the next closer name,
		// whose opt-out flag makes the delegation provably insecure
		// (RFC 5155 section 7.2.4).
		ce := parentName(d.qname)
		for ce != "" && d.ix.nsec3Match(ce) == nil {
			ce = parentName(ce)
		}
		if ce == "" {
			return
		}
		d.nsec3(d.ix.nsec3Match(ce))
		d.cover3(ancestorAt(d.qname, dns.CountLabel(ce)+1))
	}
}

// nxdomain proves that qname and the wildcard at its closest encloser do
// not exist (RFC 4035 section 3.1.3.2, RFC 5155 section 7.2.2).
func (d *denier) nxdomain() {
	d.r.rcode = dns.RcodeNameError
	d.soa()
	switch {
	case d.signing() == NSEC:
		d.nsec(d.ix.nsecCover(d.qname))
		d.nsec(d.ix.nsecCover(d.wc))
	case d.signing().nsec3():
		d.nsec3(d.ix.nsec3Match(d.ce))
		d.cover3(d.nextCloser())
		d.nsec3(d.ix.nsec3Cover(d.wc))
	}
}

// wildcardAnswer proves that no name closer than the wildcard matched
// (RFC 4035 section 3.1.3.3, RFC 5155 section 7.2.6).
func (d *denier) wildcardAnswer() {
	switch {
	case d.signing() == NSEC:
		d.nsec(d.ix.nsecCover(d.qname))
	case d.signing().nsec3():
		d.cover3(d.nextCloser())
	}
}

// wildcardNodata proves that qname does not exist and that the wildcard
// which would match has no qtype (RFC 4035 section 3.1.3.4, RFC 5155
// section 7.2.5).
func (d *denier) wildcardNodata() {
	d.soa()
	switch {
	case d.signing() == NSEC:
		d.nsec(d.ix.nsecCover(d.qname))
		d.nsec(d.ix.nsecOf[d.wc])
	case d.signing().nsec3():
		d.nsec3(d.ix.nsec3Match(d.ce))
		d.cover3(d.nextCloser())
		d.nsec3(d.ix.nsec3Match(d.wc))
	}
}

func (d *denier) nextCloser() string {
	return ancestorAt(d.qname, dns.CountLabel(d.ce)+1)
}
