package smtptls

import (
	"fmt"
	"strings"

	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/tlsrpt"
)

// OverrideMode is an operator's TLS policy for a domain, with Postfix's
// smtp_tls_policy_maps levels and meanings.
type OverrideMode uint8

const (
	// OverrideNone: no TLS at all (Postfix "none"). Neither DANE nor
	// MTA-STS is consulted: the operator has decided.
	OverrideNone OverrideMode = iota + 1
	// OverrideMay: opportunistic TLS, no DANE, no MTA-STS ("may").
	OverrideMay
	// OverrideEncrypt: mandatory TLS without authentication ("encrypt").
	OverrideEncrypt
	// OverrideDANE: opportunistic DANE ("dane"): DANE where usable TLSA
	// records exist, TLS mandatory where they are all unusable,
	// opportunistic TLS elsewhere. MTA-STS is not consulted.
	OverrideDANE
	// OverrideDANEOnly: mandatory DANE ("dane-only"): hosts without
	// usable TLSA records must not be used.
	OverrideDANEOnly
	// OverrideVerify: mandatory TLS with a WebPKI certificate matching
	// Match, by default the MX host name ("verify").
	OverrideVerify
	// OverrideSecure: as OverrideVerify, with Match by default the
	// next-hop domain and its subdomains ("secure", whose default Postfix
	// writes "nexthop:dot-nexthop"). Unlike OverrideVerify it does not
	// trust the (insecure) MX lookup for the names.
	OverrideSecure
)

var overrideNames = map[string]OverrideMode{
	"none": OverrideNone, "may": OverrideMay, "encrypt": OverrideEncrypt,
	"dane": OverrideDANE, "dane-only": OverrideDANEOnly,
	"verify": OverrideVerify, "secure": OverrideSecure,
}

// String returns the Postfix name of the mode.
func (m OverrideMode) String() string {
	for k, v := range overrideNames {
		if v == m {
			return k
		}
	}
	return fmt.Sprintf("override(%d)", uint8(m))
}

func (m OverrideMode) usesDANE() bool { return m == OverrideDANE || m == OverrideDANEOnly }

// Postfix's match strategies (postconf(5) smtp_tls_verify_cert_match):
// keywords in Override.Match that stand for a name known only when a host
// is tried. Postfix compares them case-insensitively, before any name, so
// a host literally named "nexthop" cannot be matched (nor can it be in
// Postfix).
const (
	// MatchHostname is the MX host name being connected to (Postfix
	// "hostname"), usually learnt from an unauthenticated MX lookup.
	MatchHostname = "hostname"
	// MatchNexthop is the next-hop domain (Postfix "nexthop"): the
	// recipient domain, or the relay host given to EvaluateRelay.
	MatchNexthop = "nexthop"
	// MatchDotNexthop is any subdomain of the next-hop domain (Postfix
	// "dot-nexthop"), not the domain itself.
	MatchDotNexthop = "dot-nexthop"
)

// Override is an operator's policy for one domain.
type Override struct {
	// Mode is the TLS level the operator chose.
	Mode OverrideMode
	// Match lists what a certificate must match for OverrideVerify and
	// OverrideSecure, as Postfix's "match" attribute does: one of the
	// keywords MatchHostname, MatchNexthop and MatchDotNexthop (any
	// case), a domain name, or a domain name after a "." for any of its
	// subdomains (".example.com" matches "mx.example.com", not
	// "example.com"). A certificate matching any element is accepted.
	//
	// Empty means Postfix's default for the mode: "hostname" for verify
	// (smtp_tls_verify_cert_match), "nexthop" and "dot-nexthop" for
	// secure (smtp_tls_secure_cert_match). An element that is none of
	// the above, or Match set for another mode, makes every host of the
	// domain unusable (a temporary KindVerify error, as Postfix defers
	// with "client TLS configuration problem"); ParseOverride refuses
	// such a policy up front.
	Match []string
}

