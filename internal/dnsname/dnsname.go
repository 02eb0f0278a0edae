// Package dnsname normalises domain names the way every package of smtptls
// except resolver returns them: lowercase A-labels without the trailing
// dot. It accepts any case, one trailing dot and U-labels (converted with
// the IDNA lookup profile of golang.org/x/net/idna, RFC 5891).
package dnsname

import (
	"errors"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Errors returned by Normalize.
var (
	ErrEmpty   = errors.New("empty name")
	ErrAddress = errors.New("address literal, not a name")
	ErrSyntax  = errors.New("invalid domain name")
	ErrIDNA    = errors.New("invalid internationalized name")
)

// Normalize returns name as lowercase A-labels without the trailing dot.
// Underscores are allowed (service names such as _25._tcp are names too);
// IP addresses and bracketed address literals are refused with ErrAddress.
func Normalize(name string) (string, error) {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", ErrEmpty
	}
	if IsAddress(name) {
		return "", ErrAddress
	}
	if !ascii(name) {
		a, err := idna.Lookup.ToASCII(name)
		if err != nil || !ascii(a) {
			return "", ErrIDNA
		}
		name = a
	}
	name = strings.ToLower(name)
	if len(name) > 253 {
		return "", ErrSyntax
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", ErrSyntax
		}
	}
	return name, nil
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

// ascii reports whether s holds only letters, digits, '-', '_' and '.'.
func ascii(s string) bool {
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
