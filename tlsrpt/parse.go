package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
)

// MaxReportSize bounds a report: ParseReport refuses larger input and
// stops decompressing at this size. RFC 8460 5.2 mentions ten megabytes as
// a common receiver limit.
const MaxReportSize = 10 << 20

// ParseReport parses a received report (RFC 8460 4.4): JSON, or gzip
// compressed JSON (detected by its magic bytes, RFC 8460 5.2), at most
// MaxReportSize bytes before and after decompression.
//
// It is tolerant where reporters in the wild deviate from the RFC:
// date-times without a time zone (read as UTC), "mx-host" and
// "policy-string" as a string or an array, "failure-error-code" for
// failure-reason-code, a leading UTF-8 byte order mark, field names in
// any case, unknown fields (ignored; RFC 8460 makes the format
// extensible). It is strict where a report would be meaningless: the
// input must be a single JSON object, date-range must hold two valid
// date-times with start not after end, policies must be present, and
// every policy needs a policy-type and a policy-domain, session counts
// must not be negative, and date-times must fall in the years 0000-9999
// in UTC. The policy domain and MX host names are returned with ASCII
// letters lowercased, U-labels converted to A-labels where possible and
// no trailing dot. Times are in UTC.
//
// Errors are *Error with KindTooLarge, KindCompression or
// KindReportSyntax.
func ParseReport(data []byte) (*Report, error) {
	if len(data) > MaxReportSize {
		return nil, &Error{Kind: KindTooLarge, Reason: "report larger than MaxReportSize"}
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, &Error{Kind: KindCompression, Err: err}
		}
		j, err := io.ReadAll(io.LimitReader(zr, MaxReportSize+1))
		if err != nil {
			return nil, &Error{Kind: KindCompression, Err: err}
		}
		if len(j) > MaxReportSize {
			return nil, &Error{Kind: KindTooLarge, Reason: "decompressed report larger than MaxReportSize"}
		}
		data = j
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	dec := json.NewDecoder(bytes.NewReader(data))
	var v struct {
		Report
		Policies *[]PolicyResult `json:"policies"`
		Range    *DateRange      `json:"date-range"`
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, &Error{Kind: KindReportSyntax, Reason: "not a JSON object"}
	}
	if err := dec.Decode(&v); err != nil {
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{Kind: KindReportSyntax, Reason: "data after the JSON object"}
	}
	if v.Range == nil {
		return nil, &Error{Kind: KindReportSyntax, Reason: "missing date-range"}
	}
	if v.Range.End.Before(v.Range.Start) {
		return nil, &Error{Kind: KindReportSyntax, Reason: "date-range ends before it starts"}
	}
	if v.Policies == nil {
		return nil, &Error{Kind: KindReportSyntax, Reason: "missing policies"}
	}
	r := v.Report
	r.DateRange = *v.Range
	r.Policies = *v.Policies
	for i := range r.Policies {
		p := &r.Policies[i]
		p.Policy.Domain = lenientName(p.Policy.Domain)
		if p.Policy.Type == "" || p.Policy.Domain == "" {
			return nil, &Error{Kind: KindReportSyntax, Reason: "policy without policy-type or policy-domain"}
		}
		if p.Summary.TotalSuccessfulSessionCount < 0 || p.Summary.TotalFailureSessionCount < 0 {
			return nil, &Error{Kind: KindReportSyntax, Reason: "negative session count"}
		}
		for j, h := range p.Policy.MXHosts {
			p.Policy.MXHosts[j] = lenientName(h)
		}
		for j := range p.FailureDetails {
			d := &p.FailureDetails[j]
			if d.FailedSessionCount < 0 {
				return nil, &Error{Kind: KindReportSyntax, Reason: "negative session count"}
			}
			d.ReceivingMXHostname = lenientName(d.ReceivingMXHostname)
		}
	}
	return &r, nil
}

// syntaxError wraps a JSON decoding error as KindReportSyntax, keeping an
// *Error from a nested decoder as it is.
func syntaxError(err error) error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Kind: KindReportSyntax, Err: err}
}
