package tlsverify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"
	"time"
)

// Work limits. The TLSA RRset and the certificate chain come from the
// network; these bound the work one verification can do.
const (
	// MaxRecords is the number of TLSA records a DANE value considers;
	// later records are ignored. Real RRsets hold a handful.
	MaxRecords = 100
	// MaxChain is the number of certificates of the peer chain
	// considered (the leaf and up to nine more); later ones are ignored.
	MaxChain = 10
	// MaxNames is the number of reference identifiers considered.
	MaxNames = 16
	// maxSigChecks bounds signature verifications per VerifyChain call.
	maxSigChecks = 3 * MaxChain
	// maxNodes bounds the path-building steps per VerifyChain call.
	maxNodes = 4 * MaxChain
)

// DANE verifies a server's certificate chain against a TLSA RRset the way
// an SMTP client must (RFC 7672 section 3, RFC 7671 section 5).
//
// Fill the fields, then call Verify or VerifyChain, or pass the value to
// Config. A DANE value is safe for concurrent use. The first verification
// computes derived state (the effective records with a copy of their
// data, decoded Full(0) data, canonical names) once; the fields must not
// be changed after that, as with a tls.Config in use. Build a new DANE
// value when the records change. For the common RRset, one or two
// DANE-EE(3) digest records, the state is held in the value itself: a
// verifier built for one connection costs no allocation of its own.
type DANE struct {
	// Records is the secure (DNSSEC-validated) TLSA RRset. PKIX-TA(0) and
	// PKIX-EE(1) records, unknown selectors or matching types, digests of
	// the wrong length and undecodable Full(0) data are unusable and
	// ignored (RFC 7672 3.1.3; see TLSA.Status). Only the first
	// MaxRecords records are considered. With no usable record every
	// verification fails with KindNoUsableRecords; RFC 7672 2.2 then asks
	// for unauthenticated TLS, which is the caller's decision, not ours.
	Records []TLSA

	// Names are the reference identifiers checked against the leaf when a
	// DANE-TA(2) record matched (RFC 7672 3.2.2, 3.2.3). Names[0] must be
	// the TLSA base domain (also the SNI name); further names are the
	// next-hop domain and its CNAME expansion, or with an insecure MX RRset
	// the MX host name. Any case, with or without trailing dot, U-labels
	// or A-labels. Only the first MaxNames are considered.
	//
	// The zero value (no names) makes every DANE-TA(2) match fail with
	// KindNameMismatch: there is nothing to check the certificate
	// against, and skipping the check would let any certificate issued by
	// the trust anchor impersonate the server. DANE-EE(3) matches never
	// check names.
	Names []string

	// Now returns the current time for validity checks of DANE-TA(2)
	// chains. Nil means time.Now.
	Now func() time.Time

	// DigestPreference ranks the digest matching types for digest agility
	// (RFC 7671 section 9), strongest first. Within each (usage, selector)
	// pair, after unusable records are dropped, only Full(0) records and
	// the records of the highest-ranked matching type present are used;
	// a server whose only matching record uses a weaker digest fails. A
	// matching type missing from a non-empty list is treated as
	// unsupported and its records as unusable (TLSA.UsableWith); values
	// other than SHA256 and SHA512 are ignored. Whether any record is
	// usable at all, and so whether the RRset calls for authentication or
	// only for TLS (RFC 7672 2.2), is UsableRecords with this list: a
	// caller that decides the DANE level must use the same list here.
	//
	// Nil (or empty) means {SHA512, SHA256}: SHA-512 is preferred, as
	// RFC 7671 9 suggests. A list that ranks SHA-256 first trades a
	// little collision resistance for compatibility with zones that
	// publish a stale SHA-512 record next to a current SHA-256 one.
	DigestPreference []uint8

	// The derived state. An RRset of DANE-EE(3) digests whose effective
	// records fit in ee is copied there (inlineState says when it is);
	// any other RRset gets a prepared state (prep). Neither refers back
	// to the DANE value, so that a value built and used in one function
	// can stay on its stack.
	inlineState atomic.Uint32
	ee          [maxInlineEE]inlineEE
	eeN         uint8
	prepState   atomic.Uint32 // prepUnknown, prepWriting or prepReady
	prep        *prepared     // set before prepState becomes prepReady
}

// maxInlineEE is how many effective DANE-EE(3) digest records a DANE
// value holds inline: a key and its successor during a rollover.
const maxInlineEE = 2

// inlineEE is the copy of one effective DANE-EE(3) digest record.
type inlineEE struct {
	selector, matchingType uint8
	n                      uint8 // length of the digest in data
	data                   [sha512.Size]byte
}

