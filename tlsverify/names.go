package tlsverify

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// canonicalName returns name as a lowercase A-label name without the
// trailing dot, or "" if it is not a usable domain name. ASCII input is
// only lowercased (no STD3 checks), so names with underscores survive;
// input with non-ASCII characters is converted with the IDNA lookup
// profile (RFC 5891).
func canonicalName(name string) string {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return ""
	}
	if !isASCII(name) {
		if !utf8.ValidString(name) {
			return ""
		}
		a, err := idna.Lookup.ToASCII(name)
		if err != nil {
			return ""
		}
		name = a
	}
	name = strings.ToLower(name)
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return ""
		}
	}
	return name
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// matchesAnyName reports whether leaf is valid for one of the canonical
// reference identifiers refs (RFC 7672 3.2.3): the DNS-ID subject
// alternative names if there is at least one, otherwise every subject
// common name (RFC 6125 6.4.4, as Postfix and OpenSSL do).
func matchesAnyName(leaf *x509.Certificate, refs []string) bool {
	if len(leaf.DNSNames) > 0 {
		for _, p := range leaf.DNSNames {
			for _, ref := range refs {
				if matchName(p, ref) {
					return true
				}
			}
		}
		return false
	}
	for _, atv := range leaf.Subject.Names {
		if !atv.Type.Equal(oidCommonName) {
			continue
		}
		p, ok := atv.Value.(string)
		if !ok {
			continue
		}
		for _, ref := range refs {
			if matchName(p, ref) {
				return true
			}
		}
	}
	return false
}

// matchName matches a certificate name pattern against a canonical
// reference identifier. A wildcard must be the whole left-most label and
// matches exactly one non-empty label (RFC 7672 3.2.3, RFC 6125 6.4.3);
// partial-label wildcards such as "mx*.example.com" never match, and the
// wildcard must be followed by at least two labels.
func matchName(pattern, ref string) bool {
	if len(pattern) == 0 || len(pattern) > 253 || !isASCII(pattern) {
		return false
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		if !strings.Contains(rest, ".") || strings.Contains(rest, "*") {
			return false
		}
		label, tail, ok := strings.Cut(ref, ".")
		if !ok || label == "" {
			return false
		}
		return equalFoldASCII(rest, tail)
	}
	if strings.Contains(pattern, "*") {
		return false
	}
	return equalFoldASCII(pattern, ref)
}

// equalFoldASCII compares ASCII case-insensitively; ref is lowercase.
func equalFoldASCII(pattern, ref string) bool {
	if len(pattern) != len(ref) {
		return false
	}
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != ref[i] {
			return false
		}
	}
	return true
}
