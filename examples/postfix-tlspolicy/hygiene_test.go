package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestLogQuotesUntrustedKeys (issue 13, point 5): a key from Postfix (the
// next hop of a message, chosen by whoever addressed it) and the
// evaluation error reach the log escaped and bounded.
func TestLogQuotesUntrustedKeys(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	for name, key := range map[string]string{
		"crlf":   "evil.example\r\nlevel=INFO msg=forged",
		"nul":    "evil\x00.example",
		"ansi":   "\x1b[31mevil\x1b[0m.example",
		"100 kB": strings.Repeat("a", 100<<10) + ".example",
	} {
		for _, h := range []func(*bytes.Buffer) slog.Handler{
			func(b *bytes.Buffer) slog.Handler {
				return slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
			},
			func(b *bytes.Buffer) slog.Handler {
				return slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
			},
		} {
			var buf bytes.Buffer
			r := &Responder{Evaluator: &smtptls.Evaluator{Resolver: w.Resolver(), DisableSTS: true}, Logger: slog.New(h(&buf))}
			r.Lookup(context.Background(), "tlspolicy", key)
			r.Lookup(context.Background(), "tlspolicy", "["+key+"]:25")
			for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
				if strings.ContainsAny(line, "\r\x00\x1b") || len(line) > 2048 {
					t.Errorf("%s: %d bytes: %.200q", name, len(line), line)
				}
			}
			if n := strings.Count(buf.String(), "\n"); n != 2 {
				t.Errorf("%s: %d log lines, want 2: %.300q", name, n, buf.String())
			}
		}
	}
}
