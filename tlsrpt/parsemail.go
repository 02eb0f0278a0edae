package tlsrpt

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/smtptls/smtptls/internal/quote"
)

// Bounds for ParseMessage.
const (
	// MaxMessageSize bounds a report e-mail: a MaxReportSize report, base64
	// encoded, plus headers.
	MaxMessageSize = 16 << 20
	maxMIMEDepth   = 4  // nested multiparts
	maxMIMEParts   = 32 // parts per multipart
)

// ParseMessage extracts and parses the report of a TLS report e-mail
// (RFC 8460 5.3) read from r, at most MaxMessageSize bytes.
//
// The report is the first application/tlsrpt+gzip or
// application/tlsrpt+json part found directly inside a multipart/report
// with report-type "tlsrpt" (searched through at most 4 levels of
// multipart nesting and 32 parts each), or the whole message when its own
// type is one of these. Parts of other multipart types are never taken
// as reports. base64 and quoted-printable transfer encodings are decoded;
// the report body is then parsed by ParseReport, which detects gzip by
// content, not by label.
//
// It does not check DKIM: RFC 8460 3 tells receivers to ignore reports
// without a valid DKIM signature of the reporting domain, which is the
// receiving MTA's job.
//
// Errors are *Error: KindNoReport (no report part), KindMessageSyntax,
// KindTooLarge, or the errors of ParseReport for the report part.
func ParseMessage(r io.Reader) (*Report, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxMessageSize+1))
	if err != nil {
		return nil, &Error{Kind: KindMessageSyntax, Err: err}
	}
	if len(data) > MaxMessageSize {
		return nil, &Error{Kind: KindTooLarge, Reason: "message larger than MaxMessageSize"}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return nil, &Error{Kind: KindMessageSyntax, Err: err}
	}
	return findReport(textproto.MIMEHeader(msg.Header), msg.Body, true, 0)
}

// findReport looks for the report in one MIME entity. reportOK says
// whether the entity itself may be the report: true at the top level and
// directly inside a multipart/report.
func findReport(h textproto.MIMEHeader, body io.Reader, reportOK bool, depth int) (*Report, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		if reportOK && depth == 0 {
			return nil, &Error{Kind: KindMessageSyntax, Reason: "Content-Type " + quote.String(ct), Err: err}
		}
		return nil, &Error{Kind: KindNoReport}
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= maxMIMEDepth {
			return nil, &Error{Kind: KindNoReport}
		}
		inReport := mt == "multipart/report" && strings.EqualFold(params["report-type"], "tlsrpt")
		boundary := params["boundary"]
		if boundary == "" {
			return nil, &Error{Kind: KindMessageSyntax, Reason: "multipart without boundary"}
		}
		mr := multipart.NewReader(body, boundary)
		for range maxMIMEParts {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, &Error{Kind: KindMessageSyntax, Err: err}
			}
			rep, err := findReport(p.Header, p, inReport, depth+1)
			if e, ok := errors.AsType[*Error](err); ok && e.Kind == KindNoReport {
				continue
			}
			return rep, err
		}
		return nil, &Error{Kind: KindNoReport}
	}
	if !reportOK || (mt != MediaTypeGzip && mt != MediaTypeJSON) {
		return nil, &Error{Kind: KindNoReport}
	}
	var dec io.Reader = body
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		dec = base64.NewDecoder(base64.StdEncoding, &base64Filter{r: body})
	case "quoted-printable":
		dec = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(io.LimitReader(dec, MaxReportSize+1))
	if err != nil {
		return nil, &Error{Kind: KindMessageSyntax, Reason: "report part transfer encoding", Err: err}
	}
	if len(b) > MaxReportSize {
		return nil, &Error{Kind: KindTooLarge, Reason: "report part larger than MaxReportSize"}
	}
	return ParseReport(b)
}

// base64Filter drops the bytes a base64 body may hold besides the
// alphabet (line breaks, which the decoder skips itself, and spaces and
// tabs, which it would refuse).
type base64Filter struct{ r io.Reader }

func (f *base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