// States of DANE.inlineState.
const (
	inlineUnknown uint32 = iota // no verification yet
	inlineWriting               // the first verification is copying the records
	inlineReady                 // ee and eeN hold the effective records
	inlineNo                    // the RRset needs a prepared state
)

// States of DANE.prepState. (Plain fields published by an atomic state
// rather than sync.Once or atomic.Pointer: both would make every DANE
// value escape to the heap.)
const (
	prepUnknown uint32 = iota
	prepWriting
	prepReady
)

// Match reports which record authenticated the server.
type Match struct {
	// Record is the TLSA record that matched. Its Data is shared with the
	// DANE value's copy of the records (copying it would cost an
	// allocation per handshake); do not modify it.
	Record TLSA
	// Depth follows OpenSSL's SSL_get0_dane_authority. It is 0 for a
	// DANE-EE(3) match on the leaf. For DANE-TA(2) it is the position of
	// the trust anchor in the verified path, counting the leaf as 0: the
	// position of the matching certificate in a well-ordered chain; for a
	// Full(0) certificate from DNS that is not in the chain, one more than
	// the position of the certificate it signed (len(chain) for a
	// complete chain without the anchor); for a bare SPKI(1) Full(0) key
	// from DNS, the position of the top-most chain certificate it signed
	// (so 0 when it signed the leaf: the key is not the leaf, it
	// certified it). Depth is -1 when no record matched.
	Depth int
}

type prepared struct {
	names   []string
	usable  bool
	ee      []TLSA  // effective DANE-EE(3) records
	eeBuf   [2]TLSA // backing for ee in the common case
	ta      []taRec // effective DANE-TA(2) records
	dnsCert []int   // indexes into ta of 2 0 0 records (certificates)
	dnsKey  []int   // indexes into ta of 2 1 0 records (bare keys)
}

// taRec is an effective DANE-TA(2) record with its decoded Full(0) data.
type taRec struct {
	rec  TLSA
	cert *x509.Certificate // 2 0 0
	key  *x509.Certificate // 2 0 0 and 2 1 0: keyShell of the public key
}

// keyShell returns a certificate holding only pub, so that signatures
// made by a trust anchor's key are checked by CheckSignatureFrom like
// every other link (same algorithm policy: no MD5, no SHA-1), while the
// constraints of the anchor's certificate, which depend on its role, are
// left to the path checks.
func keyShell(pub any) *x509.Certificate {
	return &x509.Certificate{PublicKey: pub, PublicKeyAlgorithm: keyAlgorithm(pub)}
}

// needBits records which digests of a certificate have been computed.
type needBits uint8

const (
	needCert256 needBits = 1 << iota
	needCert512
	needSPKI256
	needSPKI512
)

// state returns the prepared state, computing it on first use.
// Concurrent first uses may each compute it; the first one's is kept.
func (d *DANE) state() *prepared {
	if d.prepState.Load() == prepReady {
		return d.prep
	}
	p := new(prepared)
	d.prepare(p)
	if d.prepState.CompareAndSwap(prepUnknown, prepWriting) {
		d.prep = p
		d.prepState.Store(prepReady)
	}
	return p
}

// records returns the records considered: the first MaxRecords.
func (d *DANE) records() []TLSA {
	if len(d.Records) > MaxRecords {
		return d.Records[:MaxRecords]
	}
	return d.Records
}

// effectiveEE returns the effective DANE-EE(3) records in the inline
// form, ee[:n], their data in d (copied there by the first call), or
// false when the RRset needs a prepared state: a record other than a
// DANE-EE(3) digest, or more than maxInlineEE effective records. The
// records are chosen as prepare chooses them: usable (UsableWith), and of
// the strongest digest present for their selector (RFC 7671 9).
func (d *DANE) effectiveEE() (ee [maxInlineEE]TLSA, n int, ok bool) {
	switch d.inlineState.Load() {
	case inlineReady:
		n = int(d.eeN)
		for i := range n {
			e := &d.ee[i]
			ee[i] = TLSA{Usage: DANEEE, Selector: e.selector, MatchingType: e.matchingType, Data: e.data[:e.n:e.n]}
		}
		return ee, n, true
	case inlineNo:
		return ee, 0, false
	}
	var best [2]int // [selector] -> rank
	for _, r := range d.records() {
		if r.Usage != DANEEE || r.MatchingType == Full {
			d.inlineState.CompareAndSwap(inlineUnknown, inlineNo)
			return ee, 0, false
		}
		// Status is a length check for digests: no parsing here.
		if !r.UsableWith(d.DigestPreference) {
			continue
		}
		if rk := digestRank(d.DigestPreference, r.MatchingType); rk > best[r.Selector] {
			best[r.Selector] = rk
		}
	}
	for _, r := range d.records() {
		if !r.UsableWith(d.DigestPreference) || digestRank(d.DigestPreference, r.MatchingType) != best[r.Selector] {
			continue
		}
		if n == maxInlineEE {
			d.inlineState.CompareAndSwap(inlineUnknown, inlineNo)
			return ee, 0, false
		}
		ee[n] = r
		n++
	}
	if !d.inlineState.CompareAndSwap(inlineUnknown, inlineWriting) {
		// Another verification is copying them: use the fields this once.
		return ee, n, true
	}
	for i, r := range ee[:n] {
		e := &d.ee[i]
		e.selector, e.matchingType, e.n = r.Selector, r.MatchingType, uint8(copy(e.data[:], r.Data))
	}
	d.eeN = uint8(n)
	d.inlineState.Store(inlineReady)
	return d.effectiveEE()
}

