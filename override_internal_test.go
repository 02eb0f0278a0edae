package smtptls

import (
	"slices"
	"testing"
)

// TestMatchNames: Postfix's keywords become the names they stand for when
// a host is tried (tls_client.c match_servername), and the defaults are
// Postfix's (smtp_tls_verify_cert_match = hostname,
// smtp_tls_secure_cert_match = nexthop, dot-nexthop).
func TestMatchNames(t *testing.T) {
	t.Parallel()
	const domain, host = "example.com", "mx.provider.net"
	for _, c := range []struct {
		ov   Override
		want []string
	}{
		{Override{Mode: OverrideVerify}, []string{"mx.provider.net"}},
		{Override{Mode: OverrideSecure}, []string{"example.com", ".example.com"}},
		{Override{Mode: OverrideSecure, Match: []string{}}, []string{"example.com", ".example.com"}},
		{Override{Mode: OverrideVerify, Match: []string{"nexthop", "dot-nexthop"}}, []string{"example.com", ".example.com"}},
		{Override{Mode: OverrideSecure, Match: []string{"HostName"}}, []string{"mx.provider.net"}},
		{Override{Mode: OverrideSecure, Match: []string{".Example.ORG", "mail.example.org."}}, []string{".example.org", "mail.example.org"}},
		{Override{Mode: OverrideDANE}, nil},
	} {
		got, err := matchNames(c.ov, domain, host)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("matchNames(%v %q) = %q, %v; want %q", c.ov.Mode, c.ov.Match, got, err, c.want)
		}
	}
}
