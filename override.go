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

// Override is an operator's policy for one domain.
type Override struct {
	// Mode is the TLS level the operator chose.
	Mode OverrideMode
	// Match lists the names a certificate must match for OverrideVerify
	// and OverrideSecure. A name starting with "." matches any subdomain
	// (".example.com" matches "mx.example.com", not "example.com"), as in
	// Postfix. Nil means the mode's default.
	Match []string
}

// ParseOverride parses a Postfix-style policy such as "dane-only",
// "secure match=example.com:.example.com" or "verify".
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
		k, v, _ := strings.Cut(attr, "=")
		if !strings.EqualFold(k, "match") || (m != OverrideVerify && m != OverrideSecure) {
			return Override{}, fmt.Errorf("smtptls: unsupported attribute %s for %s", quote.String(attr), m)
		}
		for n := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ':' || r == ',' }) {
			// An invalid name is refused, never dropped or rewritten.
			if _, err := dnsname.Mail.Normalize(strings.TrimPrefix(n, ".")); err != nil {
				return Override{}, &Error{Kind: KindInvalidDomain, Reason: "match=" + quote.String(n), Err: err}
			}
			o.Match = append(o.Match, n)
		}
	}
	return o, nil
}

// applyOverride sets h's level from the operator's policy.
func (e *Evaluator) applyOverride(dec *Decision, h *Host, ov Override) {
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
		h.match = overrideNamesFor(ov, dec.Domain, h.Name)
	}
}

func overrideNamesFor(ov Override, domain, host string) []string {
	var out []string
	for _, n := range ov.Match {
		dot := strings.HasPrefix(n, ".")
		if c, err := dnsname.Mail.Normalize(strings.TrimPrefix(n, ".")); err == nil {
			if dot {
				c = "." + c
			}
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		return out
	}
	if ov.Mode == OverrideVerify {
		return []string{host}
	}
	return []string{domain, "." + domain}
}
