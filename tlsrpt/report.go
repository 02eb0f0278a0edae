package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/internal/quote"
)

// Media types of a report (RFC 8460 6.3, 6.4), for the HTTPS
// Content-Type and the report part of an e-mail.
const (
	MediaTypeJSON = "application/tlsrpt+json"
	MediaTypeGzip = "application/tlsrpt+gzip"
)

// Report is an aggregate TLS report (RFC 8460 4.4). The JSON tags are the
// exact field names of the RFC.
type Report struct {
	// OrganizationName is the organization responsible for the report.
	OrganizationName string `json:"organization-name"`
	// DateRange is the period covered; RFC 8460 4.1 asks for one full
	// UTC day.
	DateRange DateRange `json:"date-range"`
	// ContactInfo is the contact of a party responsible for the report,
	// usually an e-mail address.
	ContactInfo string `json:"contact-info"`
	// ReportID identifies the report uniquely for its submitter, so that
	// the receiver can drop duplicates.
	ReportID string `json:"report-id"`
	// Policies holds one entry per policy applied.
	Policies []PolicyResult `json:"policies"`
}

// DateRange is the "date-range" of a report. Both times are rendered in
// RFC 3339 form in UTC with a "Z" and whole seconds.
type DateRange struct {
	// Start is the first instant of the reporting period (start-datetime).
	Start time.Time `json:"start-datetime"`
	// End is the last instant of the reporting period (end-datetime).
	End time.Time `json:"end-datetime"`
}

// PolicyResult is one element of "policies": a policy and the sessions
// counted under it.
type PolicyResult struct {
	// Policy describes the policy the sessions were counted against.
	Policy Policy `json:"policy"`
	// Summary counts the sessions.
	Summary Summary `json:"summary"`
	// FailureDetails is omitted when empty, as major reporters do.
	FailureDetails []FailureDetails `json:"failure-details,omitempty"`
}

// Summary holds the session totals of a policy (RFC 8460 4.2, 4.4).
type Summary struct {
	// TotalSuccessfulSessionCount counts sessions that met the policy.
	TotalSuccessfulSessionCount int64 `json:"total-successful-session-count"`
	// TotalFailureSessionCount counts sessions that failed it.
	TotalFailureSessionCount int64 `json:"total-failure-session-count"`
}

// FailureDetails is one row of "failure-details" (RFC 8460 4.4): the
// number of failed sessions that share a result type and the other
// fields. String fields are omitted when empty: RFC 8460 marks some
// optional and the Appendix B example itself omits receiving-ip, and a
// failure before any connection (sts-policy-fetch-error) has no receiving
// host at all.
type FailureDetails struct {
	// ResultType is the failure (RFC 8460 4.3).
	ResultType ResultType `json:"result-type"`
	// SendingMTAIP is the address the sender used (optional).
	SendingMTAIP string `json:"sending-mta-ip,omitempty"`
	// ReceivingMXHostname is the MX host name the sender tried.
	ReceivingMXHostname string `json:"receiving-mx-hostname,omitempty"`
	// ReceivingMXHelo is the name the receiving MX announced in its
	// banner or EHLO response (optional).
	ReceivingMXHelo string `json:"receiving-mx-helo,omitempty"`
	// ReceivingIP is the address of the MX host tried.
	ReceivingIP string `json:"receiving-ip,omitempty"`
	// FailedSessionCount counts the sessions that failed this way.
	FailedSessionCount int64 `json:"failed-session-count"`
	// AdditionalInformation is a URI pointing to more information
	// (optional).
	AdditionalInformation string `json:"additional-information,omitempty"`
	// FailureReasonCode is a short error code or text (optional; RFC 8460
	// 4.3.3 asks for it with validation-failure).
	FailureReasonCode string `json:"failure-reason-code,omitempty"`
}

