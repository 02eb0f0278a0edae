package tlsrpt

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/smtptls/smtptls/internal/quote"
)

// Kind classifies an Error.
type Kind uint8

const (
	// KindUnknown is the zero value and never set by this package.
	KindUnknown Kind = iota
	// KindNoRecord: no TXT record starting with "v=TLSRPTv1" exists; the
	// domain does not want reports (RFC 8460 3).
	KindNoRecord
	// KindMultipleRecords: more than one TLS-RPT TXT record exists
	// (RFC 8460 3: the domain does not implement TLS-RPT).
	KindMultipleRecords
	// KindRecordSyntax: the TLS-RPT TXT record breaks the RFC 8460 3
	// ABNF.
	KindRecordSyntax
	// KindReportSyntax: a report is not valid JSON, or lacks or
	// mistypes a field that even a tolerant reader needs (RFC 8460 4.4).
	KindReportSyntax
	// KindTooLarge: an input (report, decompressed report, message)
	// exceeds its size bound.
	KindTooLarge
	// KindCompression: a gzip report is corrupt.
	KindCompression
	// KindMessageSyntax: a report e-mail is not a parsable MIME message.
	KindMessageSyntax
	// KindNoReport: an e-mail holds no TLS report part (RFC 8460 5.3).
	KindNoReport
	// KindInvalid: the caller passed an argument this package cannot use
	// (a report without a policy domain, a header value with a line
	// break, a non-https report URI).
	KindInvalid
	// KindCanceled: the caller's context ended.
	KindCanceled
	// KindNetwork: an HTTPS submission failed before a response arrived
	// (connection, TLS, timeout, redirect refused).
	KindNetwork
	// KindHTTPStatus: the report server answered with a status other
	// than 2xx (RFC 8460 5.4).
	KindHTTPStatus
)

var kindNames = [...]string{
	KindUnknown:         "unknown",
	KindNoRecord:        "no tlsrpt record",
	KindMultipleRecords: "multiple tlsrpt records",
	KindRecordSyntax:    "invalid tlsrpt record",
	KindReportSyntax:    "invalid report",
	KindTooLarge:        "too large",
	KindCompression:     "invalid gzip",
	KindMessageSyntax:   "invalid report message",
	KindNoReport:        "no report in message",
	KindInvalid:         "invalid argument",
	KindCanceled:        "canceled",
	KindNetwork:         "network error",
	KindHTTPStatus:      "http status",
}

// String returns a short lowercase description of the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error reports why a record, a report or a delivery could not be used.
// Match it with errors.As and branch on Kind.
type Error struct {
	// Kind classifies the failure.
	Kind Kind
	// StatusCode is the HTTP status for KindHTTPStatus.
	StatusCode int
	// Reason is a human-readable explanation; never match on it. Text
	// taken from peers is quoted and cut short.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tlsrpt: ")
	b.WriteString(e.Kind.String())
	if e.StatusCode != 0 {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(quote.Text(e.Reason))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(quote.Err(e.Err))
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }
