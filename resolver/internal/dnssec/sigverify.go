package dnssec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// This file holds the signature check of one RRset (RFC 4034 3.1.8.1,
// 6; RFC 4035 5.3). It computes what miekg/dns's RRSIG.Verify computes,
// without the per-call costs of that function: two 4 KiB buffers (the
// signed data and the key's wire form for its key tag), a copy of every
// record and a base64 decoding into fresh buffers. Records whose canonical
// form needs more than the packed wire form (an owner name, signer name or
// RDATA domain name with upper case letters or escapes) are handed to
// RRSIG.Verify, which rewrites them; the validator lowercases owner names,
// so that is rare.

// maxSigBytes bounds a decoded signature: RSA-4096 is 512 octets, and
// larger keys are refused by crypto/rsa anyway.
const maxSigBytes = 1024

// verifyRRSIG checks sig over rrs with k, as RRSIG.Verify does: the same
// consistency checks (an RRset, of the covered type, owned by the RRSIG's
// owner, no fewer labels than the RRSIG says, under the signer; the key's
// tag, algorithm, class, owner, protocol and zone flag), then the
// signature over the canonical signed data. It does not check the
// validity period (sigValid does). Its errors are miekg/dns's: ErrRRset,
// ErrKey, ErrAlg, ErrSig.
func verifyRRSIG(sig *dns.RRSIG, k *dns.DNSKEY, rrs []dns.RR) error {
	if !dns.IsRRset(rrs) {
		return dns.ErrRRset
	}
	if sig.Hdr.Class != k.Hdr.Class || sig.Algorithm != k.Algorithm || k.Protocol != 3 || k.Flags&dns.ZONE == 0 {
		return dns.ErrKey
	}
	signer := sig.SignerName
	if !strings.EqualFold(dns.Fqdn(signer), dns.Fqdn(k.Hdr.Name)) {
		return dns.ErrKey
	}
	h0 := rrs[0].Header()
	if h0.Class != sig.Hdr.Class || h0.Rrtype != sig.TypeCovered ||
		uint8(dns.CountLabel(h0.Name)) < sig.Labels ||
		!strings.EqualFold(h0.Name, sig.Hdr.Name) ||
		!strings.HasSuffix(dns.CanonicalName(h0.Name), dns.CanonicalName(signer)) {
		return dns.ErrRRset
	}
	var keyBuf [maxSigBytes]byte
	key, ok := decodeBase64(keyBuf[:], k.PublicKey)
	if !ok {
		return dns.ErrKey
	}
	if keyTag(k, key) != sig.KeyTag {
		return dns.ErrKey
	}
	var sigBuf [maxSigBytes]byte
	sigBytes, ok := decodeBase64(sigBuf[:], sig.Signature)
	if !ok {
		// RRSIG.Verify would check an empty signature and fail.
		return dns.ErrSig
	}
	data, ok := signedData(sig, rrs)
	if !ok {
		return sig.Verify(k, rrs)
	}
	return checkSignature(sig.Algorithm, key, sigBytes, data)
}

