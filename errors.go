package smtptls

import (
	"errors"
	"fmt"
	"strings"

	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/tlsrpt"
)

// Outcomes of Evaluate that callers branch on. Both are permanent: the
// message cannot be delivered to the domain. Evaluate returns them as a
// *Error that names the domain (KindNullMX, KindNoSuchDomain); match them
// with errors.Is, never with ==.
var (
	// ErrNullMX: the domain publishes a null MX (RFC 7505): it accepts
	// no mail. Bounce with 556 5.1.10.
	ErrNullMX = errors.New("smtptls: domain accepts no mail (null MX, RFC 7505)")
	// ErrNoSuchDomain: the MX lookup said NXDOMAIN. Bounce.
	ErrNoSuchDomain = errors.New("smtptls: no such domain")
)

// ErrSTARTTLSNotOffered matches (errors.Is) the error of
// Host.STARTTLSNotOffered, which an MTA uses when TLS is required and the
// server's EHLO response lacks STARTTLS. An MTA may also pass the
// sentinel itself (or wrap it) to Host.FailureResult.
var ErrSTARTTLSNotOffered = errors.New("smtptls: STARTTLS not offered")

// Kind says why a host or a decision failed.
type Kind uint8

const (
	// KindMXLookup: the MX lookup failed (defer the message).
	KindMXLookup Kind = iota + 1
	// KindHostLookup: a host's address or TLSA lookup failed, or its MX
	// target is not a host name (such as "192.0.2.44.", which is never
	// dialled as an address); do not use the host (RFC 7672 2.1.2).
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
	// KindNoSuchDomain: the MX lookup said NXDOMAIN: the domain does not
	// exist. Permanent (5.1.2). errors.Is(err, ErrNoSuchDomain) holds.
	KindNoSuchDomain
	// KindNullMX: the domain publishes a null MX (RFC 7505): it accepts
	// no mail. Permanent (5.1.10). errors.Is(err, ErrNullMX) holds.
	KindNullMX
	// KindSTARTTLS: TLS is required for the host and the server did not
	// offer STARTTLS (Result starttls-not-supported). Defer with 4.7.4, as
	// Postfix does ("TLS is required, but was not offered by host").
	// errors.Is(err, ErrSTARTTLSNotOffered) holds.
	KindSTARTTLS
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
	KindNoSuchDomain:  "no such domain",
	KindNullMX:        "domain accepts no mail (null MX, RFC 7505)",
	KindSTARTTLS:      "TLS is required, but STARTTLS was not offered",
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

// Error implements error. Domain, Host and Reason are quoted when they
// are not plain names, and every part is bounded (internal/quote): they
// may come from the caller, DNS or a peer. A field that is empty is left
// out, and the host is not repeated when the wrapped error names it.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("smtptls: ")
	host := e.Host
	if host == e.Domain {
		host = ""
	} else if de, ok := e.Err.(*dane.Error); ok && de.Host == e.Host {
		host = "" // dane's message starts with the host
	}
	switch {
	case e.Domain != "" && host != "":
		b.WriteString(quote.Name(e.Domain) + " via " + quote.Name(host) + ": ")
	case e.Domain != "":
		b.WriteString(quote.Name(e.Domain) + ": ")
	case host != "":
		b.WriteString("host " + quote.Name(host) + ": ")
	}
	b.WriteString(e.Kind.String())
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

// Is makes a *Error of KindNoSuchDomain, KindNullMX or KindSTARTTLS match
// ErrNoSuchDomain, ErrNullMX or ErrSTARTTLSNotOffered.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNoSuchDomain:
		return e.Kind == KindNoSuchDomain
	case ErrNullMX:
		return e.Kind == KindNullMX
	case ErrSTARTTLSNotOffered:
		return e.Kind == KindSTARTTLS
	}
	return false
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the MTA should retry later. Everything but
// KindInvalidDomain, KindNoSuchDomain, KindNullMX and KindRequireTLS is
// temporary: DNS and TLS failures pass, and RFC 8461 5 makes MTA-STS
// failures temporary.
func (e *Error) Temporary() bool {
	switch e.Kind {
	case KindInvalidDomain, KindNoSuchDomain, KindNullMX, KindRequireTLS:
		return false
	}
	return true
}

// EnhancedCode returns the RFC 3463 enhanced status code an MTA should use
// when this error ends delivery:
//
//   - 5.1.2 (bad destination system address) for KindInvalidDomain and
//     KindNoSuchDomain;
//   - 5.1.10 for KindNullMX (RFC 7505 3.3);
//   - 5.7.30 for KindRequireTLS (RFC 8689 5);
//   - 4.4.3 (directory server failure) for KindMXLookup, KindHostLookup
//     and KindCanceled;
//   - 4.7.4 for KindSTARTTLS (as Postfix: TLS required, not offered);
//   - 4.7.5 (cryptographic failure) for every other Kind: the TLS
//     failures KindNotInPolicy, KindDANERequired, KindVerify, and
//     KindResolver.
func (e *Error) EnhancedCode() string {
	switch e.Kind {
	case KindRequireTLS:
		return "5.7.30"
	case KindMXLookup, KindHostLookup, KindCanceled:
		return "4.4.3"
	case KindInvalidDomain, KindNoSuchDomain:
		return "5.1.2"
	case KindNullMX:
		return "5.1.10"
	case KindSTARTTLS:
		return "4.7.4"
	}
	return "4.7.5"
}
