package tlsrpt

import (
	"net/url"
	"testing"
)

// checkURI skips url.Parse for opaque URIs (mailto:...). Whatever it
// accepts, url.Parse must accept too: the skip never lets through a URI
// the full check refused.
func FuzzCheckURI(f *testing.F) {
	for _, s := range []string{
		"mailto:tlsrpt@example.com", "mailto:a@example.com?subject=x#frag", "mailto:%zz@example.com",
		"https://reports.example.com/v1", "https://[::1", "https://host:port/", "https://a:1:2/",
		"x:", "x:?", "x:#", "x:/path", "urn:ietf:params:x", "mailto:a%2Cb@example.com",
		"https://user@host/", "ftp://[fe80::1%25en0]/", "a:b#c#d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkURI(s) != "" {
			return
		}
		if _, err := url.Parse(s); err != nil {
			t.Fatalf("checkURI accepted %q, url.Parse refuses it: %v", s, err)
		}
	})
}

// TestCheckURIHierarchical: a hierarchical URI is still checked for
// structure (the part url.Parse validates).
func TestCheckURIHierarchical(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"https://[::1/", "https://host:port/", "https://a:1:2/", "https://[192.0.2.1]/"} {
		if checkURI(s) == "" {
			t.Errorf("checkURI accepted %q", s)
		}
	}
	for _, s := range []string{"mailto:tlsrpt@example.com", "https://reports.example.com/v1/tlsrpt", "mailto:a@example.com?subject=TLS#x"} {
		if why := checkURI(s); why != "" {
			t.Errorf("checkURI refused %q: %s", s, why)
		}
	}
}