// prepare fills p: the effective records (usable, and of the strongest
// digest of their usage and selector), their data copied and Full(0)
// data decoded, and the canonical reference identifiers when a DANE-TA(2)
// record may need them.
func (d *DANE) prepare(p *prepared) {
	p.ee = p.eeBuf[:0]
	recs := d.Records
	if len(recs) > MaxRecords {
		recs = recs[:MaxRecords]
	}
	rank := func(mt uint8) int { return digestRank(d.DigestPreference, mt) }
	// Digest agility (RFC 7671 9): per (usage, selector), the strongest
	// supported digest among the usable records (UsableWith, the rule
	// UsableRecords applies). Two passes over recs avoid collecting the
	// usable ones; Status is cheap but for DANE-TA Full(0) data, which the
	// second pass parses anyway.
	var best [2][2]int // [usage-2][selector] -> rank
	size := 0
	for _, r := range recs {
		size += len(r.Data)
		if r.MatchingType == Full || !r.UsableWith(d.DigestPreference) {
			continue
		}
		if rk := rank(r.MatchingType); rk > best[r.Usage-DANETA][r.Selector] {
			best[r.Usage-DANETA][r.Selector] = rk
		}
	}
	var buf []byte
	for _, r := range recs {
		if !r.UsableWith(d.DigestPreference) {
			continue
		}
		if r.MatchingType != Full && rank(r.MatchingType) != best[r.Usage-DANETA][r.Selector] {
			continue
		}
		p.usable = true
		// The caller keeps its slices: copy the data, all records into
		// one allocation.
		if buf == nil {
			buf = make([]byte, 0, size)
		}
		start := len(buf)
		buf = append(buf, r.Data...)
		r.Data = buf[start:len(buf):len(buf)]
		if r.Usage == DANEEE {
			p.ee = append(p.ee, r)
			continue
		}
		t := taRec{rec: r}
		switch {
		case r.MatchingType == Full && r.Selector == Cert:
			t.cert, _ = x509.ParseCertificate(r.Data) // Status checked it parses
			t.key = keyShell(t.cert.PublicKey)
			p.dnsCert = append(p.dnsCert, len(p.ta))
		case r.MatchingType == Full:
			pub, _ := x509.ParsePKIXPublicKey(r.Data)
			t.key = keyShell(pub)
			p.dnsKey = append(p.dnsKey, len(p.ta))
		}
		p.ta = append(p.ta, t)
	}
	if len(p.ta) == 0 {
		return // names are only checked after a DANE-TA(2) match
	}
	for _, n := range d.Names {
		if len(p.names) == MaxNames {
			break
		}
		if c := canonicalName(n); c != "" {
			p.names = append(p.names, c)
		}
	}
}

func keyAlgorithm(pub any) x509.PublicKeyAlgorithm {
	switch pub.(type) {
	case *rsa.PublicKey:
		return x509.RSA
	case *ecdsa.PublicKey:
		return x509.ECDSA
	case ed25519.PublicKey:
		return x509.Ed25519
	}
	return x509.UnknownPublicKeyAlgorithm
}

// Usable reports whether at least one record is usable under this
// configuration. When it is false, RFC 7672 2.2 calls for TLS without
// authentication (never cleartext), and VerifyChain fails with
// KindNoUsableRecords.
func (d *DANE) Usable() bool {
	if d == nil {
		return false
	}
	if _, n, ok := d.effectiveEE(); ok {
		return n > 0
	}
	return d.state().usable
}

