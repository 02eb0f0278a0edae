package mtasts

import (
	"github.com/smtptls/smtptls/internal/dnsname"
)

// normalizeDomain returns a policy domain in canonical form with the mail
// profile of internal/dnsname. Address literals and malformed names are
// refused: RFC 8461 3.4 gives address literals no policy, and a name that
// is not a host name has no mta-sts.<domain> host. A name that is not
// valid is KindInvalidDomain wrapping the *dnsname.Error, never rewritten.
func normalizeDomain(name string) (string, error) {
	d, err := dnsname.Mail.Normalize(name)
	if err != nil {
		return "", &Error{Kind: KindInvalidDomain, Err: err}
	}
	return d, nil
}
