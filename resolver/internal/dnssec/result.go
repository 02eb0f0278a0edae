package dnssec

import (
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/quote"
)

// Security is the DNSSEC status of a completed lookup (RFC 4033 5). Its
// order is its strength: Worse keeps the weaker of two.
type Security uint8

const (
	// Indeterminate is the zero value and never the Security of a Result.
	Indeterminate Security = iota
	// Insecure: the answer or its denial provably lies outside any chain
	// of trust from the anchors.
	Insecure
	// Secure: the answer or its denial was validated from the anchors.
	Secure
)

// Worse returns the weaker of two states: a chain is only as secure as
// its worst link (RFC 7672 2.1.3).
func (s Security) Worse(o Security) Security {
	if o < s {
		return o
	}
	return s
}

// Result is a completed lookup: records, NXDOMAIN or NODATA, with its
// Security, never Indeterminate.
type Result struct {
	// Records holds the RRs of the asked type at the end of the chain,
	// their TTLs capped as RFC 4035 5.3.3 says. Empty for a denial.
	Records []dns.RR
	// CNAMEs is the chain of CNAME (or DNAME-synthesised) targets
	// followed from the question, in order, lowercase and fully
	// qualified.
	CNAMEs []string
	// NXDomain is true when the last name of the chain does not exist.
	NXDomain bool
	// TTL is the smallest TTL of the answer's links, or the negative TTL
	// (RFC 2308) of a denial, at most one day.
	TTL time.Duration
	// Security is the worst link of the chain.
	Security Security
	// Reason says why an Insecure result is Insecure: the first link
	// that was, its owner name and type, and the proof or configuration
	// that made it so. Empty for a Secure result.
	Reason string
	// EDE is the Extended DNS Error info-code (RFC 8914) of Reason when
	// one fits (1 Unsupported DNSKEY Algorithm, 2 Unsupported DS Digest
	// Type, 27 Unsupported NSEC3 Iterations Value), otherwise 0.
	EDE uint16
}

// worse records one link of the chain: the weaker security wins, and the
// first Insecure link gives the reason.
func (r *Result) worse(sec Security, why string, ede uint16, owner string, rrtype uint16) {
	if sec == Insecure && r.Reason == "" {
		if why == "" {
			why = "insecure"
		}
		r.Reason = quote.String(owner) + " " + dns.TypeToString[rrtype] + ": " + why
		r.EDE = ede
	}
	r.Security = r.Security.Worse(sec)
}

// Kind says why a lookup reached no verdict.
type Kind uint8

const (
	// KindServFail: the upstream answered SERVFAIL.
	KindServFail Kind = iota + 1
	// KindRefused: the upstream answered REFUSED, NOTIMP or another
	// error rcode.
	KindRefused
	// KindTimeout: no usable answer in time, or the context ended.
	KindTimeout
	// KindMalformed: a question that cannot be validated, or a response
	// that did not parse, did not match, or broke a size bound.
	KindMalformed
	// KindBogus: validation failed, or a work limit was reached.
	KindBogus
	// KindIndeterminate: validation could not conclude (no usable trust
	// anchor).
	KindIndeterminate
	// KindLoop: the CNAME/DNAME chain looped or was too long.
	KindLoop
	// KindNetwork: no upstream could be reached, or none is configured.
	KindNetwork
)

var kindNames = [...]string{
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
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is a lookup that reached no verdict: Bogus, Indeterminate, or a
// failure to get a usable answer. It is never to be read as Insecure.
type Error struct {
	// Kind classifies the failure.
	Kind Kind
	// Reason explains it, for logs and TLS-RPT additional information.
	Reason string
	// EDE is the Extended DNS Error info-code (RFC 8914) that best
	// describes the failure, or 0.
	EDE uint16
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dnssec: ")
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
