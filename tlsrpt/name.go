package tlsrpt

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// normalizeDomain returns name as lowercase A-labels without the trailing
// dot (RFC 8460 4.4: "policy-domain" is an A-label, never a U-label). It
// accepts any case, one trailing dot and U-labels, and refuses address
// literals and names that break RFC 1035 length rules.
func normalizeDomain(name string) (string, bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 1024 {
		return "", false
	}
	if name[0] == '[' {
		return "", false
	}
	if !isLDH(name) {
		a, err := idna.Lookup.ToASCII(name)
		if err != nil || !isLDH(a) {
			return "", false
		}
		name = a
	}
	name = strings.ToLower(name)
	if len(name) > 253 {
		return "", false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "", false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
	}
	return name, true
}

// isLDH reports whether s holds only ASCII letters, digits, hyphens,
// underscores and dots.
func isLDH(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// canonName is the lenient form of normalizeDomain for names that are
// only reported, never acted on (an MX host name, a pattern from a peer's
// report): the canonical form when there is one, else the input
// lowercased, without the trailing dot and cut to maxField bytes.
func canonName(name string) string {
	if name == "" {
		return ""
	}
	if d, ok := normalizeDomain(name); ok {
		return d
	}
	return clip(strings.ToLower(strings.TrimSuffix(name, ".")), maxField)
}

// lenientName tidies a name from a received report for grouping and
// display without judging it: trailing dots removed, U-labels converted
// to A-labels where IDNA allows, ASCII letters lowercased. It is
// idempotent, so a parsed report renders and parses back unchanged.
func lenientName(name string) string {
	prefix := ""
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		prefix, name = "*.", rest
	}
	name = strings.TrimRight(name, ".")
	if !isLDH(name) {
		if a, err := idna.Lookup.ToASCII(name); err == nil && isLDH(a) {
			name = strings.TrimRight(a, ".")
		}
	}
	b := []byte(name)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return prefix + string(b)
}

// canonPattern canonicalises an MX host pattern ("mx.example.com" or
// "*.example.com", RFC 8461 3.2) the way canonName does a name.
func canonPattern(p string) string {
	if rest, ok := strings.CutPrefix(p, "*."); ok {
		if d, ok := normalizeDomain(rest); ok {
			return "*." + d
		}
	}
	return canonName(p)
}

// canonIP returns an IP address in RFC 5952 form (IPv4-mapped IPv6
// addresses unmapped), or s cut to maxField bytes if it is not one.
func canonIP(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return clip(s, maxField)
}

// clip returns s as valid UTF-8 of at most n bytes, cut on a rune
// boundary. Strings from peers (an EHLO name, an error text) are stored
// and reported, so both their size and their encoding must be bounded.
func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