func (d *DANE) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Verify verifies cs.PeerCertificates with VerifyChain. Its signature
// fits tls.Config.VerifyConnection; see Config.
func (d *DANE) Verify(cs tls.ConnectionState) error {
	_, err := d.VerifyChain(cs.PeerCertificates)
	return err
}

// VerifyChain verifies a server certificate chain, leaf first, in the
// order the server sent it (RFC 7672 3.1, RFC 7671 5):
//
//   - DANE-EE(3) records are compared with the leaf certificate or its
//     public key only: no name, validity or chain checks.
//   - DANE-TA(2) records name a trust anchor: a certificate of the chain
//     other than the leaf, a certificate from DNS (2 0 0) or a bare key
//     from DNS (2 1 0). A path is built from the leaf to the anchor,
//     every signature on it is verified, and the path is truncated at the
//     anchor, so that cross-signed copies of the anchor higher up are
//     irrelevant. The leaf and the intermediates must be within their
//     validity period; the anchor certificate only when it is self-issued
//     (as OpenSSL does: a self-issued anchor is checked like a root, while
//     a non-self-issued one stands only for its key and name). A bare key
//     has no dates. Intermediates must be CAs within
//     their path length limit, and so must a Cert(0) anchor (RFC 7671
//     5.2.2 "SHOULD apply TA constraints"); a key-only SPKI(1) anchor
//     carries no constraints. An anchor that has the leaf's key never
//     counts: a DANE-TA(2) record never matches at depth 0. Finally the
//     leaf must be valid for one of Names (see matchesAnyName).
//
// A DANE-EE(3) match is preferred to a DANE-TA(2) one, and a shallower
// anchor to a deeper one. Only the first MaxChain certificates are
// considered, and path building stops after a fixed number of steps and
// signature checks.
//
// On success the error is nil. On failure it is a *Error; the Match then
// has Depth -1, unless a DANE-TA(2) record matched before a later check
// (name, validity, constraints) failed, in which case it names that record
// and depth, as OpenSSL reports them.
func (d *DANE) VerifyChain(chain []*x509.Certificate) (Match, error) {
	if d == nil {
		return Match{Depth: -1}, newError(KindConfig, "nil DANE verifier")
	}
	var (
		p      *prepared
		ee     []TLSA
		usable bool
	)
	inlineEE, n, inline := d.effectiveEE()
	if inline {
		ee, usable = inlineEE[:n], n > 0
	} else {
		p = d.state()
		ee, usable = p.ee, p.usable
	}
	if !usable {
		return Match{Depth: -1}, newError(KindNoUsableRecords, "no usable TLSA records")
	}
	for i, c := range chain {
		if c == nil || i == MaxChain {
			chain = chain[:i]
			break
		}
	}
	if len(chain) == 0 {
		return Match{Depth: -1}, newError(KindNoCertificate, "server sent no certificate")
	}
	if r, ok := matchEE(ee, chain[0]); ok {
		return Match{Record: r, Depth: 0}, nil
	}
	if p == nil || len(p.ta) == 0 {
		return Match{Depth: -1}, newError(KindNoMatch, "no DANE-EE record matches the leaf")
	}
	return p.verifyTA(chain, d.now())
}

// matchEE compares the leaf with the DANE-EE(3) records, hashing each
// selected field at most once.
func matchEE(ee []TLSA, leaf *x509.Certificate) (TLSA, bool) {
	var (
		have           needBits
		c256, s256     [sha256.Size]byte
		c512, s512     [sha512.Size]byte
		digest, source []byte
	)
	for _, r := range ee {
		if r.Selector == Cert {
			source = leaf.Raw
		} else {
			source = leaf.RawSubjectPublicKeyInfo
		}
		switch {
		case r.MatchingType == Full:
			digest = source
		case r.MatchingType == SHA256 && r.Selector == Cert:
			if have&needCert256 == 0 {
				c256, have = sha256.Sum256(source), have|needCert256
			}
			digest = c256[:]
		case r.MatchingType == SHA256:
			if have&needSPKI256 == 0 {
				s256, have = sha256.Sum256(source), have|needSPKI256
			}
			digest = s256[:]
		case r.Selector == Cert:
			if have&needCert512 == 0 {
				c512, have = sha512.Sum512(source), have|needCert512
			}
			digest = c512[:]
		default:
			if have&needSPKI512 == 0 {
				s512, have = sha512.Sum512(source), have|needSPKI512
			}
			digest = s512[:]
		}
		if bytes.Equal(digest, r.Data) {
			return r, true
		}
	}
	return TLSA{}, false
}
