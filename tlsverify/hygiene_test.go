package tlsverify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/smtptls/smtptls/tlsverify"
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

// TestErrorQuotesUntrustedText (issue 13, point 5): a reference name, a
// reason and a wrapped error (x509 errors quote certificate names) reach
// Error() escaped and bounded.
func TestErrorQuotesUntrustedText(t *testing.T) {
	t.Parallel()
	for name, s := range hostileText {
		e := &tlsverify.Error{Kind: tlsverify.KindNameMismatch, Name: s, Depth: -1, Reason: s, Err: errors.New(s)}
		checkSafe(t, name, e.Error())
	}
}
