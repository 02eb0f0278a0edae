package tlsverify

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"time"
)

// search is the state of one DANE-TA(2) path search. It lives on the
// stack of verifyTA; nothing in it outlives the call.
type search struct {
	p     *prepared
	chain []*x509.Certificate // at most MaxChain, leaf first
	now   time.Time

	// sig memoizes signature checks between chain certificates:
	// sig[child][parent] is 0 (unknown), 1 (valid) or -1 (invalid).
	sig [MaxChain][MaxChain]int8
	// dig caches the digests of chain certificates, computed on demand.
	dig [MaxChain]digests

	path   [MaxChain]int // chain indexes of the path, leaf first
	n      int           // path length
	inPath uint32        // bit i set when chain[i] is on the path

	sigBudget, nodeBudget int
	limited               bool

	found    Match
	fail     *Error // first path that matched an anchor but failed a check
	failAt   Match
	badSig   *Error // first anchor that names the issuer but did not sign
	nameOK   int8   // 0 unknown, 1 the leaf matches Names, -1 it does not
	leafSPKI []byte
}

type digests struct {
	have       needBits
	c256, s256 [sha256.Size]byte
	c512, s512 [sha512.Size]byte
}

func (p *prepared) verifyTA(chain []*x509.Certificate, now time.Time) (Match, error) {
	s := search{
		p:          p,
		chain:      chain,
		now:        now,
		sigBudget:  maxSigChecks,
		nodeBudget: maxNodes,
		leafSPKI:   chain[0].RawSubjectPublicKeyInfo,
	}
	s.path[0], s.n, s.inPath = 0, 1, 1
	if s.walk(0) {
		if !s.leafNameOK() {
			return s.found, p.nameError(s.found.Record)
		}
		return s.found, nil
	}
	if s.fail != nil {
		// OpenSSL checks names before dates and constraints; report a
		// mismatch first so that both agree on the result.
		if !s.leafNameOK() {
			return s.failAt, p.nameError(s.failAt.Record)
		}
		return s.failAt, s.fail
	}
	if s.limited {
		return Match{Depth: -1}, newError(KindLimit, "chain building work limit reached")
	}
	if s.badSig != nil {
		return Match{Depth: -1}, s.badSig
	}
	return Match{Depth: -1}, newError(KindNoMatch, "no DANE-TA or DANE-EE record matches the chain")
}

func (p *prepared) nameError(r TLSA) *Error {
	e := newError(KindNameMismatch, "leaf certificate is not valid for any reference identifier")
	e.Record, e.Depth = recordCopy(r), 0
	if len(p.names) > 0 {
		e.Name = p.names[0]
	}
	return e
}

// recordCopy returns a copy of r for an Error, so that a caller cannot
// modify the verifier's records through it.
func recordCopy(r TLSA) *TLSA {
	r.Data = bytes.Clone(r.Data)
	return &r
}

func (s *search) leafNameOK() bool {
	if s.nameOK == 0 {
		s.nameOK = -1
		if matchesAnyName(s.chain[0], s.p.names) {
			s.nameOK = 1
		}
	}
	return s.nameOK == 1
}

