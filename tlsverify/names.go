package tlsverify

import (
	"crypto/x509"
	"encoding/asn1"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/smtptls/smtptls/internal/dnsname"
)

// canonicalName returns a reference identifier (RFC 6125 6.2: an MX host
// name, a next-hop or policy domain) in canonical form with dnsname.Mail,
// or "" if it is not a valid one. Names with underscores are valid;
// invalid UTF-8 and malformed names are not. An IP address is kept (in
// RFC 5952 form) as it always was: x509 then checks the IP address SANs.
func canonicalName(name string) string {
	if a, err := netip.ParseAddr(name); err == nil {
		return a.String()
	}
	n, err := dnsname.Mail.Normalize(name)
	if err != nil {
		return ""
	}
	return n
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
// wildcard must be followed by at least two labels (dnsname.DNSID).
func matchName(pattern, ref string) bool {
	// A presented identifier is compared as the certificate spells it,
	// in A-labels and without a trailing dot (RFC 6125 6.4.2); only the
	// ASCII case is folded.
	if pattern == "" || pattern[len(pattern)-1] == '.' || !isASCII(pattern) {
		return false
	}
	p, err := dnsname.DNSID.Normalize(pattern)
	if err != nil {
		return false
	}
	if rest, ok := strings.CutPrefix(p, "*."); ok {
		label, tail, ok := strings.Cut(ref, ".")
		return ok && label != "" && tail == rest
	}
	return p == ref
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
