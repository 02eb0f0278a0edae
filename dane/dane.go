package dane

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/tlsverify"
)

// Level is what a host's TLSA records oblige a sender to do (RFC 7672 2.2).
type Level uint8

const (
	// None: no secure TLSA RRset (insecure, or securely denied). Use
	// opportunistic TLS as without DANE; MTA-STS may still apply.
	None Level = iota
	// Encrypt: the TLSA RRset is secure but none of its records is usable.
	// TLS is mandatory and cleartext forbidden; the certificate is not
	// authenticated (RFC 7672 2.2, 3.1.3).
	Encrypt
	// Authenticate: the secure TLSA RRset has usable records. TLS is
	// mandatory and the server must authenticate with them; on failure
	// the sender must not deliver to this host (RFC 7672 2.2).
	Authenticate
)

// String returns "none", "encrypt" or "authenticate".
func (l Level) String() string {
	switch l {
	case None:
		return "none"
	case Encrypt:
		return "encrypt"
	case Authenticate:
		return "authenticate"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// Policy is the DANE policy of one host and port.
type Policy struct {
	// Host is the host name looked up, lowercase A-labels without the
	// trailing dot.
	Host string
	// Port is the TCP port whose TLSA records were looked up.
	Port int
	// Base is the TLSA base domain (RFC 7672 2.2.2): the name whose
	// _port._tcp TLSA RRset applies, and the SNI name to send (RFC 7672
	// 8.1). With Level None it is Host.
	Base string
	// TLSAName is the owner name of the TLSA RRset consulted last, without
	// the trailing dot ("_25._tcp.mx.example.org"); empty when no TLSA
	// lookup was made.
	TLSAName string
	// Level says what the records oblige a sender to do.
	Level Level
	// Records holds the records of the secure TLSA RRset usable under
	// DigestPreference (tlsverify.UsableRecords). Level is Authenticate
	// exactly when it is not empty.
	Records []tlsverify.TLSA
	// DigestPreference is the digest preference Records were chosen with
	// (Options.DigestPreference); Verifier passes it on, so that the
	// verifier authenticates with the records the Level was decided on.
	DigestPreference []uint8
	// RRset holds every record of the secure TLSA RRset, usable or not,
	// as TLS-RPT's policy-string reports it (RFC 8460 4.3).
	RRset []tlsverify.TLSA
	// Addrs are the host's addresses, A then AAAA, as resolved for this
	// policy: dial these, so that what was validated is what is used.
	Addrs []netip.Addr
	// AddrSecurity is the DNSSEC status of the address lookup (the worse
	// of A and AAAA, and of every CNAME link).
	AddrSecurity resolver.Security
	// CNAMEs is the host's CNAME chain, normalised, in order.
	CNAMEs []string
}

// Verifier returns a DANE verifier for the policy's usable records. names
// are the reference identifiers for DANE-TA name checks; build them with
// ReferenceNames. With no names the TLSA base domain alone is used. Plug
// it into a handshake with tlsverify.Config(base, p.Base, v) (RFC 7672
// 8.1: the base domain is the SNI name); the root package's
// Host.TLSConfig does so, with the Evaluator's clock. The verifier has
// the policy's DigestPreference.
func (p *Policy) Verifier(names ...string) *tlsverify.DANE {
	if len(names) == 0 {
		names = []string{p.Base}
	}
	return &tlsverify.DANE{Records: p.Records, Names: names, DigestPreference: p.DigestPreference}
}

// Kind says why a Lookup failed.
type Kind uint8

const (
	// KindAddress: the address lookup of the host failed.
	KindAddress Kind = iota + 1
	// KindNoAddress: the host has no addresses (NXDOMAIN or NODATA).
	KindNoAddress
	// KindCNAME: the extra CNAME query for an insecurely expanded host
	// failed.
	KindCNAME
	// KindTLSA: the TLSA lookup failed: the host must not be used (RFC
	// 7672 2.1.2).
	KindTLSA
	// KindName: the host name is not a valid domain name.
	KindName
)

// String returns a short name for the kind.
func (k Kind) String() string {
	switch k {
	case KindAddress:
		return "address lookup failed"
	case KindNoAddress:
		return "no address"
	case KindCNAME:
		return "cname lookup failed"
	case KindTLSA:
		return "tlsa lookup failed"
	case KindName:
		return "invalid host name"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is a failed Lookup. The host must not be used for delivery.
type Error struct {
	// Kind says which lookup failed.
	Kind Kind
	// Host is the host as given.
	Host string
	// Name is the DNS name whose lookup failed (without the trailing dot).
	Name string
	// Err is the underlying error, a *resolver.Error for lookup failures.
	Err error
}

// Error implements error. The host and name are quoted unless they are
// plain names, and bounded; the name is left out when the wrapped
// resolver error already says it.
func (e *Error) Error() string {
	s := "dane: "
	if e.Host != "" {
		s += quote.Name(e.Host) + ": "
	}
	s += e.Kind.String()
	var re *resolver.Error
	said := errors.As(e.Err, &re) && strings.TrimSuffix(re.Name, ".") == e.Name
	if e.Name != "" && e.Name != e.Host && !said {
		s += " (" + quote.Name(e.Name) + ")"
	}
	if e.Err != nil {
		s += ": " + quote.Err(e.Err)
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Options are the sender's choices that shape a Policy. The zero value
// is the default.
type Options struct {
	// DigestPreference is the sender's ranking of digest matching types,
	// as tlsverify.DANE.DigestPreference (RFC 7671 9 digest agility). A
	// record whose matching type it leaves out is unusable (RFC 6698 4.1:
	// a client ignores records it cannot use), so a secure RRset of only
	// such records gives Level Encrypt, not Authenticate (RFC 7672 2.2).
	// Nil means SHA-512 then SHA-256: every matching type is usable.
	DigestPreference []uint8

	// EarlyTLSA asks for the TLSA RRset at _port._tcp.<host> at the same
	// time as the host's addresses instead of after them, which saves a
	// round trip when the addresses turn out secure. RFC 7672 2.2.2 says
	// a client SHOULD NOT look up TLSA records for a host whose address
	// response is insecure (such zones are where servers mishandle TLSA
	// queries), so set it only for a host whose zone is already known to
	// be signed: the root package sets it for a host in the zone of a
	// secure MX RRset, or in a zone it holds a cached secure answer
	// from. It never changes the Policy: the early answer is used only
	// where the lookup asks that very question, after secure addresses;
	// when they are insecure (or there are none) it is abandoned unread,
	// and when it failed the question is asked again in its turn.
	// Abandoning cancels the early lookup's context; a resolver.Cache
	// lets its query finish into the cache, bounded by its flight
	// timeout.
	EarlyTLSA bool
}

// Lookup is LookupWith with the zero Options.
func Lookup(ctx context.Context, r resolver.Resolver, host string, port int) (*Policy, error) {
	return LookupWith(ctx, r, host, port, Options{})
}

// LookupWith looks up the DANE policy of host at port with RFC 7672
// 2.2.2-2.2.3 rules. r must report DNSSEC status faithfully
// (resolver.Validating, or a resolver.Stub in front of a local validating
// resolver). Which records are usable, and so the Level, is decided by
// tlsverify.UsableRecords with o.DigestPreference.
//
// Host must be a host name. An address, an address literal, or a name
// that looks like one ("192.0.2.44", "127.1": a last label all digits) is
// refused with KindName: DANE never applies to addresses (RFC 7672 2.2),
// so a sender delivering to a literal has no lookup to make, and an MX
// target such as "192.0.2.44." is a name (RFC 1035 3.3.9) that must never
// be dialled as an address (Postfix: "numeric domain name in resource
// data of MX record").
func LookupWith(ctx context.Context, r resolver.Resolver, host string, port int, o Options) (*Policy, error) {
	name, err := dnsname.Mail.Normalize(host)
	if err != nil {
		return nil, &Error{Kind: KindName, Host: host, Err: err}
	}
	p := &Policy{Host: name, Port: port, Base: name}
	var early *earlyTLSA
	if o.EarlyTLSA {
		early = startTLSA(ctx, r, port, name)
		defer early.abandon()
	}

	// RFC 7672 2.2.2: addresses first, and their security decides whether
	// TLSA records are looked up at all (or an early answer is read).
	addrs, aans, err := resolver.LookupAddrs(ctx, r, name)
	if err != nil {
		return nil, &Error{Kind: KindAddress, Host: host, Name: name, Err: err}
	}
	if len(addrs) == 0 {
		return nil, &Error{Kind: KindNoAddress, Host: host, Name: name}
	}
	p.Addrs = addrs
	p.AddrSecurity = aans.Security
	for _, c := range aans.CNAMEs {
		p.CNAMEs = append(p.CNAMEs, strings.TrimSuffix(c, "."))
	}

	var bases []string
	switch {
	case len(p.CNAMEs) == 0 && aans.Security == resolver.Secure:
		bases = []string{name}
	case len(p.CNAMEs) == 0:
		// Insecure address response for the host itself: no TLSA lookup.
		return p, nil
	case aans.Security == resolver.Secure:
		// A secure chain: the expanded name first, then the original.
		bases = []string{p.CNAMEs[len(p.CNAMEs)-1], name}
	default:
		// An insecure expansion: the original name is a candidate only if
		// its own CNAME record is secure, which the combined answer cannot
		// tell (its security is that of the worst link).
		ca, err := r.Lookup(ctx, name, dns.TypeCNAME)
		if err != nil {
			return nil, &Error{Kind: KindCNAME, Host: host, Name: name, Err: err}
		}
		if ca.Security != resolver.Secure {
			return p, nil
		}
		bases = []string{name}
	}

	for _, base := range bases {
		var (
			recs []*dns.TLSA
			tans *resolver.Answer
		)
		if early != nil && base == name {
			recs, tans, err = early.wait(ctx, r)
		} else {
			recs, tans, err = resolver.LookupTLSA(ctx, r, port, base)
		}
		p.TLSAName = "_" + strconv.Itoa(port) + "._tcp." + base
		if err != nil {
			// RFC 7672 2.1.2: a failed TLSA lookup makes the host unusable.
			// No fallback to the next candidate: the answer at this one is
			// unknown, not absent (Postfix behaves the same).
			return nil, &Error{Kind: KindTLSA, Host: host, Name: p.TLSAName, Err: err}
		}
		if tans.Security != resolver.Secure || len(recs) == 0 {
			// Authenticated denial or an insecure RRset: nothing here.
			continue
		}
		p.Base = base
		for _, rr := range recs {
			p.RRset = append(p.RRset, FromDNS(rr))
		}
		p.DigestPreference = o.DigestPreference
		p.Records = tlsverify.UsableRecords(p.RRset, o.DigestPreference)
		p.Level = Encrypt
		if len(p.Records) > 0 {
			p.Level = Authenticate
		}
		return p, nil
	}
	return p, nil
}

// FromDNS converts a miekg/dns TLSA record to a tlsverify.TLSA. Data that
// is not valid hex becomes empty, which makes the record unusable.
func FromDNS(rr *dns.TLSA) tlsverify.TLSA {
	t := tlsverify.TLSA{Usage: rr.Usage, Selector: rr.Selector, MatchingType: rr.MatchingType}
	if b, err := hex.DecodeString(rr.Certificate); err == nil {
		t.Data = b
	}
	return t
}

// ReferenceNames returns the reference identifiers for DANE-TA name
// checks of a host reached through nextHop (RFC 7672 3.2.2), the TLSA base
// domain first:
//
//   - with a DNSSEC-secure MX RRset (mxSecure): the TLSA base domain, the
//     next-hop domain, and the next-hop domain's CNAME expansion if the MX
//     lookup followed one (nextHopExpanded, "" if none);
//   - with an insecure MX RRset: the TLSA base domain and the MX host name
//     only, since the next-hop domain did not securely lead to this host.
//
// Duplicates are removed; names are normalised.
func ReferenceNames(p *Policy, nextHop, nextHopExpanded string, mxSecure bool) []string {
	names := []string{p.Base}
	add := func(n string) {
		n, err := dnsname.Mail.Normalize(n)
		if err != nil {
			return
		}
		for _, have := range names {
			if have == n {
				return
			}
		}
		names = append(names, n)
	}
	if mxSecure {
		add(nextHop)
		if nextHopExpanded != "" {
			add(nextHopExpanded)
		}
	} else {
		add(p.Host)
	}
	return names
}
