package dnssec

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/quote"
)

// This file holds the signature side of validation: which algorithms and
// digests count as supported, how RRsets and their RRSIGs are grouped out
// of a message, and the bounded verification of one RRset against the
// validated keys of its zone (RFC 4035 5.3).

// algSupported reports whether RRSIGs and DNSKEYs of algorithm alg are
// validated. RFC 8624 3.1 keeps RSASHA1 (5) and RSASHA1-NSEC3-SHA1 (7) as
// MUST-validate; 8 and 13 are MUST, 10, 14 and 15 are validated because
// miekg/dns verifies them. Ed448 (16) is not: miekg/dns returns ErrAlg for
// it, so a zone signed only with Ed448 is Insecure (RFC 4035 5.2), never
// Bogus. DSA (3, 6), GOST (12) and unassigned numbers are unsupported.
func algSupported(alg uint8) bool {
	switch alg {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512,
		dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519:
		return true
	}
	return false
}

// digestSupported reports whether DS digest type t is computed: SHA-1
// (1), SHA-256 (2) and SHA-384 (4) (RFC 4034, 4509, 6605).
func digestSupported(t uint8) bool {
	switch t {
	case dns.SHA1, dns.SHA256, dns.SHA384:
		return true
	}
	return false
}

// isRSA reports whether alg is an RSA algorithm.
func isRSA(alg uint8) bool {
	switch alg {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512:
		return true
	}
	return false
}

// minRSABits is the smallest RSA modulus crypto/rsa verifies with
// (Go 1.24 and later refuse smaller keys unless GODEBUG=rsa1024min=0).
// A key below it cannot be used, which validators treat like an
// unsupported algorithm.
const minRSABits = 1024

// rsaBits returns the modulus size in bits of an RSA DNSKEY (RFC 3110
// 2), or 0 when the key does not parse.
func rsaBits(k *dns.DNSKEY) int {
	buf, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil || len(buf) < 3 {
		return 0
	}
	explen, off := int(buf[0]), 1
	if explen == 0 {
		explen, off = int(buf[1])<<8|int(buf[2]), 3
	}
	mod := buf[min(off+explen, len(buf)):]
	for len(mod) > 0 && mod[0] == 0 {
		mod = mod[1:]
	}
	if len(mod) == 0 {
		return 0
	}
	bits := (len(mod) - 1) * 8
	for b := mod[0]; b != 0; b >>= 1 {
		bits++
	}
	return bits
}

// keyUnusable reports why a key of a supported algorithm cannot be
// used, or "" when it can.
func keyUnusable(k *dns.DNSKEY) string {
	if isRSA(k.Algorithm) {
		if bits := rsaBits(k); bits < minRSABits {
			return fmt.Sprintf("RSA key %d of %s has %d bits, fewer than %d", k.KeyTag(), k.Hdr.Name, bits, minRSABits)
		}
	}
	return ""
}

// zoneKey reports whether k may verify signatures at all: protocol 3,
// the Zone Key bit set (RFC 4034 2.1.1) and not revoked (RFC 5011 2.1: a
// revoked key is invalid for every purpose but its own revocation).
func zoneKey(k *dns.DNSKEY) bool {
	return k.Protocol == 3 && k.Flags&dns.ZONE != 0 && k.Flags&dns.REVOKE == 0
}

// rrset is one RRset of a message section with the RRSIGs covering it.
// Its owner names are in lower case: a record whose owner name is not is
// a copy with the name lowercased, the others are the message's own
// records. Neither is ever modified (messages may be shared between
// lookups): whoever changes a record, such as the answer's TTL cap,
// copies it first.
type rrset struct {
	name   string
	rrtype uint16
	rrs    []dns.RR
	sigs   []*dns.RRSIG
}

