package mtasts

import (
	"errors"
	"fmt"
	"strings"

	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/tlsrpt"
)

// ErrCacheMiss is returned by a Cache's Get when it holds no entry for the
// key. It is the only error a Cache returns that callers branch on.
var ErrCacheMiss = errors.New("mtasts: cache miss")

// Kind classifies an Error.
type Kind uint8

const (
	// KindUnknown is the zero value and never set by this package.
	KindUnknown Kind = iota
	// KindInvalidDomain: the caller passed something that is not a domain
	// name (an address literal, an empty label, an invalid U-label).
	KindInvalidDomain
	// KindCanceled: the caller's context ended.
	KindCanceled
	// KindDNS: the TXT lookup could not be completed. Err is the
	// resolver's error (usually a *resolver.Error).
	KindDNS
	// KindNoRecord: no TXT record starting with "v=STSv1" exists.
	KindNoRecord
	// KindMultipleRecords: more than one STS TXT record exists
	// (RFC 8461 3.1: no policy).
	KindMultipleRecords
	// KindRecordSyntax: the STS TXT record breaks the RFC 8461 3.1 ABNF.
	KindRecordSyntax
	// KindNetwork: the policy host could not be reached (name resolution,
	// connection, TLS handshake other than certificate validation).
	KindNetwork
	// KindTimeout: the fetch did not complete within its time budget.
	KindTimeout
	// KindCertificate: the policy host's certificate is not valid under
	// WebPKI for mta-sts.<domain> (RFC 8461 3.3).
	KindCertificate
	// KindTLSVersion: the connection used a TLS version below 1.2.
	KindTLSVersion
	// KindRedirect: the server answered with a 3xx redirect, which
	// RFC 8461 3.3 forbids following.
	KindRedirect
	// KindHTTPStatus: the server answered with a status other than 200.
	KindHTTPStatus
	// KindContentType: the media type is not text/plain (RFC 8461 3.2).
	KindContentType
	// KindBodyTooLarge: the policy body exceeds MaxPolicySize.
	KindBodyTooLarge
	// KindPolicySyntax: the policy body breaks the RFC 8461 3.2 ABNF or
	// its rules (missing or invalid version, mode, max_age or mx).
	KindPolicySyntax
)

var kindNames = [...]string{
	KindUnknown:         "unknown",
	KindInvalidDomain:   "invalid domain",
	KindCanceled:        "canceled",
	KindDNS:             "dns lookup failed",
	KindNoRecord:        "no sts record",
	KindMultipleRecords: "multiple sts records",
	KindRecordSyntax:    "invalid sts record",
	KindNetwork:         "network error",
	KindTimeout:         "timeout",
	KindCertificate:     "certificate not valid",
	KindTLSVersion:      "tls version too old",
	KindRedirect:        "redirect refused",
	KindHTTPStatus:      "http status",
	KindContentType:     "content type",
	KindBodyTooLarge:    "policy too large",
	KindPolicySyntax:    "invalid policy",
}

// String returns a short lowercase description of the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error reports why a record, a policy or a fetch could not be used.
type Error struct {
	// Kind classifies the failure.
	Kind Kind
	// Domain is the policy domain (lowercase A-labels), when known.
	Domain string
	// Result is the TLS-RPT result type (RFC 8460 4.3.2.1) a sender
	// reports for this failure: tlsrpt.STSPolicyFetchError,
	// tlsrpt.STSPolicyInvalid or tlsrpt.STSWebPKIInvalid. It is empty for
	// failures that are not reportable (a missing or broken TXT record means
	// "no policy", a misuse is the caller's).
	Result tlsrpt.ResultType
	// StatusCode is the HTTP status for KindHTTPStatus and KindRedirect.
	StatusCode int
	// Line is the 1-based line of the policy body at fault for
	// KindPolicySyntax, or 0.
	Line int
	// Reason is a human-readable explanation, fit for logs and for the
	// additional-information of a TLS-RPT failure.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mtasts: ")
	if e.Domain != "" {
		b.WriteString(quote.Name(e.Domain))
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " %d", e.StatusCode)
	}
	if e.Line != 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(quote.Text(e.Reason))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(quote.Err(e.Err))
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }
