package tlsrpt

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMessageBuild(t *testing.T) {
	t.Parallel()
	r := sampleReport(t)
	date := time.Date(2024, 3, 1, 4, 5, 6, 0, time.UTC)
	m := &Message{
		From: "TLS Reports <tlsrpt-noreply@sender.example>",
		To:   []string{"a@example.com", "B <b@example.com>"},
		Date: date,
	}
	raw, err := m.Build(&r)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Build(&r)
	if err != nil || !bytes.Equal(raw, again) {
		t.Errorf("Build is not deterministic (%v)", err)
	}
	// Every line ends in CRLF and stays within RFC 5322 limits.
	for i, line := range strings.Split(string(raw), "\r\n") {
		if strings.ContainsAny(line, "\r\n") || len(line) > 998 {
			t.Errorf("line %d: %q", i, line)
		}
	}
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Error("message does not end with CRLF")
	}

	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"From":                 `"TLS Reports" <tlsrpt-noreply@sender.example>`,
		"To":                   `<a@example.com>, "B" <b@example.com>`,
		"Date":                 "Fri, 01 Mar 2024 04:05:06 +0000",
		"Subject":              "Report Domain: example.com Submitter: sender.example Report-ID: <2024-02-29_example.com@sender.example>",
		"Message-ID":           "<2024-02-29_example.com@sender.example>",
		"TLS-Report-Domain":    "example.com",
		"TLS-Report-Submitter": "sender.example",
		"TLS-Required":         "No",
		"Auto-Submitted":       "auto-generated",
		"MIME-Version":         "1.0",
	} {
		if got := msg.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("Content-Type: %q %v %v", mt, params, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, pt)
		if pt != MediaTypeGzip {
			continue
		}
		_, dp, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		if err != nil || dp["filename"] != r.FileName("sender.example", true) {
			t.Errorf("Content-Disposition %v (%v), want filename %q", dp, err, r.FileName("sender.example", true))
		}
		gz, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseReport(gz)
		if err != nil || !reflect.DeepEqual(*got, r) {
			t.Errorf("attachment = %+v, %v; want %+v", got, err, r)
		}
	}
	if !reflect.DeepEqual(types, []string{"text/plain", MediaTypeGzip}) {
		t.Errorf("parts %q", types)
	}
	got, err := ParseMessage(bytes.NewReader(raw))
	if err != nil || !reflect.DeepEqual(*got, r) {
		t.Errorf("ParseMessage = %+v, %v", got, err)
	}

	// An explicit submitter and Message-ID win over the derived ones.
	m2 := *m
	m2.Submitter = "MX.Sender.Example."
	m2.MessageID = "x.1@sender.example"
	raw2, err := m2.Build(&r)
	if err != nil {
		t.Fatal(err)
	}
	msg2, _ := mail.ReadMessage(bytes.NewReader(raw2))
	if msg2.Header.Get("TLS-Report-Submitter") != "mx.sender.example" || msg2.Header.Get("Message-ID") != "<x.1@sender.example>" ||
		!strings.Contains(msg2.Header.Get("Subject"), "Submitter: mx.sender.example Report-ID: <2024-02-29_example.com@mx.sender.example>") {
		t.Errorf("headers %v", msg2.Header)
	}
}

func TestMessageBuildErrors(t *testing.T) {
	t.Parallel()
	r := sampleReport(t)
	mixed := r
	mixed.Policies = append([]PolicyResult{{Policy: Policy{Type: PolicySTS, Domain: "other.example"}}}, r.Policies...)
	noContact := r
	noContact.ContactInfo = "https://sender.example/contact"
	ok := Message{From: "tlsrpt@sender.example", To: []string{"a@example.com"}}
	for _, tc := range []struct {
		name string
		m    Message
		r    *Report
	}{
		{"nil-report", ok, nil},
		{"no-from", Message{To: ok.To}, &r},
		{"bad-from", Message{From: "not an address", To: ok.To}, &r},
		{"no-to", Message{From: ok.From}, &r},
		{"header-injection", Message{From: ok.From, To: []string{"a@example.com\r\nBcc: x@evil.example"}}, &r},
		{"mixed-domains", ok, &mixed},
		{"no-policies", ok, &Report{}},
		{"bad-submitter", Message{From: ok.From, To: ok.To, Submitter: "bad domain!"}, &r},
		{"message-id-injection", Message{From: ok.From, To: ok.To, MessageID: "a@b>\r\nBcc: x@evil.example"}, &r},
		{"no-usable-submitter", Message{From: "x@[192.0.2.1]", To: ok.To}, &noContact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := tc.m.Build(tc.r)
			if k := kindOf(err); k != KindInvalid {
				t.Errorf("Build = %q, %v (kind %v), want kind %v", b, err, k, KindInvalid)
			}
		})
	}
	// The contact-info of a report that is not an address: the submitter
	// is the domain of From.
	raw, err := (&Message{From: "tlsrpt@Sender.Example", To: ok.To}).Build(&noContact)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := mail.ReadMessage(bytes.NewReader(raw))
	if got := msg.Header.Get("TLS-Report-Submitter"); got != "sender.example" {
		t.Errorf("TLS-Report-Submitter = %q", got)
	}
}

