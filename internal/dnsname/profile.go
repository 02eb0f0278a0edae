package dnsname

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// A Profile is a kind of name and the rules it must follow. The profiles
// are constants; there is no way to make another.
type Profile uint8

const (
	// Mail is a mail domain or a host name: a recipient domain, an MX
	// host name, an MTA-STS policy domain, a TLS-RPT policy domain, and a
	// certificate reference identifier (RFC 6125 6.2, RFC 7672 3.2.3),
	// which is always one of these. Labels start and end with a letter, a
	// digit or '_' (RFC 5321 4.1.2 Domain, with '_' as Postfix allows).
	// Addresses are refused with ErrAddress: IP addresses, address
	// literals, and names whose last label is all digits (RFC 1123 2.1 and
	// RFC 3696 2: a top-level label is never all-numeric, so "127.1" and
	// "x.1.2.3.4" are addresses or addresses in disguise, never hosts).
	Mail Profile = iota + 1
	// Pattern is an MTA-STS mx pattern (RFC 8461 3.2, 4.1): a Mail name,
	// or "*." followed by one. The wildcard is only ever the whole
	// left-most label; "*.example" is valid, "*", "a.*.example" and
	// "mx*.example" are not.
	Pattern
	// DNSID is a DNS-ID presented in a certificate (RFC 6125 6.4): a Mail
	// name, or "*." followed by a Mail name of at least two labels, as
	// tlsverify matches them (RFC 6125 6.4.3, RFC 7672 3.2.3: the
	// wildcard is the whole left-most label and never covers a top-level
	// domain, so "*.com" is refused).
	DNSID
	// Owner is a DNS owner name as the module builds or queries it:
	// "_25._tcp.mx.example", "_mta-sts.example", "_smtp._tls.example".
	// Labels hold letters, digits, '-' and '_' with hyphens anywhere, and
	// nothing looks like an address here ("4.3.2.1.in-addr.arpa" and
	// even "1.2.3.4" are owner names). No wildcard.
	Owner
)

// maxInput bounds the input Normalize looks at: a U-label character is at
// most 4 octets of UTF-8 and costs at least one octet of A-label, so no
// longer input is a name of at most 253 octets (barring characters that
// IDNA maps to nothing, which nobody needs hundreds of). It keeps IDNA
// work on hostile input bounded.
const maxInput = 4*253 + 12

var profileNames = [...]string{
	Mail:    "mail domain",
	Pattern: "mx pattern",
	DNSID:   "DNS-ID",
	Owner:   "DNS owner name",
}

// String returns what the profile's names are, for error messages.
func (p Profile) String() string {
	if p > 0 && int(p) < len(profileNames) {
		return profileNames[p]
	}
	return "name"
}

// host reports whether the profile's names are host names: no hyphen at
// either end of a label, no addresses.
func (p Profile) host() bool { return p == Mail || p == Pattern || p == DNSID }

// minAfterWildcard returns how many labels must follow a left-most "*"
// label, or 0 if the profile allows no wildcard.
func (p Profile) minAfterWildcard() int {
	switch p {
	case Pattern:
		return 1
	case DNSID:
		return 2
	}
	return 0
}

// Normalize returns s in canonical form (lowercase A-labels without the
// trailing dot) if it is valid in profile p, or an *Error saying why not.
// A canonical name is returned as is, without allocating.
func (p Profile) Normalize(s string) (string, error) {
	if p.String() == "name" {
		return "", p.fail(s, ErrSyntax, "unknown profile")
	}
	if len(s) > maxInput {
		return "", p.fail(s, ErrSyntax, "name longer than 253 octets")
	}
	name, dot := strings.CutSuffix(s, ".")
	if name == "" {
		return "", p.fail(s, ErrEmpty, "empty name")
	}
	ascii, upper := true, false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	switch {
	case !ascii:
		if !utf8.ValidString(name) {
			return "", p.fail(s, ErrSyntax, "invalid UTF-8")
		}
		a, reason := toASCII(name)
		if reason != "" {
			return "", p.fail(s, ErrIDNA, reason)
		}
		// IDNA maps U+3002 and its kin to '.': one may be the
		// trailing dot, if the input had no other.
		if !dot {
			a = strings.TrimSuffix(a, ".")
		}
		name = strings.ToLower(a)
	case upper:
		name = strings.ToLower(name)
	}
	if reason, err := p.check(name); err != nil {
		return "", p.fail(s, err, reason)
	}
	return name, nil
}

// toASCII converts each label holding a non-ASCII character with the
// IDNA2008 lookup profile and leaves the ASCII labels to check. The
// caller has checked that name is valid UTF-8 (IDNA would otherwise
// replace invalid bytes with U+FFFD and convert that).
func toASCII(name string) (string, string) {
	labels := strings.Split(name, ".")
	for i, label := range labels {
		if isASCII(label) {
			continue
		}
		a, err := idna.Lookup.ToASCII(label)
		if err != nil || !isASCII(a) {
			return "", "label refused by IDNA2008 lookup"
		}
		labels[i] = a
	}
	return strings.Join(labels, "."), ""
}

// check checks a lowercase ASCII name without the trailing dot against
// the profile's rules, in one pass: Match runs it for every pattern.
func (p Profile) check(name string) (reason string, err error) {
	if name == "" {
		return "empty label", ErrSyntax
	}
	if len(name) > 253 {
		return "name longer than 253 octets", ErrSyntax // RFC 1035 2.3.4
	}
	host := p.host()
	if host && IsAddress(name) {
		return "address literal", ErrAddress
	}
	i := 0
	if min := p.minAfterWildcard(); min > 0 && strings.HasPrefix(name, "*.") {
		if strings.Count(name, ".") < min {
			return "wildcard over too few labels", ErrSyntax
		}
		i = 2
	}
	label, digits := i, true
	for ; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			switch n := i - label; {
			case n == 0:
				return "empty label", ErrSyntax
			case n > 63:
				return "label longer than 63 octets", ErrSyntax // RFC 1035 2.3.4
			case host && (name[label] == '-' || name[i-1] == '-'):
				return "label starts or ends with a hyphen", ErrSyntax // RFC 5321 4.1.2
			}
			if i < len(name) {
				label, digits = i+1, true
			}
			continue
		}
		switch c := name[i]; {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z', c == '-', c == '_':
			digits = false
		case c == '*':
			return "misplaced wildcard", ErrSyntax
		default:
			return "character not allowed in a name", ErrSyntax
		}
	}
	if host && digits {
		// RFC 1123 2.1, RFC 3696 2: a top-level label is never
		// all-numeric; inet_aton reads "127.1" as 127.0.0.1.
		return "all-numeric top-level label", ErrAddress
	}
	return "", nil
}

func (p Profile) fail(s string, err error, reason string) *Error {
	return &Error{Profile: p, Name: s, Reason: reason, Err: err}
}

// IsAddress reports whether s is an IP address, bracketed or not
// ("192.0.2.1", "[192.0.2.1]", "[IPv6:2001:db8::1]", "2001:db8::1").
func IsAddress(s string) bool {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return true
	}
	// Only digits, dots, hex letters and colons can form an address:
	// skip ParseAddr (and its error allocation) for ordinary names.
	colon := strings.IndexByte(s, ':') >= 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || colon && (c == ':' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '%')) {
			return false
		}
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
