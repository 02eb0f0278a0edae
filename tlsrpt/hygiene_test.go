package tlsrpt_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

func report(domain string) *tlsrpt.Report {
	return &tlsrpt.Report{
		OrganizationName: "Sender",
		ContactInfo:      "tlsrpt@sender.example",
		ReportID:         "1",
		DateRange:        tlsrpt.DateRange{Start: time.Unix(0, 0).UTC(), End: time.Unix(86399, 0).UTC()},
		Policies:         []tlsrpt.PolicyResult{{Policy: tlsrpt.Policy{Type: tlsrpt.PolicySTS, Domain: domain}}},
	}
}

// TestInvalidNames (issue 13, point 4): the names this package acts on
// (a report's policy domain, the submitter domain) are refused when
// invalid, never rewritten.
func TestInvalidNames(t *testing.T) {
	t.Parallel()
	for name, n := range map[string]string{
		"invalid utf-8": "\xff\xfe.example",
		"crlf":          "a\r\nb.example",
		"nul":           "a\x00b.example",
		"300 bytes":     strings.Repeat(strings.Repeat("a", 59)+".", 5) + "example",
		"empty label":   "a..example",
	} {
		t.Run(name, func(t *testing.T) {
			m := &tlsrpt.Message{From: "tlsrpt@sender.example", To: []string{"rua@recipient.example"}}
			_, err := m.Build(report(n))
			var e *tlsrpt.Error
			if !errors.As(err, &e) || e.Kind != tlsrpt.KindInvalid {
				t.Errorf("Build with policy domain: err %v, want KindInvalid", err)
			}
			m.Submitter = n
			_, err = m.Build(report("recipient.example"))
			if !errors.As(err, &e) || e.Kind != tlsrpt.KindInvalid {
				t.Errorf("Build with submitter: err %v, want KindInvalid", err)
			}
			var a tlsrpt.Aggregator
			now := time.Now()
			a.Success(tlsrpt.Policy{Type: tlsrpt.PolicySTS, Domain: n}, now)
			if rs := a.Flush(now.Add(72*time.Hour), "Sender", "tlsrpt@sender.example"); len(rs) != 0 {
				t.Errorf("Aggregator reported for %q: %+v", n, rs)
			}
		})
	}
}

// TestErrorsQuoteUntrustedText (issue 13, point 5): records, report
// fields, addresses, URIs and HTTP bodies reach Error() escaped and
// bounded.
func TestErrorsQuoteUntrustedText(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]string{
		"crlf":   "evil.example\r\n250 OK\r\n",
		"nul":    "evil\x00.example",
		"ansi":   "\x1b[31mevil\x1b[0m.example",
		"100 kB": strings.Repeat("a", 100<<10) + ".example",
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(s))
			}))
			defer srv.Close()
			msgs := map[string]string{
				"Error": (&tlsrpt.Error{Kind: tlsrpt.KindHTTPStatus, StatusCode: 400, Reason: s, Err: errors.New(s)}).Error(),
			}
			add := func(what string, err error) {
				if err == nil {
					t.Errorf("%s: accepted", what)
					return
				}
				msgs[what] = err.Error()
			}
			_, err := tlsrpt.ParseRecord("v=TLSRPTv1; rua=" + s)
			add("ParseRecord", err)
			_, err = tlsrpt.ParseReport([]byte(`{"organization-name":"x","date-range":{"start-datetime":"` + strings.ReplaceAll(s, "\x00", "\\u0000") + `"}}`))
			add("ParseReport", err)
			_, err = (&tlsrpt.Message{From: s, To: []string{"a@b.example"}}).Build(report("recipient.example"))
			add("Build From", err)
			_, err = (&tlsrpt.Message{From: "a@b.example", To: []string{"a@b.example"}, MessageID: s + " <"}).Build(report("recipient.example"))
			add("Build Message-ID", err)
			sub := &tlsrpt.Submitter{HTTPClient: srv.Client()}
			add("Submit URI", sub.Submit(context.Background(), "http://"+s, report("recipient.example")))
			add("Submit status", sub.Submit(context.Background(), srv.URL+"/"+s, report("recipient.example")))
			for what, msg := range msgs {
				if strings.ContainsAny(msg, "\r\n\x00\x1b") || len(msg) > 1024 {
					t.Errorf("%s: %d bytes, %.200q", what, len(msg), msg)
				}
			}
		})
	}
}
