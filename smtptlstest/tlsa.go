package smtptlstest

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/miekg/dns"
)

// TLSA usages, selectors and matching types (RFC 6698 section 2.1, RFC
// 7218 acronyms), for readable tests.
const (
	PKIXTA = 0 // usage PKIX-TA: unusable in SMTP (RFC 7672 section 3.1.3)
	PKIXEE = 1 // usage PKIX-EE: unusable in SMTP
	DANETA = 2 // usage DANE-TA
	DANEEE = 3 // usage DANE-EE

	SelectorCert = 0 // selector Cert: the whole certificate
	SelectorSPKI = 1 // selector SPKI: the SubjectPublicKeyInfo

	MatchFull   = 0 // matching type Full: the data itself
	MatchSHA256 = 1 // matching type SHA2-256
	MatchSHA512 = 2 // matching type SHA2-512
)

// TLSA returns the TLSA record (RFC 6698) that associates cert with
// (usage, selector, matchingType). The header has type TLSA and class IN;
// the owner and TTL are left for the caller. For a selector or matching
// type RFC 6698 does not define, the data is computed as for selector 0
// or matching type 1, so that tests can build records a client must treat
// as unusable.
func TLSA(cert *x509.Certificate, usage, selector, matchingType uint8) *dns.TLSA {
	data := cert.Raw
	if selector == SelectorSPKI {
		data = cert.RawSubjectPublicKeyInfo
	}
	switch matchingType {
	case MatchFull:
	case MatchSHA512:
		d := sha512.Sum512(data)
		data = d[:]
	default:
		d := sha256.Sum256(data)
		data = d[:]
	}
	return &dns.TLSA{
		Hdr:          dns.RR_Header{Rrtype: dns.TypeTLSA, Class: dns.ClassINET},
		Usage:        usage,
		Selector:     selector,
		MatchingType: matchingType,
		Certificate:  hex.EncodeToString(data),
	}
}

// TLSARecord returns TLSA(cert, usage, selector, matchingType) as a
// zone-file line for Zone.Add, owned by owner as given: without a trailing
// dot it is relative to the zone it is added to ("_25._tcp.mx"), with one
// it is absolute ("_25._tcp.mx.example.com.").
func TLSARecord(owner string, cert *x509.Certificate, usage, selector, matchingType uint8) string {
	t := TLSA(cert, usage, selector, matchingType)
	return fmt.Sprintf("%s IN TLSA %d %d %d %s", owner, t.Usage, t.Selector, t.MatchingType, t.Certificate)
}