// walk extends the path whose top is chain[cur] (at depth s.n-1) towards
// a trust anchor. It reports whether a valid path was found (s.found).
// Anchors directly above cur are tried first, in OpenSSL's order: an
// issuer of cur in the chain that a record matches, an issuer from DNS
// (2 0 0), a bare key from DNS (2 1 0); only then a deeper path through
// each issuer.
func (s *search) walk(cur int) bool {
	if s.nodeBudget--; s.nodeBudget < 0 {
		s.limited = true
		return false
	}
	c := s.chain[cur]
	d := s.n - 1 // depth of cur

	// Issuers of cur in the chain that a record names as the anchor.
	for j := 1; j < len(s.chain); j++ {
		if !s.isCandidate(cur, j) {
			continue
		}
		for i := range s.p.ta {
			t := &s.p.ta[i]
			if !s.matchTA(j, t.rec) {
				continue
			}
			if !s.chainSig(cur, j) {
				s.noteBadSig(t, d+1)
				continue
			}
			if s.accept(t, s.chain[j], d+1) {
				return true
			}
		}
	}

	// Issuers of cur among the certificates from DNS (2 0 0).
	for _, i := range s.p.dnsCert {
		t := &s.p.ta[i]
		if !bytes.Equal(t.cert.RawSubject, c.RawIssuer) || bytes.Equal(t.cert.RawSubjectPublicKeyInfo, s.leafSPKI) {
			continue
		}
		if !s.checkSig(c, t.key) {
			s.noteBadSig(t, d+1)
			continue
		}
		if s.accept(t, t.cert, d+1) {
			return true
		}
	}

	// A bare key from DNS (2 1 0) that signed cur, when no certificate
	// of the chain holding a matching key did: OpenSSL reports the depth
	// of the certificate it signed.
	for _, i := range s.p.dnsKey {
		t := &s.p.ta[i]
		if bytes.Equal(t.rec.Data, s.leafSPKI) || !compatible(c.SignatureAlgorithm, t.key.PublicKeyAlgorithm) {
			continue
		}
		if s.checkSig(c, t.key) {
			if s.accept(t, nil, d) {
				return true
			}
		}
	}

	// Deeper: through each issuer of cur that is not itself an anchor
	// (the path is truncated at the first anchor).
	if s.n == MaxChain {
		return false
	}
	for j := 1; j < len(s.chain); j++ {
		if !s.isCandidate(cur, j) || s.isAnchor(j) || !s.chainSig(cur, j) {
			continue
		}
		s.path[s.n], s.inPath = j, s.inPath|1<<j
		s.n++
		ok := s.walk(j)
		s.n--
		s.inPath &^= 1 << j
		if ok {
			return true
		}
	}
	return false
}

// isCandidate reports whether chain[j] may issue chain[cur]: it is not on
// the path, its subject is cur's issuer name, and it does not hold the
// leaf's key (that would let an anchor match at depth 0 through a copy of
// the leaf).
func (s *search) isCandidate(cur, j int) bool {
	c := s.chain[j]
	return s.inPath&(1<<j) == 0 &&
		bytes.Equal(c.RawSubject, s.chain[cur].RawIssuer) &&
		!bytes.Equal(c.RawSubjectPublicKeyInfo, s.leafSPKI)
}

func (s *search) isAnchor(j int) bool {
	for i := range s.p.ta {
		if s.matchTA(j, s.p.ta[i].rec) {
			return true
		}
	}
	return false
}

// matchTA compares chain[j] with one DANE-TA(2) record.
func (s *search) matchTA(j int, r TLSA) bool {
	c := s.chain[j]
	dg := &s.dig[j]
	switch {
	case r.MatchingType == Full && r.Selector == Cert:
		return bytes.Equal(c.Raw, r.Data)
	case r.MatchingType == Full:
		return bytes.Equal(c.RawSubjectPublicKeyInfo, r.Data)
	case r.Selector == Cert && r.MatchingType == SHA256:
		if dg.have&needCert256 == 0 {
			dg.c256, dg.have = sha256.Sum256(c.Raw), dg.have|needCert256
		}
		return bytes.Equal(dg.c256[:], r.Data)
	case r.Selector == Cert:
		if dg.have&needCert512 == 0 {
			dg.c512, dg.have = sha512.Sum512(c.Raw), dg.have|needCert512
		}
		return bytes.Equal(dg.c512[:], r.Data)
	case r.MatchingType == SHA256:
		if dg.have&needSPKI256 == 0 {
			dg.s256, dg.have = sha256.Sum256(c.RawSubjectPublicKeyInfo), dg.have|needSPKI256
		}
		return bytes.Equal(dg.s256[:], r.Data)
	default:
		if dg.have&needSPKI512 == 0 {
			dg.s512, dg.have = sha512.Sum512(c.RawSubjectPublicKeyInfo), dg.have|needSPKI512
		}
		return bytes.Equal(dg.s512[:], r.Data)
	}
}

// chainSig reports whether chain[parent]'s key signed chain[child].
func (s *search) chainSig(child, parent int) bool {
	if v := s.sig[child][parent]; v != 0 {
		return v > 0
	}
	if s.sigBudget <= 0 {
		s.limited = true
		return false // not memoized: the check did not run
	}
	p := s.chain[parent]
	if !mayIssue(p) {
		// Only acceptable as a key-only SPKI(1) anchor; check the
		// signature with a shell so that p's own constraints, which
		// accept applies by role, do not interfere.
		p = keyShell(p.PublicKey)
	}
	ok := s.checkSig(s.chain[child], p)
	s.sig[child][parent] = -1
	if ok {
		s.sig[child][parent] = 1
	}
	return ok
}

