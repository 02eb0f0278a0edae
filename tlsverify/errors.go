package tlsverify

import (
	"strconv"
	"strings"

	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/tlsrpt"
)

// Kind says why a verification failed. Each Kind maps to one TLS-RPT
// result type (RFC 8460 4.3), recorded in Error.Result.
type Kind uint8

const (
	// KindNoUsableRecords: the DANE value holds no usable TLSA record
	// (all are PKIX usages, malformed, or disabled by DigestPreference).
	// RFC 7672 2.2 says such a server gets unauthenticated TLS; a caller
	// that nevertheless asks for verification gets this error, reported
	// as tlsrpt.TLSAInvalid ("none of the records in the RRset were found
	// to be valid").
	KindNoUsableRecords Kind = iota + 1
	// KindNoCertificate: the server sent no certificate
	// (tlsrpt.ValidationFailure).
	KindNoCertificate
	// KindNoMatch: no usable TLSA record matched the chain
	// (tlsrpt.ValidationFailure).
	KindNoMatch
	// KindBadSignature: a DANE-TA(2) record matched a certificate, or a
	// trust anchor from DNS names the issuer, but a signature on the path
	// from the leaf to it does not verify (tlsrpt.CertificateNotTrusted).
	KindBadSignature
	// KindNotCA: an intermediate (or a Cert(0) trust anchor) is not
	// allowed to sign certificates (basicConstraints/keyUsage, RFC 5280
	// 4.2.1.9) (tlsrpt.CertificateNotTrusted).
	KindNotCA
	// KindPathLength: a basicConstraints path length limit of an
	// intermediate or a Cert(0) trust anchor is exceeded
	// (tlsrpt.CertificateNotTrusted).
	KindPathLength
	// KindExpired: a certificate that must be within its validity period
	// is expired or not yet valid (tlsrpt.CertificateExpired).
	KindExpired
	// KindNameMismatch: the certificate names none of the reference
	// identifiers (tlsrpt.CertificateHostMismatch).
	KindNameMismatch
	// KindUntrusted: WebPKI verification found no chain to a trusted root,
	// or the chain violates a constraint, or another certificate error
	// (an unhandled critical extension, an insecure signature algorithm)
	// (tlsrpt.CertificateNotTrusted, RFC 8460 4.3.1).
	KindUntrusted
	// KindPKIX: WebPKI verification failed with an error tlsrpt.Classify
	// does not recognise (tlsrpt.ValidationFailure).
	KindPKIX
	// KindLimit: the work limit for building a chain was reached before a
	// path was found (tlsrpt.ValidationFailure).
	KindLimit
	// KindConfig: the verifier is not usable as configured, for example a
	// PKIX verifier without a Host or a nil verifier passed to Config
	// (tlsrpt.ValidationFailure).
	KindConfig
)

var kindNames = [...]string{
	KindNoUsableRecords: "no-usable-records",
	KindNoCertificate:   "no-certificate",
	KindNoMatch:         "no-match",
	KindBadSignature:    "bad-signature",
	KindNotCA:           "not-ca",
	KindPathLength:      "path-length",
	KindExpired:         "expired",
	KindNameMismatch:    "name-mismatch",
	KindUntrusted:       "untrusted",
	KindPKIX:            "pkix",
	KindLimit:           "limit",
	KindConfig:          "config",
}

// String returns a short token such as "no-match" or "expired"; the test
// vectors in testdata use these tokens.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Result returns the TLS-RPT result type for k.
func (k Kind) Result() tlsrpt.ResultType {
	switch k {
	case KindNoUsableRecords:
		return tlsrpt.TLSAInvalid
	case KindBadSignature, KindNotCA, KindPathLength, KindUntrusted:
		return tlsrpt.CertificateNotTrusted
	case KindExpired:
		return tlsrpt.CertificateExpired
	case KindNameMismatch:
		return tlsrpt.CertificateHostMismatch
	default:
		return tlsrpt.ValidationFailure
	}
}

// Error is a verification failure. Match it with errors.As:
//
//	var e *tlsverify.Error
//	if errors.As(err, &e) { report(e.Result) }
type Error struct {
	// Kind says what failed.
	Kind Kind
	// Result is the TLS-RPT result type for the failure (Kind.Result).
	Result tlsrpt.ResultType
	// Record is the TLSA record involved, if any: the DANE-TA(2) record
	// that matched before a later check failed.
	Record *TLSA
	// Name is the reference identifier involved, if any (the primary one
	// for a name mismatch), in canonical form.
	Name string
	// Depth is the position in the verified path (leaf 0) of the
	// certificate involved, or -1.
	Depth int
	// Reason is a human-readable detail; never match on it.
	Reason string
	// Err is the underlying error, if any (for example an x509 error).
	Err error
}

func newError(k Kind, reason string) *Error {
	return &Error{Kind: k, Result: k.Result(), Depth: -1, Reason: reason}
}

// Error implements the error interface.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tlsverify: ")
	b.WriteString(e.Kind.String())
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(quote.Text(e.Reason))
	}
	if e.Record != nil {
		b.WriteString(" (TLSA ")
		b.WriteString(e.Record.short())
		b.WriteString(")")
	}
	if e.Name != "" {
		b.WriteString(" (name ")
		b.WriteString(quote.String(e.Name))
		b.WriteString(")")
	}
	if e.Depth >= 0 {
		b.WriteString(" (depth ")
		b.WriteString(strconv.Itoa(e.Depth))
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(quote.Err(e.Err))
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// TLSRPTResult returns e.Result. It makes *Error a tlsrpt.ResultError, so
// that tlsrpt.Classify reports the result the verifier decided.
func (e *Error) TLSRPTResult() tlsrpt.ResultType { return e.Result }

// ClassifyHandshakeError maps an error returned by a TLS handshake that
// used a Config from this package (or by DANE.Verify / PKIX.Verify) to a
// TLS-RPT result type: tlsrpt.Classify's answer (a *Error gives its
// Result, x509 errors from a crypto/tls that verified by itself give
// CertificateHostMismatch, CertificateExpired or CertificateNotTrusted,
// alerts give ValidationFailure), and tlsrpt.ValidationFailure, the
// "general failure" of RFC 8460 4.3.1, for anything else: err is known to
// come from a handshake.
//
// The last case includes a server certificate Go cannot parse. crypto/tls
// parses every certificate the server sends before VerifyConnection runs
// and aborts the handshake if one fails to parse, even when the only TLSA
// records are DANE-EE(3), which would not look beyond the leaf's bytes.
// crypto/tls reports this with an untyped error, so it cannot be told
// apart from other untyped handshake failures without matching error
// text, which this package never does; all of them map to
// ValidationFailure. This package never sets GODEBUG to relax parsing.
//
// A nil err gives "". Deciding that STARTTLS was not offered
// (StartTLSNotSupported) is the SMTP client's job, not this function's.
func ClassifyHandshakeError(err error) tlsrpt.ResultType {
	if err == nil {
		return ""
	}
	if rt := tlsrpt.Classify(err); rt != "" {
		return rt
	}
	return tlsrpt.ValidationFailure
}
