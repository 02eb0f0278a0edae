package dnssec

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

// TestErrorQuotesUntrustedText (issue 13, point 5): reasons name zones
// and owners from DNS data.
func TestErrorQuotesUntrustedText(t *testing.T) {
	t.Parallel()
	for name, s := range hostileText {
		checkSafe(t, name, (&Error{Kind: KindBogus, Reason: s, Err: errors.New(s)}).Error())
	}
}
