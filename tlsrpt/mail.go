package tlsrpt

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/mail"
	"strings"
	"time"

	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/internal/quote"
)

// Message builds the e-mail form of a report (RFC 8460 5.3) for the
// mailto destinations of a TLS-RPT record (Record.Mailto).
//
// The result is a complete RFC 5322 message with CRLF line endings, ready
// for the MTA to sign and send. Signing is the MTA's job: RFC 8460 3
// requires a valid DKIM signature by the reporting domain (receivers
// MUST ignore unsigned reports) without the "l=" tag, and RFC 8460 5.3
// asks that TLS-Report-Domain and TLS-Report-Submitter be signed.
//
// Reports must be delivered despite TLS failures and must not cause
// reports about themselves (RFC 8460 3: sending MTAs "MUST deliver reports
// despite any TLS-related failures and SHOULD NOT include this SMTP
// session in the next report"). The message therefore carries
// "TLS-Required: No" (RFC 8689), which asks the MTA to deliver it even
// when DANE or MTA-STS validation fails (STARTTLS is still attempted), and
// "Auto-Submitted: auto-generated" (RFC 3834), which keeps responders from
// answering it. The MTA must honour TLS-Required: No for these messages
// and must not count their delivery sessions in an Aggregator; it should
// mark the messages it queues from Build rather than trust the header on
// arbitrary mail.
type Message struct {
	// From is the author address (an addr-spec, optionally with a
	// display name), for example "tlsrpt-noreply@mail.example.net".
	// Required. Its domain is the one whose DKIM signature receivers
	// expect.
	From string
	// To holds the recipient addresses. Required.
	To []string
	// Submitter is the domain of the report submitter for the
	// TLS-Report-Submitter field, the Subject and the file name. RFC
	// 8460 5.3 says it MUST match the domain of the report's
	// contact-info. Empty means that domain when contact-info is an
	// address, else the domain of From.
	Submitter string
	// Date is the Date field. Zero means time.Now().
	Date time.Time
	// MessageID is the Message-ID field without angle brackets. Empty
	// means one derived from the report-id and the submitter, which is
	// stable for a report so that resending it is seen as a duplicate.
	MessageID string
}

// Build renders r as a multipart/report; report-type="tlsrpt" message
// (RFC 8460 5.3, RFC 6522): a text/plain part for humans, then the
// gzip-compressed report as an application/tlsrpt+gzip attachment named
// by Report.FileName. The Subject is "Report Domain: <policy domain>
// Submitter: <submitter> Report-ID: <id@submitter>", folded as in the RFC.
//
// Errors are *Error with KindInvalid: no From or To, an address that does
// not parse, a report without a single policy domain, no usable
// submitter domain.
func (m *Message) Build(r *Report) ([]byte, error) {
	invalid := func(reason string) ([]byte, error) {
		return nil, &Error{Kind: KindInvalid, Reason: reason}
	}
	if r == nil {
		return invalid("nil report")
	}
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return invalid("From address " + quote.String(m.From))
	}
	if len(m.To) == 0 {
		return invalid("no To address")
	}
	var to []string
	for _, t := range m.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return invalid("To address " + quote.String(t))
		}
		to = append(to, a.String())
	}
	domain := r.PolicyDomain()
	if d, err := dnsname.Mail.Normalize(domain); err == nil {
		domain = d
	} else {
		return invalid("report has no single valid policy domain")
	}
	sub := m.Submitter
	if sub == "" {
		if c, err := mail.ParseAddress(r.ContactInfo); err == nil {
			sub = addrDomain(c.Address)
		} else {
			sub = addrDomain(from.Address)
		}
	}
	submitter, err := dnsname.Mail.Normalize(sub)
	if err != nil {
		return invalid("submitter domain " + quote.String(sub))
	}
	msgID := m.MessageID
	if msgID == "" {
		msgID = idLeft(r) + "@" + submitter
	}
	if strings.ContainsAny(msgID, "\r\n<> \t") {
		return invalid("Message-ID " + quote.String(msgID))
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	gz, err := r.Gzip()
	if err != nil {
		return nil, &Error{Kind: KindInvalid, Reason: "rendering report", Err: err}
	}
	sum := sha256.Sum256(gz)
	boundary := "tlsrpt-" + hex.EncodeToString(sum[:16])
	file := r.FileName(submitter, true)

	var b bytes.Buffer
	hdr := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	hdr("From", from.String())
	hdr("To", strings.Join(to, ",\r\n "))
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("Subject", "Report Domain: "+domain+"\r\n Submitter: "+submitter+"\r\n Report-ID: <"+idLeft(r)+"@"+submitter+">")
	hdr("Message-ID", "<"+msgID+">")
	hdr("TLS-Report-Domain", domain)
	hdr("TLS-Report-Submitter", submitter)
	hdr("TLS-Required", "No")
	hdr("Auto-Submitted", "auto-generated")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/report; report-type="tlsrpt";`+"\r\n\t"+`boundary="`+boundary+`"`)
	b.WriteString("\r\nThis is a multipart message in MIME format.\r\n")

	b.WriteString("\r\n--" + boundary + "\r\n")
	hdr("Content-Type", `text/plain; charset="us-ascii"`)
	hdr("Content-Transfer-Encoding", "7bit")
	b.WriteString("\r\nThis is an aggregate TLS report from " + submitter + "\r\n")

	b.WriteString("\r\n--" + boundary + "\r\n")
	hdr("Content-Type", MediaTypeGzip)
	hdr("Content-Transfer-Encoding", "base64")
	hdr("Content-Disposition", "attachment;\r\n\tfilename=\""+file+"\"")
	b.WriteString("\r\n")
	enc := base64.StdEncoding.EncodeToString(gz)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

func addrDomain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// idLeft turns a report-id into an RFC 5322 dot-atom-text for the
// Report-ID of the Subject and for the Message-ID: bytes outside atext
// become ".", runs of dots collapse, and the result is cut to 128 bytes.
// A report-id with nothing usable gives the report's UniqueID.
func idLeft(r *Report) string {
	var b strings.Builder
	dot := true // suppress leading dots
	for i := 0; i < len(r.ReportID) && b.Len() < 128; i++ {
		c := r.ReportID[i]
		if isAlnum(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0 {
			b.WriteByte(c)
			dot = false
		} else if !dot {
			b.WriteByte('.')
			dot = true
		}
	}
	s := strings.TrimRight(b.String(), ".")
	if s == "" {
		return r.UniqueID()
	}
	return s
}
