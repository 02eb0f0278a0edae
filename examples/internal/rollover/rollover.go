// Package rollover names the TLSA rollover scheme an MX host publishes,
// judged against the certificate chain it presents, for the examples that
// connect to MX hosts (check, survey).
//
// A host whose TLSA RRset matches only the key in use breaks DANE
// delivery the moment that key changes, unless the new record was
// published (and its TTL had passed) first. RFC 7671 8.1 and RFC 7672's
// operational advice, as domain owners are told to apply it (internet.nl,
// the Postfix DANE documentation), are to publish at all times either a
// "3 1 1" record for the current key and one for the next key, or a
// "3 1 1" record for the current key and a "2 1 1" record for the CA
// that issues it.
package rollover

import (
	"crypto/x509"

	"github.com/smtptls/smtptls/tlsverify"
)

// Scheme is a TLSA rollover scheme.
type Scheme string

// The schemes Of tells apart.
const (
	// CurrentNext: a DANE-EE record matches the key in use and another
	// DANE-EE record does not (the next key, published ahead).
	CurrentNext Scheme = "current+next"
	// CurrentIssuer: a DANE-EE record matches the key in use and a
	// DANE-TA record matches a CA of the chain: a new key from the same
	// CA still matches.
	CurrentIssuer Scheme = "current+issuer"
	// IssuerOnly: only DANE-TA records match. A new leaf key is covered,
	// a change of CA (or of intermediate) is not.
	IssuerOnly Scheme = "issuer-only"
	// None: DANE-EE records match only the key in use (typically a single
	// "3 1 1" record): a key change breaks delivery until the record is
	// replaced and its TTL has passed.
	None Scheme = "none"
	// NoMatch: no usable record matches the chain presented; the host
	// fails DANE authentication now, whatever its scheme was meant to be.
	NoMatch Scheme = "no-match"
)

// Of classifies records, the usable TLSA records of a host (a
// dane.Policy's Records), against chain, the certificates the host
// presented (leaf first). names are the reference identifiers a DANE-TA
// match is checked against (the TLSA base domain first) and pref the
// digest preference the records were chosen with. Each record is judged
// alone, as if it were the only one published. When a record for the
// next key and one for the issuer are both present, CurrentIssuer is
// returned (it also survives the next key being replaced in turn).
func Of(records []tlsverify.TLSA, names []string, pref []uint8, chain []*x509.Certificate) Scheme {
	var eeCur, eeOther, ta bool
	for _, r := range records {
		v := &tlsverify.DANE{Records: []tlsverify.TLSA{r}, Names: names, DigestPreference: pref}
		_, err := v.VerifyChain(chain)
		switch {
		case r.Usage == tlsverify.DANEEE && err == nil:
			eeCur = true
		case r.Usage == tlsverify.DANEEE:
			eeOther = true
		case r.Usage == tlsverify.DANETA && err == nil:
			ta = true
		}
	}
	switch {
	case eeCur && ta:
		return CurrentIssuer
	case eeCur && eeOther:
		return CurrentNext
	case eeCur:
		return None
	case ta:
		return IssuerOnly
	}
	return NoMatch
}

// Advice is a one-line warning for a scheme that does not survive a key
// or CA change, or "" for the schemes domain owners are advised to use.
func Advice(s Scheme) string {
	switch s {
	case None:
		return `only the key in use has a TLSA record: a key change breaks DANE delivery; also publish "3 1 1" for the next key, or "2 1 1" for the issuing CA`
	case IssuerOnly:
		return `only the issuing CA has a TLSA record: a change of CA breaks DANE delivery; also publish "3 1 1" for the key in use`
	case NoMatch:
		return "no usable TLSA record matches the certificate presented"
	}
	return ""
}