// decodeBase64 decodes s into buf, or reports false when s is not valid
// standard base64 (padding included, as miekg/dns writes it) or does not
// fit buf. White space is not expected: miekg/dns removes it when it
// reads presentation format and never puts it in.
func decodeBase64(buf []byte, s string) ([]byte, bool) {
	if base64.StdEncoding.DecodedLen(len(s)) > len(buf) {
		return nil, false
	}
	n, err := base64.StdEncoding.Decode(buf, []byte(s))
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

// keyTag computes the key tag of k (RFC 4034 appendix B) from its decoded
// public key, without packing the record.
func keyTag(k *dns.DNSKEY, key []byte) uint16 {
	var ac uint32
	var hdr [4]byte
	binary.BigEndian.PutUint16(hdr[:], k.Flags)
	hdr[2], hdr[3] = k.Protocol, k.Algorithm
	add := func(i int, b byte) {
		if i&1 == 0 {
			ac += uint32(b) << 8
		} else {
			ac += uint32(b)
		}
	}
	for i, b := range hdr {
		add(i, b)
	}
	for i, b := range key {
		add(i+len(hdr), b)
	}
	ac += ac >> 16 & 0xffff
	return uint16(ac & 0xffff)
}

// signedData returns the data an RRSIG signs (RFC 4034 3.1.8.1): the
// RRSIG RDATA without the signature, the signer name in canonical form,
// then the records in canonical form (RFC 4034 6.2: owner name in lower
// case, the wildcard owner when the RRSIG's labels say so, the Original
// TTL) and canonical order (6.3: by RDATA, duplicates once). It reports
// false when a name would need rewriting (see the top of this file) or a
// record does not pack; the caller then uses RRSIG.Verify.
func signedData(sig *dns.RRSIG, rrs []dns.RR) ([]byte, bool) {
	labels := dns.CountLabel(rrs[0].Header().Name)
	if !canonicalName(sig.SignerName) || !canonicalName(rrs[0].Header().Name) ||
		sig.Labels == 0 && labels > 0 {
		// A zero Labels field over a non-root owner makes RRSIG.Verify
		// build the owner "*..", which does not pack: leave it the
		// error.
		return nil, false
	}
	for _, rr := range rrs {
		if !canonicalRDATANames(rr) {
			return nil, false
		}
	}
	// The records in wire form, each with the owner name as packed.
	size := 0
	for _, rr := range rrs {
		size += dns.Len(rr)
	}
	// Packed as the answer section of a message without compression:
	// dns.Msg packing leaves the records alone, where dns.PackRR writes
	// each record's Rdlength, a data race on records that several
	// lookups share (a cached or single-flighted message).
	m := dns.Msg{Answer: rrs}
	wire, err := m.PackBuffer(make([]byte, size+64+12))
	if err != nil {
		return nil, false
	}
	type span struct{ start, rdata, end int }
	var spansBuf [16]span
	spans := spansBuf[:0]
	off := 12 // the message header; no question
	for range rrs {
		n := nameLen(wire[off:])
		if n < 0 || off+n+10 > len(wire) {
			return nil, false
		}
		rdata := off + n + 10
		end := rdata + int(binary.BigEndian.Uint16(wire[rdata-2:rdata]))
		if end > len(wire) {
			return nil, false
		}
		spans = append(spans, span{off, rdata, end})
		off = end
	}
	slices.SortFunc(spans, func(a, b span) int { return bytes.Compare(wire[a.rdata:a.end], wire[b.rdata:b.end]) })

	// The owner name every record is signed under: lower case (already,
	// canonicalName checked), or "*." and the rightmost Labels labels
	// for a wildcard expansion (RFC 4035 5.3.2).
	first := spans[0]
	owner := wire[first.start : first.rdata-10]
	if labels > int(sig.Labels) {
		for range labels - int(sig.Labels) {
			owner = owner[1+int(owner[0]):]
		}
		owner = append([]byte{1, '*'}, owner...)
	}

	out := make([]byte, 0, 18+len(sig.SignerName)+2+len(spans)*(len(owner)+10)+size)
	out = binary.BigEndian.AppendUint16(out, sig.TypeCovered)
	out = append(out, sig.Algorithm, sig.Labels)
	out = binary.BigEndian.AppendUint32(out, sig.OrigTtl)
	out = binary.BigEndian.AppendUint32(out, sig.Expiration)
	out = binary.BigEndian.AppendUint32(out, sig.Inception)
	out = binary.BigEndian.AppendUint16(out, sig.KeyTag)
	var signerBuf [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(sig.SignerName), signerBuf[:], 0, nil, false)
	if err != nil {
		return nil, false
	}
	out = append(out, signerBuf[:n]...)
	for i, s := range spans {
		if i > 0 && bytes.Equal(wire[s.rdata:s.end], wire[spans[i-1].rdata:spans[i-1].end]) {
			continue // RFC 4034 6.3: duplicates are signed once
		}
		out = append(out, owner...)
		// Type and class as packed, then the Original TTL (RFC 4034
		// 6.2 item 5), then RDLENGTH and RDATA as packed.
		out = append(out, wire[s.rdata-10:s.rdata-6]...)
		out = binary.BigEndian.AppendUint32(out, sig.OrigTtl)
		out = append(out, wire[s.rdata-2:s.end]...)
	}
	return out, true
}

// nameLen returns the length of the uncompressed wire name at the start
// of b, or -1.
func nameLen(b []byte) int {
	for i := 0; i < len(b); {
		n := int(b[i])
		switch {
		case n == 0:
			return i + 1
		case n > 63:
			return -1
		}
		i += 1 + n
	}
	return -1
}

// canonicalName reports whether name packs to its canonical wire form as
// it is: no upper case letter, no escape.
func canonicalName(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' || c == '\\' {
			return false
		}
	}
	return true
}

// canonicalRDATANames reports whether the domain names in rr's RDATA that
// RFC 4034 6.2 (as miekg/dns applies it: not NSEC's, RFC 6840 5.1) puts
// in lower case are lower case already. Names of other record types are
// signed as they are.
func canonicalRDATANames(rr dns.RR) bool {
	switch x := rr.(type) {
	case *dns.NS:
		return canonicalName(x.Ns)
	case *dns.MD:
		return canonicalName(x.Md)
	case *dns.MF:
		return canonicalName(x.Mf)
	case *dns.CNAME:
		return canonicalName(x.Target)
	case *dns.SOA:
		return canonicalName(x.Ns) && canonicalName(x.Mbox)
	case *dns.MB:
		return canonicalName(x.Mb)
	case *dns.MG:
		return canonicalName(x.Mg)
	case *dns.MR:
		return canonicalName(x.Mr)
	case *dns.PTR:
		return canonicalName(x.Ptr)
	case *dns.MINFO:
		return canonicalName(x.Rmail) && canonicalName(x.Email)
	case *dns.MX:
		return canonicalName(x.Mx)
	case *dns.RP:
		return canonicalName(x.Mbox) && canonicalName(x.Txt)
	case *dns.AFSDB:
		return canonicalName(x.Hostname)
	case *dns.RT:
		return canonicalName(x.Host)
	case *dns.SIG:
		return canonicalName(x.SignerName)
	case *dns.PX:
		return canonicalName(x.Map822) && canonicalName(x.Mapx400)
	case *dns.NAPTR:
		return canonicalName(x.Replacement)
	case *dns.KX:
		return canonicalName(x.Exchanger)
	case *dns.SRV:
		return canonicalName(x.Target)
	case *dns.DNAME:
		return canonicalName(x.Target)
	}
	return true
}