func TestParseMessage(t *testing.T) {
	t.Parallel()
	js := minimalReport
	gz := gzipBytes(t, []byte(js))
	b64 := base64.StdEncoding.EncodeToString(gz)
	wrapped := ""
	for len(b64) > 60 {
		wrapped += b64[:60] + "\r\n"
		b64 = b64[60:]
	}
	wrapped += b64
	report := func(ct, cte, body string) string {
		return "Content-Type: " + ct + "\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + body
	}
	multi := func(outer string, parts ...string) string {
		s := "Content-Type: " + outer + `; boundary="b1"` + "\r\n\r\npreamble\r\n"
		for _, p := range parts {
			s += "--b1\r\n" + p + "\r\n"
		}
		return s + "--b1--\r\n"
	}
	text := report("text/plain", "7bit", "hello")
	for _, tc := range []struct {
		name string
		msg  string
		kind Kind // KindUnknown: success
	}{
		{"report-gzip-base64", "Subject: x\r\n" + multi(`multipart/report; report-type="tlsrpt"`, text, report(MediaTypeGzip, "base64", wrapped)), KindUnknown},
		{"report-json-qp", multi(`multipart/report; report-type=TLSRPT`, report(MediaTypeJSON, "quoted-printable", strings.ReplaceAll(js, "=", "=3D"))), KindUnknown},
		{"report-base64-with-spaces", multi(`multipart/report; report-type=tlsrpt`, report(MediaTypeGzip, "base64", " "+strings.ReplaceAll(wrapped, "\r\n", " \r\n\t")+" ")), KindUnknown},
		{"nested-in-mixed", multi("multipart/mixed", text, strings.ReplaceAll(multi(`multipart/report; report-type=tlsrpt`, report(MediaTypeGzip, "base64", wrapped)), "b1", "b2")), KindUnknown},
		{"single-part-gzip", report(MediaTypeGzip, "base64", wrapped), KindUnknown},
		{"single-part-json", report(MediaTypeJSON, "8bit", js), KindUnknown},
		{"mislabelled-json-is-gzip", report(MediaTypeJSON, "base64", wrapped), KindUnknown},
		{"report-in-mixed", multi("multipart/mixed", report(MediaTypeGzip, "base64", wrapped)), KindNoReport},
		{"other-report-type", multi(`multipart/report; report-type=delivery-status`, report(MediaTypeGzip, "base64", wrapped)), KindNoReport},
		{"plain-text", "Subject: x\r\n\r\nhello", KindNoReport},
		{"application-json", multi(`multipart/report; report-type=tlsrpt`, report("application/json", "8bit", js)), KindNoReport},
		{"bad-report", multi(`multipart/report; report-type=tlsrpt`, report(MediaTypeJSON, "8bit", "{")), KindReportSyntax},
		{"bad-base64", report(MediaTypeGzip, "base64", "!!!!"), KindMessageSyntax},
		{"no-boundary", "Content-Type: multipart/report; report-type=tlsrpt\r\n\r\nx", KindMessageSyntax},
		{"bad-content-type", "Content-Type: /;;\r\n\r\nx", KindMessageSyntax},
		{"not-a-message", "no header line\r\n", KindMessageSyntax},
		{"too-deep", func() string {
			s := multi(`multipart/report; report-type=tlsrpt`, report(MediaTypeGzip, "base64", wrapped))
			for i := range 5 {
				s = strings.ReplaceAll(multi("multipart/mixed", s), "b1", "b"+string(rune('c'+i)))
			}
			return s
		}(), KindNoReport},
		{"too-many-parts", multi(`multipart/report; report-type=tlsrpt`, append(slices.Repeat([]string{text}, maxMIMEParts), report(MediaTypeGzip, "base64", wrapped))...), KindNoReport},
		{"too-large", "Subject: x\r\n\r\n" + strings.Repeat("x", MaxMessageSize), KindTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseMessage(strings.NewReader(tc.msg))
			if tc.kind == KindUnknown {
				if err != nil {
					t.Fatalf("ParseMessage: %v", err)
				}
				if r.ReportID != "r" || r.PolicyDomain() != "example.com" {
					t.Errorf("report %+v", r)
				}
				return
			}
			if k := kindOf(err); k != tc.kind {
				t.Errorf("ParseMessage = %+v, %v (kind %v), want kind %v", r, err, k, tc.kind)
			}
		})
	}
}
