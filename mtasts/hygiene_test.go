package mtasts_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
)

var invalidNames = map[string]string{
	"invalid utf-8": "\xff\xfe.example",
	"crlf":          "a\r\nb.example",
	"nul":           "a\x00b.example",
	"300 bytes":     strings.Repeat(strings.Repeat("a", 59)+".", 5) + "example",
	"empty label":   "a..example",
}

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

// TestInvalidNamesAtEveryEntryPoint (issue 13, point 4): no entry point
// looks up or fetches a rewritten name.
func TestInvalidNamesAtEveryEntryPoint(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	c := &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient()}
	ctx := context.Background()
	entry := map[string]func(string) error{
		"Client.Lookup":  func(n string) error { _, err := c.Lookup(ctx, n); return err },
		"Client.Recheck": func(n string) error { _, err := c.Recheck(ctx, n); return err },
		"Fetch":          func(n string) error { _, err := mtasts.Fetch(ctx, w.HTTPClient(), n); return err },
		"LookupRecord":   func(n string) error { _, err := mtasts.LookupRecord(ctx, w.Resolver(), n); return err },
	}
	for ename, f := range entry {
		for nname, name := range invalidNames {
			t.Run(ename+"/"+nname, func(t *testing.T) {
				err := f(name)
				var e *mtasts.Error
				if !errors.As(err, &e) || e.Kind != mtasts.KindInvalidDomain {
					t.Fatalf("err %v, want KindInvalidDomain", err)
				}
			})
		}
	}
}

// TestErrorsQuoteUntrustedText (issue 13, point 5): names, policy lines
// and wrapped errors never reach Error() or a warning raw or unbounded.
func TestErrorsQuoteUntrustedText(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	c := &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient()}
	for name, s := range hostileText {
		t.Run(name, func(t *testing.T) {
			_, err := c.Lookup(context.Background(), s)
			if err == nil {
				t.Fatal("accepted")
			}
			checkSafe(t, "Lookup", err.Error())
			_, err = mtasts.ParsePolicy([]byte("version: STSv1\nmode: enforce\nmax_age: 86400\nmx: " + s + "\n"))
			if err == nil {
				t.Fatal("policy accepted")
			}
			checkSafe(t, "ParsePolicy mx", err.Error())
			_, err = mtasts.ParsePolicy([]byte("version: STSv1\n" + s + ": x\n"))
			if err == nil {
				t.Fatal("policy accepted")
			}
			checkSafe(t, "ParsePolicy key", err.Error())
			_, err = mtasts.ParseRecord("v=STSv1; id=" + s)
			if err == nil {
				t.Fatal("record accepted")
			}
			checkSafe(t, "ParseRecord", err.Error())
			e := &mtasts.Error{Kind: mtasts.KindHTTPStatus, Domain: s, StatusCode: 500, Reason: s, Err: errors.New(s)}
			checkSafe(t, "Error", e.Error())
			for k := mtasts.WarningKind(0); k < 8; k++ {
				checkSafe(t, "Warning", mtasts.Warning{Kind: k, Subject: s}.String())
			}
		})
	}
}