// checkSignature verifies sigBytes over data with the public key key
// (DNSKEY public key field, decoded) of algorithm alg: RSA (RFC 3110,
// 5702), ECDSA (RFC 6605) or Ed25519 (RFC 8080). Keys are decoded as
// miekg/dns decodes them, with the same limits.
func checkSignature(alg uint8, key, sigBytes, data []byte) error {
	switch alg {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512:
		pub := rsaKey(key)
		if pub == nil {
			return dns.ErrKey
		}
		var h crypto.Hash
		var sum []byte
		switch alg {
		case dns.RSASHA256:
			s := sha256.Sum256(data)
			h, sum = crypto.SHA256, s[:]
		case dns.RSASHA512:
			s := sha512.Sum512(data)
			h, sum = crypto.SHA512, s[:]
		default:
			s := sha1.Sum(data)
			h, sum = crypto.SHA1, s[:]
		}
		return rsa.VerifyPKCS1v15(pub, h, sum, sigBytes)
	case dns.ECDSAP256SHA256, dns.ECDSAP384SHA384:
		var curve elliptic.Curve
		var sum []byte
		if alg == dns.ECDSAP256SHA256 {
			if len(key) != 64 {
				return dns.ErrKey
			}
			s := sha256.Sum256(data)
			curve, sum = elliptic.P256(), s[:]
		} else {
			if len(key) != 96 {
				return dns.ErrKey
			}
			s := sha512.Sum384(data)
			curve, sum = elliptic.P384(), s[:]
		}
		// RFC 6605 4: the key is x then y; crypto/ecdsa takes the
		// uncompressed SEC 1 point, which checks that it is on the curve
		// (RRSIG.Verify would fail at the signature check instead).
		var point [1 + 96]byte
		point[0] = 4
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point[:1+copy(point[1:], key)])
		if err != nil {
			return dns.ErrKey
		}
		// RFC 6605 4: r then s, each half of the signature. ecdsa.Verify
		// would make big.Ints of them only to encode them in DER for
		// VerifyASN1.
		var derBuf [2 + 2*(3+sha512.Size384)]byte
		der, ok := ecdsaDER(derBuf[:0], sigBytes[:len(sigBytes)/2], sigBytes[len(sigBytes)/2:])
		if ok && ecdsa.VerifyASN1(pub, sum, der) {
			return nil
		}
		return dns.ErrSig
	case dns.ED25519:
		if len(key) != ed25519.PublicKeySize {
			return dns.ErrKey
		}
		if ed25519.Verify(ed25519.PublicKey(key), data, sigBytes) {
			return nil
		}
		return dns.ErrSig
	}
	return dns.ErrAlg
}

// ecdsaDER appends the DER encoding of the ECDSA signature (r, s) (a
// SEQUENCE of two INTEGERs, minimal, non-negative) to dst, as
// ecdsa.Verify encodes it. It reports false for a zero or over-long
// integer, which ecdsa.Verify refuses as well.
func ecdsaDER(dst, r, s []byte) ([]byte, bool) {
	r, s = bytes.TrimLeft(r, "\x00"), bytes.TrimLeft(s, "\x00")
	if len(r) == 0 || len(s) == 0 || len(r) > sha512.Size384 || len(s) > sha512.Size384 {
		return nil, false
	}
	intLen := func(b []byte) int { return len(b) + int(b[0]>>7) }
	dst = append(dst, 0x30, byte(2+intLen(r)+2+intLen(s)))
	for _, b := range [][]byte{r, s} {
		dst = append(dst, 0x02, byte(intLen(b)))
		if b[0]&0x80 != 0 {
			dst = append(dst, 0)
		}
		dst = append(dst, b...)
	}
	return dst, true
}

// rsaKey decodes an RSA public key in the DNSKEY format (RFC 3110 2) with
// miekg/dns's limits: an exponent of 1 to 4 octets without leading zero
// and at most 2^31-1, a modulus of 64 to 512 octets without leading zero.
func rsaKey(key []byte) *rsa.PublicKey {
	if len(key) < 1+1+64 {
		return nil
	}
	explen, keyoff := int(key[0]), 1
	if explen == 0 {
		explen, keyoff = int(key[1])<<8|int(key[2]), 3
	}
	if explen > 4 || explen == 0 || keyoff+explen >= len(key) || key[keyoff] == 0 {
		return nil
	}
	modoff := keyoff + explen
	modlen := len(key) - modoff
	if modlen < 64 || modlen > 512 || key[modoff] == 0 {
		return nil
	}
	var e uint64
	for _, b := range key[keyoff:modoff] {
		e = e<<8 | uint64(b)
	}
	if e > 1<<31-1 {
		return nil
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(key[modoff:]), E: int(e)}
}