// ParseOverride parses a policy in the syntax of a Postfix
// smtp_tls_policy_maps value, such as "dane-only",
// "secure match=nexthop:dot-nexthop" or "verify match=hostname:.example.com".
// The level is one of none, may, encrypt, dane, dane-only, verify and
// secure; the only attribute is "match", for verify and secure, whose
// value lists names and keywords (see Override.Match) separated by ':'
// (the only separator Postfix accepts in a policy table). Several match
// attributes add up; empty elements between colons are skipped, as
// Postfix does. Keywords and names are returned in canonical form
// (lowercase, A-labels, no trailing dot).
//
// An empty match value, a match list without names, an element that is
// neither a keyword nor a valid domain name (optionally after one "."),
// a match attribute for another level and any other attribute are
// errors that quote the offending text: an operator's mistake must not
// silently widen or narrow what is accepted.
func ParseOverride(s string) (Override, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Override{}, fmt.Errorf("smtptls: empty override")
	}
	m, ok := overrideNames[strings.ToLower(f[0])]
	if !ok {
		return Override{}, fmt.Errorf("smtptls: unknown override level %s", quote.String(f[0]))
	}
	o := Override{Mode: m}
	for _, attr := range f[1:] {
		k, v, hasValue := strings.Cut(attr, "=")
		if !strings.EqualFold(k, "match") || !hasValue {
			return Override{}, fmt.Errorf("smtptls: unsupported attribute %s for %s", quote.String(attr), m)
		}
		if m != OverrideVerify && m != OverrideSecure {
			return Override{}, fmt.Errorf("smtptls: attribute %s is invalid at level %s (only verify and secure match names)", quote.String(attr), m)
		}
		if v == "" {
			return Override{}, fmt.Errorf("smtptls: attribute %s has an empty value", quote.String(attr))
		}
		n := len(o.Match)
		for _, e := range strings.Split(v, ":") {
			if e == "" {
				continue
			}
			c, err := canonicalMatch(e)
			if err != nil {
				// An invalid name is refused, never dropped or rewritten.
				return Override{}, &Error{Kind: KindInvalidDomain, Reason: "invalid match name " + quote.String(e) + " in " + quote.String(attr), Err: err}
			}
			o.Match = append(o.Match, c)
		}
		if len(o.Match) == n {
			return Override{}, fmt.Errorf("smtptls: attribute %s names nothing", quote.String(attr))
		}
	}
	return o, nil
}

// canonicalMatch returns a Match element in canonical form: a keyword in
// lowercase, or a name (after an optional ".") normalised by dnsname.
func canonicalMatch(e string) (string, error) {
	switch k := strings.ToLower(e); k {
	case MatchHostname, MatchNexthop, MatchDotNexthop:
		return k, nil
	}
	name, sub := strings.CutPrefix(e, ".")
	c, err := dnsname.Mail.Normalize(name)
	if err != nil {
		return "", err
	}
	if sub {
		c = "." + c
	}
	return c, nil
}

// applyOverride sets h's level from the operator's policy.
func (e *Evaluator) applyOverride(dec *Decision, h *Host, ov Override) {
	names, err := matchNames(ov, dec.Domain, h.Name)
	if err != nil {
		// Postfix defers such mail ("client TLS configuration problem",
		// 4.7.5). It is not the receiving domain's failure: no TLS-RPT
		// result.
		h.Err = &Error{Kind: KindVerify, Domain: dec.Domain, Host: h.Name,
			Reason: "invalid operator override", Err: err}
		return
	}
	daneLevel := dane.None
	if h.DANE != nil {
		daneLevel = h.DANE.Level
	}
	switch ov.Mode {
	case OverrideNone:
		h.Level = NoTLS
	case OverrideMay:
		h.Level = Opportunistic
	case OverrideEncrypt:
		h.Level = Encrypt
	case OverrideDANE:
		switch daneLevel {
		case dane.Authenticate:
			h.Level = DANE
		case dane.Encrypt:
			h.Level = Encrypt
		default:
			h.Level = Opportunistic
		}
	case OverrideDANEOnly:
		if daneLevel != dane.Authenticate {
			h.Err = &Error{Kind: KindDANERequired, Domain: dec.Domain, Host: h.Name, Result: tlsrpt.DANERequired,
				Reason: "the operator requires DANE and the host has no usable TLSA records"}
			return
		}
		h.Level = DANE
	case OverrideVerify, OverrideSecure:
		h.Level = PKIX
		h.match = names
	}
}

// matchNames returns the reference names for a verify or secure override
// of domain (the next hop) tried via host, translating Postfix's keywords
// as its TLS client does (match_servername in tls_client.c): "hostname"
// is host, "nexthop" is domain, "dot-nexthop" is ".domain". A name
// starting with "." stands for its subdomains (see nameVerifier).
func matchNames(ov Override, domain, host string) ([]string, error) {
	if ov.Mode != OverrideVerify && ov.Mode != OverrideSecure {
		if len(ov.Match) > 0 {
			return nil, fmt.Errorf("smtptls: match names are invalid at level %s", ov.Mode)
		}
		return nil, nil
	}
	match := ov.Match
	if len(match) == 0 {
		// Postfix's defaults: smtp_tls_verify_cert_match = hostname,
		// smtp_tls_secure_cert_match = nexthop, dot-nexthop.
		match = []string{MatchHostname}
		if ov.Mode == OverrideSecure {
			match = []string{MatchNexthop, MatchDotNexthop}
		}
	}
	out := make([]string, 0, len(match))
	for _, e := range match {
		c, err := canonicalMatch(e)
		if err != nil {
			return nil, fmt.Errorf("smtptls: invalid match name %s: %w", quote.String(e), err)
		}
		switch c {
		case MatchHostname:
			c = host
		case MatchNexthop:
			c = domain
		case MatchDotNexthop:
			c = "." + domain
		}
		out = append(out, c)
	}
	return out, nil
}
