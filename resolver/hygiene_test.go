package resolver_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

var hostileText = map[string]string{
	"crlf":   "evil.example\r\n250 OK\r\n",
	"nul":    "evil\x00.example",
	"ansi":   "\x1b[31mevil\x1b[0m.example",
	"100 kB": strings.Repeat("a", 100<<10) + ".example",
}

func checkSafe(t *testing.T, what, msg string) {
	t.Helper()
	if strings.ContainsAny(msg, "\r\n\x00\x1b") || len(msg) > 1024 {
		t.Errorf("%s: %d bytes, %.200q", what, len(msg), msg)
	}
}

// TestErrorsQuoteUntrustedText (issue 13, point 5): query names (a caller's
// or a CNAME target's), reasons and wrapped errors reach Error() escaped
// and bounded.
func TestErrorsQuoteUntrustedText(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	for name, s := range hostileText {
		t.Run(name, func(t *testing.T) {
			_, err := w.Resolver().Lookup(context.Background(), s, dns.TypeTLSA)
			if err == nil {
				t.Fatal("accepted")
			}
			checkSafe(t, "Stub.Lookup", err.Error())
			checkSafe(t, "Error", (&resolver.Error{Name: s, Type: dns.TypeA, Kind: resolver.KindBogus, Reason: s, Err: errors.New(s)}).Error())
			checkSafe(t, "CheckError", (&resolver.CheckError{Server: s, Kind: resolver.CheckUnreachable, Err: errors.New(s)}).Error())
		})
	}
}
