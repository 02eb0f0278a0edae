package tlsverify

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"strconv"
)

// Certificate usages (RFC 6698 2.1.1; mnemonics from RFC 7218).
const (
	// PKIXTA is PKIX-TA(0): unusable in SMTP (RFC 7672 3.1.3).
	PKIXTA uint8 = 0
	// PKIXEE is PKIX-EE(1): unusable in SMTP (RFC 7672 3.1.3).
	PKIXEE uint8 = 1
	// DANETA is DANE-TA(2): the record names a trust anchor that must
	// certify the server's certificate (RFC 7672 3.1.2).
	DANETA uint8 = 2
	// DANEEE is DANE-EE(3): the record names the server's certificate or
	// key itself (RFC 7672 3.1.1).
	DANEEE uint8 = 3
)

// Selectors (RFC 6698 2.1.2).
const (
	// Cert selects the whole DER certificate.
	Cert uint8 = 0
	// SPKI selects the DER SubjectPublicKeyInfo.
	SPKI uint8 = 1
)

// Matching types (RFC 6698 2.1.3).
const (
	// Full compares the selected DER bytes exactly.
	Full uint8 = 0
	// SHA256 compares the SHA-256 digest of the selected bytes.
	SHA256 uint8 = 1
	// SHA512 compares the SHA-512 digest of the selected bytes.
	SHA512 uint8 = 2
)

// TLSA is one TLSA record's RDATA (RFC 6698 2.1). Data holds the
// certificate association data as bytes, never as hex.
type TLSA struct {
	// Usage is the certificate usage (PKIXTA, PKIXEE, DANETA, DANEEE).
	Usage uint8
	// Selector says what is matched: the whole certificate (Cert) or its key (SPKI).
	Selector uint8
	// MatchingType says how: Full, SHA256 or SHA512.
	MatchingType uint8
	// Data is the certificate association data, as bytes.
	Data []byte
}

// String returns the record's presentation form, for example
// "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"
// (RFC 6698 2.2, lowercase hex).
func (r TLSA) String() string {
	b := make([]byte, 0, 12+2*len(r.Data))
	b = strconv.AppendUint(b, uint64(r.Usage), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(r.Selector), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(r.MatchingType), 10)
	if len(r.Data) > 0 {
		b = append(b, ' ')
		b = hex.AppendEncode(b, r.Data)
	}
	return string(b)
}

// short is String with the data cut to a prefix, for error messages.
func (r TLSA) short() string {
	if len(r.Data) <= 16 {
		return r.String()
	}
	s := TLSA{r.Usage, r.Selector, r.MatchingType, r.Data[:16]}.String()
	return s + "..."
}

// RecordStatus tells whether a TLSA record is usable for SMTP and, if
// not, why. RFC 7672 3.1.3 and RFC 6698 4.1: a client ignores unusable
// records; an RRset of only unusable records means "TLS without
// authentication" (RFC 7672 2.2).
type RecordStatus uint8

const (
	// RecordUsable: DANE-TA(2) or DANE-EE(3) with a known selector and
	// matching type and well-formed data.
	RecordUsable RecordStatus = iota
	// RecordPKIXUsage: usage PKIX-TA(0) or PKIX-EE(1), which SMTP clients
	// must not use (RFC 7672 3.1.3).
	RecordPKIXUsage
	// RecordUnknownUsage: a usage above 3.
	RecordUnknownUsage
	// RecordUnknownSelector: a selector above 1.
	RecordUnknownSelector
	// RecordUnknownMatchingType: a matching type above 2.
	RecordUnknownMatchingType
	// RecordBadDigestLength: a SHA-256 or SHA-512 record whose data is not
	// 32 or 64 bytes long; it can never match.
	RecordBadDigestLength
	// RecordBadFullData: Full(0) data that does not decode as what the
	// selector names (see TLSA.Status).
	RecordBadFullData
)

var recordStatusNames = [...]string{
	RecordUsable:              "usable",
	RecordPKIXUsage:           "pkix-usage",
	RecordUnknownUsage:        "unknown-usage",
	RecordUnknownSelector:     "unknown-selector",
	RecordUnknownMatchingType: "unknown-matching-type",
	RecordBadDigestLength:     "bad-digest-length",
	RecordBadFullData:         "bad-full-data",
}

// String returns a short token such as "usable" or "pkix-usage".
func (s RecordStatus) String() string {
	if int(s) < len(recordStatusNames) {
		return recordStatusNames[s]
	}
	return "RecordStatus(" + strconv.Itoa(int(s)) + ")"
}

