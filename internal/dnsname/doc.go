// Package dnsname is the one domain name normaliser of smtptls: every
// package except resolver (which speaks DNS wire names) turns the names it
// is given into canonical form here, and only here is golang.org/x/net/idna
// imported. It is a leaf: it imports nothing of this module, so any
// package may import it.
//
// # Contract
//
// Input: any case, at most one trailing dot, and U-labels, which are
// converted with the IDNA2008 lookup profile (RFC 5891 5, UTS #46
// mapping, non-transitional, as idna.Lookup). Output: lowercase A-labels
// without the trailing dot, at most 253 octets, each label 1 to 63
// octets (RFC 1035 2.3.4). Normalize is idempotent, and its output is
// pure ASCII and valid in the same profile.
//
// A name that is not valid in its profile is an error, never rewritten
// into a different name: invalid UTF-8 (which IDNA would silently turn
// into U+FFFD), a U-label that IDNA2008 lookup refuses, empty labels
// ("a..b", ".a"), more than one trailing dot, labels over 63 or names over
// 253 octets in A-label form, and any ASCII character other than letters,
// digits, '-' and '_' (space, CR, LF, NUL and other controls included).
// The only changes Normalize makes are ASCII lowercasing, removing one
// trailing dot, and the mapping and Punycode conversion of IDNA2008
// lookup (so "ＥＸＡＭＰＬＥ.com" is "example.com" and "bücher.example" is
// "xn--bcher-kva.example").
//
// Labels that hold only ASCII are judged by the rules of their Profile and
// are not decoded: an ASCII "xn--" label is taken as given, as the DNS
// takes it. Labels with non-ASCII characters are converted one at a time,
// so that an ASCII label with '_' beside them stays allowed (the STD3
// rules of IDNA would refuse it).
//
// # Profiles
//
// Each kind of name is a Profile; see Mail, Pattern, DNSID and Owner.
// All accept '_' in labels: service labels such as _25._tcp are names, and
// Postfix delivers to host names with underscores, so refusing them would
// bounce mail that other MTAs deliver.
//
// # Errors
//
// Failures are *Error values wrapping one of ErrEmpty, ErrAddress,
// ErrSyntax or ErrIDNA, for callers to map onto their own error kinds
// (the root package's KindInvalidDomain, mtasts.KindInvalidDomain,
// tlsrpt.KindInvalid).
package dnsname