// group splits a section into RRsets of class IN, attaching each
// RRSIG to the RRset of its owner and Type Covered. RRSIGs that cover
// nothing in the section are dropped. Order of first appearance is kept.
func group(section []dns.RR) []*rrset {
	type key struct {
		name   string
		rrtype uint16
	}
	var sets []*rrset
	index := map[key]*rrset{}
	var sigs []*dns.RRSIG
	for _, rr := range section {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			continue
		}
		if sig, ok := rr.(*dns.RRSIG); ok {
			sigs = append(sigs, sig)
			continue
		}
		if h.Rrtype == dns.TypeOPT {
			continue
		}
		c := rr
		if name := lower(h.Name); name != h.Name {
			c = dns.Copy(rr)
			c.Header().Name = name
		}
		k := key{c.Header().Name, h.Rrtype}
		s := index[k]
		if s == nil {
			s = &rrset{name: k.name, rrtype: k.rrtype}
			index[k] = s
			sets = append(sets, s)
		}
		// RFC 2181 5: an RRset has no duplicate records.
		dup := false
		for _, x := range s.rrs {
			if dns.IsDuplicate(x, c) {
				dup = true
				break
			}
		}
		if !dup {
			s.rrs = append(s.rrs, c)
		}
	}
	for _, sig := range sigs {
		if s := index[key{lower(sig.Hdr.Name), sig.TypeCovered}]; s != nil {
			s.sigs = append(s.sigs, sig)
		}
	}
	return sets
}

// find returns the RRset of type t owned by name, or nil.
func find(sets []*rrset, name string, t uint16) *rrset {
	for _, s := range sets {
		if s.rrtype == t && s.name == name {
			return s
		}
	}
	return nil
}

// minTTL returns the smallest TTL of rrs.
func minTTL(rrs []dns.RR) uint32 {
	ttl := uint32(maxTTL)
	for _, rr := range rrs {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return ttl
}

// maxTTL caps every TTL the validator hands out or caches: one day,
// as validating resolvers commonly cap key and answer TTLs.
const maxTTL = 86400

// sigTime returns the inception and expiration of sig as times near
// now, in serial number arithmetic (RFC 4034 3.1.5, RFC 1982): the 32-bit
// fields wrap every 136 years.
func sigTime(sig *dns.RRSIG, now time.Time) (inception, expiration time.Time) {
	adj := func(v uint32) time.Time {
		d := int64(int32(v - uint32(now.Unix())))
		return now.Add(time.Duration(d) * time.Second)
	}
	return adj(sig.Inception), adj(sig.Expiration)
}

// rrsetResult is the outcome of validating one RRset.
type rrsetResult struct {
	sec Security
	// ttl is the capped TTL (RFC 4035 5.3.3) in seconds.
	ttl uint32
	// zone is the signer zone (for a Secure RRset) or the insecure zone.
	zone string
	// wildcard is the closest encloser ("*." removed) when the RRset was
	// synthesized from a wildcard (RFC 4035 5.3.4); "" otherwise.
	wildcard string
	// why and ede say why an Insecure RRset is Insecure.
	why string
	ede uint16
}

// Signature time skew. RFC 4035 5.3.1 requires "the validator's notion
// of the current time MUST be less than or equal to the time listed in
// the RRSIG RR's Expiration field" and "greater than or equal to the
// time listed in the RRSIG RR's Inception field". A host whose clock is
// a few minutes off would then turn fresh signatures (signers commonly
// backdate inception by an hour or less) or signatures at the end of
// their life Bogus. As unbound does (val-sig-skew-min, val-sig-skew-max:
// 10% of the validity period, by default bounded to [1 h, 24 h]), the
// period is widened on both sides by a tenth of its length, but within
// the tighter bounds [minSkew, maxSkew]: for a DANE client an expired
// signature is a window for replaying a withdrawn TLSA record, so the
// allowance stays small. A period whose expiration precedes its
// inception is never valid.
const (
	minSkew = 5 * time.Minute
	maxSkew = time.Hour
)

// sigValid reports whether now lies in the validity period of sig,
// widened by the skew; when not, expired says on which side it lies.
func sigValid(sig *dns.RRSIG, now time.Time) (ok, expired bool) {
	inc, exp := sigTime(sig, now)
	if exp.Before(inc) {
		return false, now.After(exp)
	}
	skew := min(max(exp.Sub(inc)/10, minSkew), maxSkew)
	switch {
	case now.After(exp.Add(skew)):
		return false, true
	case now.Before(inc.Add(-skew)):
		return false, false
	}
	return true, false
}

// verifyCrypto runs the signature check itself (verifyRRSIG: what
// miekg/dns's RRSIG.Verify checks, the cryptography plus consistency and
// a suffix test on the signer); callers check the signer, labels and
// validity period first. A panic on hostile input is turned into an
// error.
func verifyCrypto(sig *dns.RRSIG, k *dns.DNSKEY, rrs []dns.RR) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("signature verification failed: %v", r)
		}
	}()
	return verifyRRSIG(sig, k, rrs)
}

// verifyWithKeys validates set with the keys of the secure zone z, under
// the KeyTrap limits (CVE-2023-50387): at most Limits.Signatures RRSIGs are
// tried, at most Limits.KeysPerTag keys per RRSIG, and every verification
// counts against the lookup's Limits.Verifications.
func (l *lookup) verifyWithKeys(s *rrset, z *zoneState) (rrsetResult, error) {
	owner := sigLabels(s.name)
	var (
		tried                                  int
		expired, future, noKey, bad, labelsBad bool
		unsupported                            bool
		lastErr                                error
	)
	for _, sig := range s.sigs {
		if lower(sig.SignerName) != z.name || sig.TypeCovered != s.rrtype {
			continue
		}
		if !algSupported(sig.Algorithm) {
			unsupported = true
			continue
		}
		// RFC 4035 5.3.1: Labels must not exceed the owner's label count.
		if int(sig.Labels) > owner {
			labelsBad = true
			continue
		}
		// The period is checked before any cryptography: verifyRRSIG,
		// like RRSIG.Verify, does not look at it (RFC 4035 5.3.1, with
		// the skew above).
		if ok, exp := sigValid(sig, l.now); !ok {
			if exp {
				expired = true
			} else {
				future = true
			}
			continue
		}
		keys := z.keysFor(sig.KeyTag, sig.Algorithm)
		if len(keys) == 0 {
			noKey = true
			continue
		}
		if tried >= l.lim.sigs {
			return rrsetResult{}, bogus(dns.ExtendedErrorCodeDNSBogus,
				"work limit: more than %d signatures tried for %s %s", l.lim.sigs, s.name, dns.TypeToString[s.rrtype])
		}
		tried++
		if len(keys) > l.lim.keysPerTag {
			return rrsetResult{}, bogus(dns.ExtendedErrorCodeDNSBogus,
				"work limit: %d keys of %s share key tag %d (more than %d)", len(keys), z.name, sig.KeyTag, l.lim.keysPerTag)
		}
		for _, k := range keys {
			if err := l.spendVerification(); err != nil {
				return rrsetResult{}, err
			}
			err := verifyCrypto(sig, k, s.rrs)
			if err == nil {
				return l.verified(s, sig, z.name), nil
			}
			bad, lastErr = true, err
		}
	}
	what := quote.String(s.name) + " " + dns.TypeToString[s.rrtype]
	switch {
	case bad:
		return rrsetResult{}, &Error{Kind: KindBogus, EDE: dns.ExtendedErrorCodeDNSBogus,
			Reason: fmt.Sprintf("RRSIG over %s by %s does not verify", what, quote.String(z.name)), Err: lastErr}
	case expired && !future:
		return rrsetResult{}, bogus(dns.ExtendedErrorCodeSignatureExpired, "RRSIG over %s by %s has expired", what, quote.String(z.name))
	case future && !expired:
		return rrsetResult{}, bogus(dns.ExtendedErrorCodeSignatureNotYetValid, "RRSIG over %s by %s is not yet valid", what, quote.String(z.name))
	case expired || future:
		return rrsetResult{}, bogus(dns.ExtendedErrorCodeDNSBogus, "no RRSIG over %s by %s is in its validity period", what, quote.String(z.name))
	case noKey:
		return rrsetResult{}, bogus(dns.ExtendedErrorCodeDNSKEYMissing, "no DNSKEY of %s matches the RRSIG over %s", quote.String(z.name), what)
	case labelsBad:
		return rrsetResult{}, bogus(dns.ExtendedErrorCodeDNSBogus, "RRSIG over %s has more labels than its owner", what)
	case unsupported:
		return rrsetResult{}, bogus(dns.ExtendedErrorCodeRRSIGsMissing, "RRSIGs over %s use only unsupported algorithms in a zone validated with supported ones", what)
	}
	return rrsetResult{}, bogus(dns.ExtendedErrorCodeRRSIGsMissing, "no RRSIG by %s over %s", quote.String(z.name), what)
}