// checkSig verifies child's signature with signer's public key, under
// x509's algorithm policy. signer is either a certificate that may issue
// (so CheckSignatureFrom's constraint checks pass) or a keyShell; whether
// the signer may act as an issuer on this path is accept's business.
func (s *search) checkSig(child, signer *x509.Certificate) bool {
	if s.sigBudget--; s.sigBudget < 0 {
		s.limited = true
		return false
	}
	return child.CheckSignatureFrom(signer) == nil
}

func (s *search) noteBadSig(t *taRec, depth int) {
	if s.badSig == nil {
		e := newError(KindBadSignature, "trust anchor did not sign the certificate below it")
		e.Record, e.Depth = recordCopy(t.rec), depth
		s.badSig = e
	}
}

// accept checks the path s.path[:s.n] under an anchor at taDepth: ta is
// the anchor certificate, or nil for a bare key. It reports whether the
// path is valid; otherwise it records the first failure.
func (s *search) accept(t *taRec, ta *x509.Certificate, taDepth int) bool {
	fail := func(k Kind, depth int, reason string) bool {
		if s.fail == nil {
			e := newError(k, reason)
			e.Record, e.Depth = recordCopy(t.rec), depth
			s.fail, s.failAt = e, Match{Record: t.rec, Depth: taDepth}
		}
		return false
	}
	for k := 0; k < s.n; k++ {
		c := s.chain[s.path[k]]
		if !validAt(c, s.now) {
			return fail(KindExpired, k, validityReason(c, s.now))
		}
		if k == 0 {
			continue
		}
		if !mayIssue(c) {
			return fail(KindNotCA, k, "intermediate certificate may not sign certificates")
		}
		if exceedsPathLen(c, k-1) {
			return fail(KindPathLength, k, "path length constraint of an intermediate exceeded")
		}
	}
	if ta != nil {
		if t.rec.Selector == Cert {
			if !mayIssue(ta) {
				return fail(KindNotCA, taDepth, "trust anchor certificate may not sign certificates")
			}
			if exceedsPathLen(ta, taDepth-1) {
				return fail(KindPathLength, taDepth, "path length constraint of the trust anchor exceeded")
			}
		}
		if bytes.Equal(ta.RawSubject, ta.RawIssuer) && !validAt(ta, s.now) {
			return fail(KindExpired, taDepth, "self-issued trust anchor: "+validityReason(ta, s.now))
		}
	}
	s.found = Match{Record: t.rec, Depth: taDepth}
	return true
}

func validAt(c *x509.Certificate, now time.Time) bool {
	return !now.Before(c.NotBefore) && !now.After(c.NotAfter)
}

func validityReason(c *x509.Certificate, now time.Time) string {
	if now.Before(c.NotBefore) {
		return "certificate not yet valid"
	}
	return "certificate expired"
}

// mayIssue applies RFC 5280 4.2.1.9 and 4.2.1.3 as x509's
// CheckSignatureFrom does: a v3 certificate needs basicConstraints with
// cA set, and a keyUsage extension, if present, must allow keyCertSign.
func mayIssue(c *x509.Certificate) bool {
	if c.Version == 3 && !c.BasicConstraintsValid || c.BasicConstraintsValid && !c.IsCA {
		return false
	}
	return c.KeyUsage == 0 || c.KeyUsage&x509.KeyUsageCertSign != 0
}

// exceedsPathLen reports whether c's pathLenConstraint (RFC 5280
// 4.2.1.9) forbids the given number of intermediates below it.
func exceedsPathLen(c *x509.Certificate, below int) bool {
	if !c.BasicConstraintsValid || c.MaxPathLen < 0 || c.MaxPathLen == 0 && !c.MaxPathLenZero {
		return false
	}
	return below > c.MaxPathLen
}

// compatible reports whether a signature algorithm can have been made by
// a key of the given type, so that hopeless checks are skipped.
func compatible(sig x509.SignatureAlgorithm, key x509.PublicKeyAlgorithm) bool {
	switch sig {
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
		x509.SHA1WithRSA, x509.MD5WithRSA, x509.MD2WithRSA:
		return key == x509.RSA
	case x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512, x509.ECDSAWithSHA1:
		return key == x509.ECDSA
	case x509.PureEd25519:
		return key == x509.Ed25519
	}
	return false
}
