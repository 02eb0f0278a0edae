package dnsname

import (
	"errors"

	"github.com/smtptls/smtptls/internal/quote"
)

// Sentinel errors wrapped by *Error: what is wrong with a name.
var (
	// ErrEmpty: the name is "" or ".".
	ErrEmpty = errors.New("empty name")
	// ErrAddress: an IP address or an address literal ("192.0.2.1",
	// "[192.0.2.1]", "[IPv6:2001:db8::1]"), or a name whose last label is
	// all digits, which parsers such as inet_aton read as an IPv4 address
	// ("127.1"). Only the profiles for host names refuse these.
	ErrAddress = errors.New("address, not a name")
	// ErrSyntax: invalid UTF-8, a character outside the profile, an empty
	// label, a label or name too long, a misplaced hyphen or wildcard.
	ErrSyntax = errors.New("invalid domain name")
	// ErrIDNA: a label with non-ASCII characters that IDNA2008 lookup
	// (RFC 5891 5) refuses.
	ErrIDNA = errors.New("invalid internationalized name")
)

// Error reports why a name is not valid in a Profile.
type Error struct {
	// Profile is the profile the name was checked against.
	Profile Profile
	// Name is the input as given. It is untrusted: Error quotes and
	// bounds it.
	Name string
	// Reason says which rule the name breaks, e.g. "empty label".
	Reason string
	// Err is ErrEmpty, ErrAddress, ErrSyntax or ErrIDNA.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	return "dnsname: invalid " + e.Profile.String() + " " + quote.String(e.Name) + ": " + e.Reason
}

// Unwrap returns the sentinel, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }
