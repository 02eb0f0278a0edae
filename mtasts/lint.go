package mtasts

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/smtptls/smtptls/internal/quote"
)

// WarningKind classifies a Warning.
type WarningKind uint8

const (
	// WarnWildcardPublicSuffix: an mx pattern "*.<suffix>" whose suffix is
	// a public suffix ("*.com", "*.co.uk") lets anyone who registers a
	// name under it pass the pattern check.
	WarnWildcardPublicSuffix WarningKind = iota + 1
	// WarnDomainPublicSuffix: the policy domain is itself a public suffix.
	WarnDomainPublicSuffix
	// WarnAddressPattern: an mx pattern is spelled like an IPv4 address; it
	// is a valid name but never matches an MX host (RFC 8461 4.1 matches
	// names).
	WarnAddressPattern
	// WarnUnknownKey: an unknown key that resembles a known one ("nmx",
	// "Mode", "max-age") was ignored, as RFC 8461 3.2 requires.
	WarnUnknownKey
	// WarnShortMaxAge: max_age is under one day in mode enforce or testing;
	// RFC 8461 3.2 recommends weeks, since the cached policy is what
	// protects the first messages after an attacker blocks a fetch.
	WarnShortMaxAge
	// WarnMXTrailingDot: an mx pattern was written with a trailing dot
	// ("mail.example."), outside the RFC 8461 3.2 syntax. ParsePolicy
	// removes the dot, so the pattern matches exactly what the dotless one
	// does; stricter senders (mox) reject the whole policy.
	WarnMXTrailingDot
	// WarnTrailingBlankLines: the policy ends in blank lines, outside the
	// RFC 8461 3.2 syntax (one optional line terminator ends the policy).
	// ParsePolicy ignores them; stricter senders (mox) reject the policy.
	WarnTrailingBlankLines
)

// Warning is a finding about a valid policy that does not change how the
// policy applies: the policy is applied exactly as RFC 8461 says. Checkers
// show warnings; Client logs them when it fetches a policy.
type Warning struct {
	// Kind classifies the warning.
	Kind WarningKind
	// Subject is the pattern, domain, key or value concerned.
	Subject string
}

// String describes the warning in one line.
func (w Warning) String() string {
	switch w.Kind {
	case WarnWildcardPublicSuffix:
		return fmt.Sprintf("mx pattern %s covers every name under a public suffix", quote.String(w.Subject))
	case WarnDomainPublicSuffix:
		return fmt.Sprintf("policy domain %s is a public suffix", quote.String(w.Subject))
	case WarnAddressPattern:
		return fmt.Sprintf("mx pattern %s looks like an IP address and never matches", quote.String(w.Subject))
	case WarnUnknownKey:
		return fmt.Sprintf("unknown key %s ignored (a typo of a known key?)", quote.String(w.Subject))
	case WarnShortMaxAge:
		return fmt.Sprintf("max_age %s is short; weeks are recommended", quote.Name(w.Subject))
	case WarnMXTrailingDot:
		return fmt.Sprintf("mx pattern %s has a trailing dot (read without it; some senders reject the policy)", quote.String(w.Subject))
	case WarnTrailingBlankLines:
		return fmt.Sprintf("%s blank line(s) after the last field (ignored; some senders reject the policy)", quote.Name(w.Subject))
	}
	return fmt.Sprintf("warning(%d) %s", w.Kind, quote.String(w.Subject))
}

// Lint returns the warnings for policy p published by domain (any case,
// trailing dot and U-labels accepted; an invalid domain only skips the
// domain checks). It uses golang.org/x/net/publicsuffix to report, never
// to decide: a wildcard over a public suffix still matches as RFC 8461 4.1
// says.
func (p *Policy) Lint(domain string) []Warning {
	var ws []Warning
	if d, err := normalizeDomain(domain); err == nil && isPublicSuffix(d) {
		ws = append(ws, Warning{Kind: WarnDomainPublicSuffix, Subject: d})
	}
	for _, pat := range p.MX {
		if suffix, wild := strings.CutPrefix(pat, "*."); wild && isPublicSuffix(suffix) {
			ws = append(ws, Warning{Kind: WarnWildcardPublicSuffix, Subject: pat})
		}
		if looksLikeIPv4(strings.TrimPrefix(pat, "*.")) {
			ws = append(ws, Warning{Kind: WarnAddressPattern, Subject: pat})
		}
	}
	for _, e := range p.Extensions {
		if resemblesKnownKey(e.Key) {
			ws = append(ws, Warning{Kind: WarnUnknownKey, Subject: e.Key})
		}
	}
	if p.Mode != None && p.MaxAge < 24*time.Hour {
		ws = append(ws, Warning{Kind: WarnShortMaxAge, Subject: p.MaxAge.String()})
	}
	return append(ws, p.lintSyntax()...)
}

// lintSyntax reports the tolerances ParsePolicy applied, read from the
// lines as received: mx values with a trailing dot and blank lines after
// the last field.
func (p *Policy) lintSyntax() []Warning {
	var ws []Warning
	blank := 0
	for _, line := range p.Lines {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			if strings.Trim(line, " \t") == "" {
				blank++
			}
			continue
		}
		blank = 0
		if value = strings.Trim(value, " \t"); key == "mx" && strings.HasSuffix(value, ".") {
			ws = append(ws, Warning{Kind: WarnMXTrailingDot, Subject: value})
		}
	}
	if blank > 0 {
		ws = append(ws, Warning{Kind: WarnTrailingBlankLines, Subject: strconv.Itoa(blank)})
	}
	return ws
}

func isPublicSuffix(name string) bool {
	s, _ := publicsuffix.PublicSuffix(name)
	return s == name
}

// looksLikeIPv4 reports whether name is four all-digit labels.
func looksLikeIPv4(name string) bool {
	labels := strings.Split(name, ".")
	if len(labels) < 4 {
		return false
	}
	for _, l := range labels[len(labels)-4:] {
		if l == "" || strings.Trim(l, "0123456789") != "" {
			return false
		}
	}
	return true
}

// resemblesKnownKey reports whether an unknown key is a known key in
// another case, with "-" for "_", or one edit away from it.
func resemblesKnownKey(key string) bool {
	k := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	for _, known := range [...]string{"version", "mode", "max_age", "mx"} {
		if k == known || editDistanceAtMostOne(k, known) {
			return true
		}
	}
	return false
}

// editDistanceAtMostOne reports whether a and b differ by at most one
// insertion, deletion or substitution.
func editDistanceAtMostOne(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return a[i+min(1, len(a)-i):] == b[i+min(1, len(b)-i):]
	}
	return a[i:] == b[i+1:]
}