// UnmarshalJSON decodes a failure-details object. It also accepts
// "failure-error-code", the name of failure-reason-code in the drafts of
// RFC 8460, which early reporters used.
func (d *FailureDetails) UnmarshalJSON(b []byte) error {
	type plain FailureDetails
	var v struct {
		plain
		FailureErrorCode string `json:"failure-error-code"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = FailureDetails(v.plain)
	if d.FailureReasonCode == "" {
		d.FailureReasonCode = v.FailureErrorCode
	}
	return nil
}

// rfc3339Z is RFC 3339 with whole seconds and "Z", the form every major
// reporter uses and the Appendix B example shows.
const rfc3339Z = "2006-01-02T15:04:05Z"

// MarshalJSON renders the range in UTC as RFC 3339 date-times with "Z".
// Like time.Time, it refuses years outside 0000-9999.
func (dr DateRange) MarshalJSON() ([]byte, error) {
	for _, t := range []time.Time{dr.Start, dr.End} {
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return nil, &Error{Kind: KindInvalid, Reason: "date-time year outside 0000-9999"}
		}
	}
	var b []byte
	b = append(b, `{"start-datetime":"`...)
	b = dr.Start.UTC().AppendFormat(b, rfc3339Z)
	b = append(b, `","end-datetime":"`...)
	b = dr.End.UTC().AppendFormat(b, rfc3339Z)
	b = append(b, `"}`...)
	return b, nil
}

// UnmarshalJSON decodes a date range, tolerating date-times without a
// time zone (sent by Microsoft, read as UTC since RFC 8460 4.1 reports
// cover UTC days), a lowercase "t" or "z" and a space instead of "T"
// (both allowed by RFC 3339 5.6). Times are returned in UTC.
func (dr *DateRange) UnmarshalJSON(b []byte) error {
	var v struct {
		Start *string `json:"start-datetime"`
		End   *string `json:"end-datetime"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.Start == nil || v.End == nil {
		return &Error{Kind: KindReportSyntax, Reason: "date-range without start-datetime or end-datetime"}
	}
	start, err := parseDateTime(*v.Start)
	if err != nil {
		return err
	}
	end, err := parseDateTime(*v.End)
	if err != nil {
		return err
	}
	*dr = DateRange{Start: start, End: end}
	return nil
}

func parseDateTime(s string) (time.Time, error) {
	if len(s) > 64 {
		return time.Time{}, &Error{Kind: KindReportSyntax, Reason: "date-time too long"}
	}
	u := strings.ToUpper(s)
	if len(u) > 10 && u[10] == ' ' {
		u = u[:10] + "T" + u[11:]
	}
	t, err := time.Parse(time.RFC3339Nano, u)
	if err != nil {
		// No zone at all: the Microsoft form, taken as UTC.
		t, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", u, time.UTC)
	}
	if err == nil {
		t = t.UTC()
		if y := t.Year(); y >= 0 && y <= 9999 {
			return t, nil
		}
	}
	return time.Time{}, &Error{Kind: KindReportSyntax, Reason: "invalid date-time " + quote.String(s)}
}

// JSON renders the report as RFC 8460 4.4 JSON, compact, without HTML
// escaping.
func (r *Report) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Gzip renders the report as gzip-compressed JSON, the form RFC 8460 5.2
// recommends for both e-mail and HTTPS. The gzip header carries no name
// and no time, so equal reports give equal bytes.
func (r *Report) Gzip() ([]byte, error) {
	j, err := r.JSON()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(j); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// PolicyDomain returns the policy domain shared by all of the report's
// policies, or "" if the report has none or mixes domains. Reports built
// by an Aggregator always have one.
func (r *Report) PolicyDomain() string {
	d := ""
	for i, p := range r.Policies {
		if i == 0 {
			d = p.Policy.Domain
		} else if p.Policy.Domain != d {
			return ""
		}
	}
	return d
}

// UniqueID returns a file name unique-id for the report: 16 hexadecimal
// digits derived from ReportID, so that a report keeps its file name
// when it is rendered again.
func (r *Report) UniqueID() string {
	h := sha256.Sum256([]byte(r.ReportID))
	return hex.EncodeToString(h[:8])
}

// FileName returns the report's RFC 8460 5.3 file name for the given
// sender (the submitter's domain), with the report's policy domain, date
// range and UniqueID.
func (r *Report) FileName(sender string, gzip bool) string {
	return FileName(sender, r.PolicyDomain(), r.DateRange.Start, r.DateRange.End, r.UniqueID(), gzip)
}

// FileName returns a report file name per RFC 8460 5.3:
//
//	sender "!" policy-domain "!" begin-timestamp "!" end-timestamp
//	  [ "!" unique-id ] "." ( "json" / "json.gz" )
//
// Timestamps are Unix seconds. Both names are canonicalised (lowercase
// A-labels without the trailing dot); every byte outside [a-z0-9.-_] is
// then dropped, so the result is always a safe single path element even
// for hostile input. unique-id is 1*(ALPHA / DIGIT): other bytes are
// dropped, and an empty unique-id is left out with its "!".
func FileName(sender, policyDomain string, begin, end time.Time, uniqueID string, gzip bool) string {
	var b strings.Builder
	b.WriteString(fileSafe(sender))
	b.WriteByte('!')
	b.WriteString(fileSafe(policyDomain))
	b.WriteByte('!')
	b.WriteString(strconv.FormatInt(begin.Unix(), 10))
	b.WriteByte('!')
	b.WriteString(strconv.FormatInt(end.Unix(), 10))
	var id strings.Builder
	for i := 0; i < len(uniqueID); i++ {
		if isAlnum(uniqueID[i]) {
			id.WriteByte(uniqueID[i])
		}
	}
	if id.Len() > 0 {
		b.WriteByte('!')
		b.WriteString(id.String())
	}
	b.WriteString(".json")
	if gzip {
		b.WriteString(".gz")
	}
	return b.String()
}

// fileSafe canonicalises a domain name for a file name and drops every
// byte that could act as a separator or a path element.
func fileSafe(name string) string {
	if d, err := dnsname.Mail.Normalize(name); err == nil {
		name = d
	} else {
		name = strings.ToLower(name)
	}
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() < 253; i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		}
	}
	s := strings.Trim(b.String(), ".")
	if s == "" {
		return "unknown"
	}
	return s
}
