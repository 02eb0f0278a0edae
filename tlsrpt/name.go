package tlsrpt

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/smtptls/smtptls/internal/dnsname"
)

// Names acted on (a policy domain, RFC 8460 4.4: an A-label, never a
// U-label; a submitter domain) go through dnsname.Mail and are refused
// when invalid. The helpers below are for names that are only reported.

// canonName is the lenient form of dnsname.Mail for names that are only
// reported, never acted on (an MX host name, a pattern from a peer's
// report): the canonical form when there is one, else the input
// lowercased, without the trailing dot and cut to maxField bytes.
func canonName(name string) string {
	if name == "" {
		return ""
	}
	if d, err := dnsname.Mail.Normalize(name); err == nil {
		return d
	}
	return clip(strings.ToLower(strings.TrimSuffix(name, ".")), maxField)
}

// lenientName tidies a name from a received report for grouping and
// display without judging it: trailing dots removed, then the canonical
// form of an MX pattern or host name if it has one, else the ASCII
// letters lowercased. It is idempotent, so a parsed report renders and
// parses back unchanged.
func lenientName(name string) string {
	name = strings.TrimRight(name, ".")
	if n, err := dnsname.Pattern.Normalize(name); err == nil {
		return n
	}
	b := []byte(name)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// canonPattern canonicalises an MX host pattern ("mx.example.com" or
// "*.example.com", RFC 8461 3.2) the way canonName does a name.
func canonPattern(p string) string {
	if n, err := dnsname.Pattern.Normalize(p); err == nil {
		return n
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
