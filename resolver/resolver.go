package resolver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/quote"
)

// Resolver answers one DNS question. Implementations must be safe for
// concurrent use.
//
// The contract, which every caller in this module relies on:
//   - name is a domain name in any case, with or without the trailing dot;
//     the Answer speaks DNS (lowercase, fully qualified).
//   - A completed lookup returns an Answer and a nil error, also for NXDOMAIN
//     and NODATA (an empty Records slice). Security says whether the answer
//     (or the denial) was validated by DNSSEC.
//   - A lookup that could not be completed (SERVFAIL, REFUSED, timeout, a
//     bogus or indeterminate DNSSEC result, a malformed or mismatched
//     response) returns a *Error and a nil Answer. It never returns an
//     Insecure Answer in its place: RFC 7672 2.1.1 requires an MTA to treat
//     such failures as "defer", not as "no DANE".
type Resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error)
}

// Security is the DNSSEC status of an answer (RFC 4033 section 5).
type Security uint8

const (
	// Indeterminate is the zero value: the status is unknown. A Resolver
	// never returns an Answer with this status; it exists so that an
	// uninitialised Answer is never mistaken for Insecure or Secure.
	Indeterminate Security = iota
	// Insecure: the answer (or its denial) is provably outside any chain
	// of trust, or comes from a resolver that is not trusted to validate.
	Insecure
	// Secure: the answer (or its denial) was validated from a trust anchor.
	Secure
)

// String returns "indeterminate", "insecure" or "secure".
func (s Security) String() string {
	switch s {
	case Insecure:
		return "insecure"
	case Secure:
		return "secure"
	default:
		return "indeterminate"
	}
}

// Worse returns the weaker of two security states: a chain is only as
// secure as its worst link (RFC 7672 2.1.3).
func (s Security) Worse(o Security) Security {
	if o < s {
		return o
	}
	return s
}

// Answer is the outcome of a completed lookup.
type Answer struct {
	// Name is the question name, lowercase and fully qualified.
	Name string
	// Type is the question type.
	Type uint16
	// Records holds the RRs of the asked type found at the end of the
	// CNAME chain (no RRSIGs, no CNAMEs). Empty for NXDOMAIN and NODATA.
	Records []dns.RR
	// CNAMEs is the chain of CNAME targets followed from Name, in order,
	// each lowercase and fully qualified. The last element (if any) is the
	// owner of Records.
	CNAMEs []string
	// NXDomain is true when the final name does not exist. It is false for
	// NODATA (the name exists, without records of the asked type).
	NXDomain bool
	// TTL is how long the answer may be cached: the smallest TTL of the
	// records and chain links, or the negative TTL (RFC 2308) of a denial.
	TTL time.Duration
	// Security is the security of the whole answer: the worst link of the
	// chain, and for an empty answer the security of the denial.
	Security Security
	// EDE is the Extended DNS Error info-code (RFC 8914) that says why an
	// Insecure answer is Insecure, when one fits: 1 (Unsupported DNSKEY
	// Algorithm), 2 (Unsupported DS Digest Type), 27 (Unsupported NSEC3
	// Iterations Value), or the code a Stub's upstream attached. 0 means
	// none (an insecure delegation, a negative trust anchor, a name under
	// no trust anchor have no code of their own; Reason tells).
	EDE uint16
	// Reason says why an Insecure answer is Insecure, naming the link of
	// the chain (owner and type) and the zone or proof that made it so,
	// e.g. `"mail.example." A: insecure delegation: no DS for "example."
	// (NSEC proof from ".")`. Names are quoted and the text is bounded.
	// Empty for a Secure answer. A Cache keeps it with the answer.
	Reason string
}

// Target returns the name that owns Records: the last CNAME target, or Name.
func (a *Answer) Target() string {
	if n := len(a.CNAMEs); n > 0 {
		return a.CNAMEs[n-1]
	}
	return a.Name
}

// Kind says why a lookup could not be completed.
type Kind uint8

const (
	// KindUnknown is the zero value and never set by this package.
	KindUnknown Kind = iota
	// KindServFail: a server answered SERVFAIL (for a validating upstream,
	// this usually means the answer was bogus).
	KindServFail
	// KindRefused: a server answered REFUSED, NOTIMP or another error rcode.
	KindRefused
	// KindTimeout: no usable answer arrived in time, or the context ended.
	KindTimeout
	// KindMalformed: the response could not be parsed, did not match the
	// question, or broke a protocol or size bound.
	KindMalformed
	// KindBogus: DNSSEC validation failed (RFC 4033 section 5).
	KindBogus
	// KindIndeterminate: DNSSEC validation could not reach a conclusion.
	KindIndeterminate
	// KindLoop: a CNAME chain looped or exceeded MaxCNAMEs links.
	KindLoop
	// KindNetwork: no server could be reached (connection refused, no
	// route, no servers configured).
	KindNetwork
)

var kindNames = [...]string{
	KindUnknown:       "unknown",
	KindServFail:      "servfail",
	KindRefused:       "refused",
	KindTimeout:       "timeout",
	KindMalformed:     "malformed",
	KindBogus:         "bogus",
	KindIndeterminate: "indeterminate",
	KindLoop:          "cname loop",
	KindNetwork:       "network",
}

// String returns a short lowercase name for the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error reports a lookup that could not be completed. To an MTA every such
// error means "defer": the answer is unknown, not absent.
type Error struct {
	// Name and Type are the question that failed.
	Name string
	Type uint16
	// Kind classifies the failure.
	Kind Kind
	// Reason is a human-readable explanation fit for logs and for the
	// additional-information of a TLS-RPT dnssec-invalid failure.
	Reason string
	// EDE is the Extended DNS Error info-code (RFC 8914) that best
	// describes the failure, or 0 when none fits or none was given.
	EDE uint16
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("resolver: ")
	b.WriteString(quote.Name(e.Name))
	b.WriteByte(' ')
	b.WriteString(dns.TypeToString[e.Type])
	b.WriteString(": ")
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

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports true: every lookup failure is temporary for an MTA.
func (e *Error) Temporary() bool { return true }

// MaxCNAMEs bounds the CNAME chains every Resolver of this package follows
// (RFC 7672 2.1.3 leaves the bound to the implementation; 8 is what
// common stub resolvers allow).
const MaxCNAMEs = 8

// Fqdn returns name lowercase and fully qualified, as miekg/dns writes names.
func Fqdn(name string) string {
	return dns.Fqdn(strings.ToLower(name))
}

func asError(err error, target **Error) bool { return errors.As(err, target) }