// Usable reports whether r can be used to authenticate an SMTP server by
// a client that supports every matching type (Full, SHA256, SHA512). A
// client with a digest preference uses UsableWith.
func (r TLSA) Usable() bool { return r.Status() == RecordUsable }

// UsableWith reports whether a client whose digest preference is pref (as
// DANE.DigestPreference: nil or empty means SHA512 then SHA256) can use r
// to authenticate a server: r is Usable and its matching type is Full or
// one that pref lists. A record of a matching type the client does not
// support is unusable (RFC 6698 4.1, RFC 7671 9, RFC 7672 3.1.3), exactly
// like a record of an unknown matching type.
func (r TLSA) UsableWith(pref []uint8) bool {
	if r.Status() != RecordUsable {
		return false
	}
	return r.MatchingType == Full || digestRank(pref, r.MatchingType) > 0
}

// UsableRecords returns the records of a secure TLSA RRset that a client
// with digest preference pref can use (UsableWith), among the first
// MaxRecords, in order. It is where usability is decided: dane.LookupWith
// sets the DANE level from it and a DANE verifier with the same
// DigestPreference uses exactly these records. Digest agility (RFC 7671
// 9) then ignores, per usage and selector, the digests weaker than the
// strongest present; it never ignores them all, so an RRset whose
// UsableRecords is empty, and only such an RRset, calls for TLS without
// authentication (RFC 7672 2.2), and a DANE value built from a non-empty
// result is Usable. The result shares the records' Data with rrset.
func UsableRecords(rrset []TLSA, pref []uint8) []TLSA {
	if len(rrset) > MaxRecords {
		rrset = rrset[:MaxRecords]
	}
	var out []TLSA
	for _, r := range rrset {
		if r.UsableWith(pref) {
			out = append(out, r)
		}
	}
	return out
}

// digestRank ranks digest matching type mt under pref: higher is
// stronger, 0 means unsupported (a type pref does not list, or anything
// but SHA256 and SHA512).
func digestRank(pref []uint8, mt uint8) int {
	if mt != SHA256 && mt != SHA512 {
		return 0
	}
	if len(pref) == 0 {
		if mt == SHA512 {
			return 2
		}
		return 1
	}
	for i, m := range pref {
		if m == mt {
			return len(pref) - i
		}
	}
	return 0
}

// Status classifies r. Full(0) data is decoded as follows:
//
//   - DANE-TA(2) Cert(0) must parse as an X.509 certificate
//     (x509.ParseCertificate) and DANE-TA(2) SPKI(1) as a public key
//     (x509.ParsePKIXPublicKey): such a trust anchor may have to verify a
//     signature, which needs the key.
//   - DANE-EE(3) Full(0) data is only compared byte for byte with what
//     the server sends, so it must merely be one well-formed DER
//     Certificate or SubjectPublicKeyInfo. It is not required to hold a
//     key type Go supports: crypto/tls accepts certificates with unknown
//     key algorithms, and DANE-EE(3) must not reject what it could match.
//
// Status does not depend on any DANE configuration; a digest preference
// can further disable whole matching types (UsableWith).
func (r TLSA) Status() RecordStatus {
	switch r.Usage {
	case DANETA, DANEEE:
	case PKIXTA, PKIXEE:
		return RecordPKIXUsage
	default:
		return RecordUnknownUsage
	}
	if r.Selector > SPKI {
		return RecordUnknownSelector
	}
	switch r.MatchingType {
	case SHA256:
		if len(r.Data) != 32 {
			return RecordBadDigestLength
		}
	case SHA512:
		if len(r.Data) != 64 {
			return RecordBadDigestLength
		}
	case Full:
		if !fullDataOK(r) {
			return RecordBadFullData
		}
	default:
		return RecordUnknownMatchingType
	}
	return RecordUsable
}

func fullDataOK(r TLSA) bool {
	if r.Usage == DANETA {
		if r.Selector == Cert {
			_, err := x509.ParseCertificate(r.Data)
			return err == nil
		}
		_, err := x509.ParsePKIXPublicKey(r.Data)
		return err == nil
	}
	if r.Selector == Cert {
		var c struct {
			TBS       asn1.RawValue
			Algorithm asn1.RawValue
			Signature asn1.BitString
		}
		rest, err := asn1.Unmarshal(r.Data, &c)
		return err == nil && len(rest) == 0
	}
	var k struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(r.Data, &k)
	return err == nil && len(rest) == 0
}
