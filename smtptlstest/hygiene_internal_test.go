package smtptlstest

import (
	"errors"
	"strings"
	"testing"
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

// TestPeerErrorQuotesUntrustedText (issue 13, point 5): a server's reply
// reaches Outcome.Err escaped and bounded, and still unwraps.
func TestPeerErrorQuotesUntrustedText(t *testing.T) {
	t.Parallel()
	for name, s := range hostileText {
		inner := errors.New("smtp: 550 " + s)
		err := error(peerError{inner})
		checkSafe(t, name, err.Error())
		if !errors.Is(err, inner) {
			t.Errorf("%s: does not unwrap", name)
		}
	}
}
