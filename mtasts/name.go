package mtasts

import (
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// normalizeDomain returns name as lowercase A-labels without the trailing
// dot, accepting any case, one trailing dot and U-labels. Address literals
// and malformed names are refused: RFC 8461 3.4 gives address literals no
// policy, and a name that is not a host name has no mta-sts.<domain> host.
func normalizeDomain(name string) (string, error) {
	s, reason := normalizeName(name)
	if reason != "" {
		return "", &Error{Kind: KindInvalidDomain, Reason: reason + ": " + quoteShort(name)}
	}
	return s, nil
}

// normalizeName is normalizeDomain without the error allocation, for
// Match's hot path. It returns the reason on failure.
func normalizeName(name string) (string, string) {
	if len(name) > 0 && name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	if name == "" {
		return "", "empty name"
	}
	if name[0] == '[' {
		return "", "address literal"
	}
	if ascii, lower := ldhASCII(name); ascii {
		if !lower {
			name = strings.ToLower(name)
		}
	} else {
		a, err := idna.Lookup.ToASCII(name)
		if err != nil {
			return "", "invalid internationalized name"
		}
		name = strings.ToLower(a)
		if a, _ := ldhASCII(name); !a {
			return "", "invalid internationalized name"
		}
	}
	if reason := checkHostname(name); reason != "" {
		return "", reason
	}
	return name, ""
}

// ldhASCII reports whether s holds only letters, digits, hyphens and
// dots, and whether it holds no upper-case letter.
func ldhASCII(s string) (ascii, lower bool) {
	lower = true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
		case c >= 'A' && c <= 'Z':
			lower = false
		default:
			return false, false
		}
	}
	return true, lower
}

// checkHostname checks a lowercase LDH name against RFC 1035 / RFC 5321
// host name syntax and length limits, and refuses IP addresses.
func checkHostname(s string) string {
	if len(s) > 253 {
		return "name longer than 253 octets"
	}
	// RFC 3696 2: a top-level domain is never all-numeric, so such a name
	// is an IPv4 address ("192.0.2.1") or one in disguise ("x.1.2.3.4"),
	// never a host. (IPv6 addresses never get here: ':' is not LDH.)
	if tld := s[strings.LastIndexByte(s, '.')+1:]; strings.Trim(tld, "0123456789") == "" {
		return "all-numeric top-level label"
	}
	for label := range strings.SplitSeq(s, ".") {
		switch {
		case label == "":
			return "empty label"
		case len(label) > 63:
			return "label longer than 63 octets"
		case label[0] == '-' || label[len(label)-1] == '-':
			return "label starts or ends with a hyphen"
		}
	}
	return ""
}

// quoteShort quotes s for an error message, cut to a sane length: names
// come from peers and logs must stay bounded.
func quoteShort(s string) string {
	const max = 80
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
