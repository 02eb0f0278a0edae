package dane_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestLookupInvalidNames: every invalid name is KindName, never looked
// up as a different name (issue 13, point 4).
func TestLookupInvalidNames(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	for name, host := range map[string]string{
		"invalid utf-8": "\xff\xfe.example",
		"crlf":          "a\r\nb.example",
		"nul":           "a\x00b.example",
		"300 bytes":     strings.Repeat(strings.Repeat("a", 59)+".", 5) + "example",
		"empty label":   "a..example",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := dane.Lookup(context.Background(), w.Resolver(), host, 25)
			var e *dane.Error
			if !errors.As(err, &e) || e.Kind != dane.KindName {
				t.Fatalf("policy %+v err %v, want a KindName error", p, err)
			}
		})
	}
}

// TestErrorQuotesUntrustedText (issue 13, point 5).
func TestErrorQuotesUntrustedText(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	for name, s := range map[string]string{
		"crlf":   "evil.example\r\n250 OK\r\n",
		"nul":    "evil\x00.example",
		"ansi":   "\x1b[31mevil\x1b[0m.example",
		"100 kB": strings.Repeat("a", 100<<10) + ".example",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := dane.Lookup(context.Background(), w.Resolver(), s, 25)
			if err == nil {
				t.Fatal("accepted")
			}
			for what, msg := range map[string]string{
				"Lookup": err.Error(),
				"Error":  (&dane.Error{Kind: dane.KindTLSA, Host: s, Name: "_25._tcp." + s, Err: errors.New(s)}).Error(),
				"resolver.Error": (&dane.Error{Kind: dane.KindAddress, Host: s, Name: s,
					Err: &resolver.Error{Name: s, Kind: resolver.KindServFail, Reason: s, Err: errors.New(s)}}).Error(),
			} {
				if strings.ContainsAny(msg, "\r\n\x00\x1b") || len(msg) > 1024 {
					t.Errorf("%s: %d bytes, %.200q", what, len(msg), msg)
				}
			}
		})
	}
}