// verified builds the result of a good signature: the TTL capped as RFC
// 4035 5.3.3 says (by the RRSIG's TTL, Original TTL and the time left
// until expiration) and the wildcard closest encloser when Labels is
// smaller than the owner's label count.
func (l *lookup) verified(s *rrset, sig *dns.RRSIG, zone string) rrsetResult {
	ttl := min(minTTL(s.rrs), sig.Hdr.Ttl, sig.OrigTtl)
	_, exp := sigTime(sig, l.now)
	if left := exp.Sub(l.now) / time.Second; left < time.Duration(ttl) {
		ttl = uint32(max(left, 0))
	}
	r := rrsetResult{sec: Secure, ttl: ttl, zone: zone}
	if int(sig.Labels) < sigLabels(s.name) {
		r.wildcard = suffix(s.name, int(sig.Labels))
	}
	return r
}

// dsDigest returns the digest of a DS record as octets.
func dsDigest(ds *dns.DS) []byte {
	b, err := hex.DecodeString(ds.Digest)
	if err != nil {
		return nil
	}
	return b
}

// dsMatches reports whether ds is the digest of k (RFC 4034 5.1.4:
// digest over the canonical owner name and the DNSKEY RDATA).
func dsMatches(ds *dns.DS, k *dns.DNSKEY) bool {
	if ds.KeyTag != k.KeyTag() || ds.Algorithm != k.Algorithm {
		return false
	}
	kd := k.ToDS(ds.DigestType)
	if kd == nil {
		return false
	}
	want := dsDigest(ds)
	return len(want) > 0 && bytes.Equal(dsDigest(kd), want)
}

// usableDS filters a DS set down to what can be checked: supported
// algorithm and digest; SHA-1 digests are dropped when a SHA-256 or
// SHA-384 digest exists (RFC 4509 3). An empty result means the zone has
// no supported authentication path: Insecure (RFC 4035 5.2, RFC 6840 5.2).
//
// ede is the Extended DNS Error code of an empty result (RFC 8914): 1
// (Unsupported DNSKEY Algorithm) when an algorithm was unsupported, else
// 2 (Unsupported DS Digest Type).
func usableDS(set []dns.RR) (usable []*dns.DS, why string, ede uint16) {
	strong := false
	var algs, digests []string
	for _, rr := range set {
		ds, ok := rr.(*dns.DS)
		if !ok {
			continue
		}
		switch {
		case !algSupported(ds.Algorithm):
			algs = append(algs, fmt.Sprint(ds.Algorithm))
		case !digestSupported(ds.DigestType):
			digests = append(digests, fmt.Sprint(ds.DigestType))
		default:
			usable = append(usable, ds)
			strong = strong || ds.DigestType != dns.SHA1
		}
	}
	if strong {
		kept := usable[:0]
		for _, ds := range usable {
			if ds.DigestType != dns.SHA1 {
				kept = append(kept, ds)
			}
		}
		usable = kept
	}
	if len(usable) == 0 {
		why = "no DS with a supported algorithm and digest"
		ede = dns.ExtendedErrorCodeUnsupportedDSDigestType
		if len(algs) > 0 {
			why += "; unsupported algorithms " + strings.Join(algs, ",")
			ede = dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm
		}
		if len(digests) > 0 {
			why += "; unsupported digest types " + strings.Join(digests, ",")
		}
	}
	return usable, why, ede
}

// bogus returns a Bogus lookup error.
func bogus(ede uint16, format string, args ...any) *Error {
	return &Error{Kind: KindBogus, EDE: ede, Reason: fmt.Sprintf(format, args...)}
}
