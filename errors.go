package smtptls

import (
	"errors"
	"fmt"

	"github.com/smtptls/smtptls/tlsrpt"
)

// Outcomes of Evaluate that callers branch on. Both are permanent: the
// message cannot be delivered to the domain.
var (
	// ErrNullMX: the domain publishes a null MX (RFC 7505): it accepts
	// no mail. Bounce with 556 5.1.10.
	ErrNullMX = errors.New("smtptls: domain accepts no mail (null MX, RFC 7505)")
	// ErrNoSuchDomain: the MX lookup said NXDOMAIN. Bounce.
	ErrNoSuchDomain = errors.New("smtptls: no such domain")
)

// ErrSTARTTLSNotOffered is what an MTA passes to Host.FailureResult (or
// wraps) when the server's EHLO response lacks STARTTLS.
var ErrSTARTTLSNotOffered = errors.New("smtptls: STARTTLS not offered")

// Kind says why a host or a decision failed.
type Kind uint8

const (
	// KindMXLookup: the MX lookup failed (defer the message).
	KindMXLookup Kind = iota + 1
	// KindHostLookup: a host's address or TLSA lookup failed; do not use
	// the host (RFC 7672 2.1.2).
	KindHostLookup
	// KindNotInPolicy: MTA-STS enforce, and the host does not match the
	// policy's mx patterns (RFC 8461 4.1).
	KindNotInPolicy
	// KindDANERequired: the operator demands DANE (dane-only) and the
	// host has no usable TLSA records.
	KindDANERequired
	// KindRequireTLS: the attempt carries REQUIRETLS (RFC 8689) and the
	// host does not meet its requirements (5.7.30).
	KindRequireTLS
	// KindVerify: the TLS session failed the host's authentication.
	KindVerify
	// KindInvalidDomain: the domain or host name is not a valid name.
	KindInvalidDomain
	// KindResolver: the start-up probe found a resolver that cannot
	// support DANE.
	KindResolver
	// KindCanceled: the caller's context ended before the decision was
	// complete (Err wraps ctx.Err()). Defer: a decision missing a part
	// (an MTA-STS policy, cached or not) must never be used in its place.
	KindCanceled
)

var kindNames = [...]string{
	KindMXLookup:      "mx lookup failed",
	KindHostLookup:    "host lookup failed",
	KindNotInPolicy:   "host not in MTA-STS policy",
	KindDANERequired:  "DANE required",
	KindRequireTLS:    "REQUIRETLS cannot be met",
	KindVerify:        "verification failed",
	KindInvalidDomain: "invalid domain",
	KindResolver:      "resolver unfit for DANE",
	KindCanceled:      "evaluation canceled",
}

// String returns a short description.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error describes why a decision, a host or a session failed.
type Error struct {
	// Kind says what went wrong.
	Kind Kind
	// Domain is the recipient (policy) domain; Host the MX host, if any.
	Domain, Host string
	// Result is the TLS-RPT result type to report, or "" when the failure
	// is not a TLS failure (for example an address lookup failure).
	Result tlsrpt.ResultType
	// Reason is a human-readable explanation.
	Reason string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := "smtptls: " + e.Domain
	if e.Host != "" {
		s += " via " + e.Host
	}
	s += ": " + e.Kind.String()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the MTA should retry later. Everything but
// KindInvalidDomain and KindRequireTLS is temporary: DNS and TLS failures
// pass, and RFC 8461 5 makes MTA-STS failures temporary.
func (e *Error) Temporary() bool {
	return e.Kind != KindInvalidDomain && e.Kind != KindRequireTLS
}

// EnhancedCode returns the RFC 3463 enhanced status code an MTA should use
// when this error ends delivery: 5.7.30 for REQUIRETLS (RFC 8689 5), 4.7.5
// for other TLS failures, 4.4.3 for DNS failures.
func (e *Error) EnhancedCode() string {
	switch e.Kind {
	case KindRequireTLS:
		return "5.7.30"
	case KindMXLookup, KindHostLookup, KindCanceled:
		return "4.4.3"
	case KindInvalidDomain:
		return "5.1.2"
	}
	return "4.7.5"
}
