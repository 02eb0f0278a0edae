package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fieldSpec is one member of an RFC 8460 4.4 object: its JSON type and
// whether it is required.
type fieldSpec struct {
	typ      string // "string", "int", "object", "array", "strings" (array of strings)
	required bool
}

// The RFC 8460 4.4 field list, object by object.
var rfcSchema = map[string]map[string]fieldSpec{
	"report": {
		"organization-name": {"string", true},
		"date-range":        {"object", true},
		"contact-info":      {"string", true},
		"report-id":         {"string", true},
		"policies":          {"array", true},
	},
	"date-range": {
		"start-datetime": {"string", true},
		"end-datetime":   {"string", true},
	},
	"policies": {
		"policy":          {"object", true},
		"summary":         {"object", true},
		"failure-details": {"array", false},
	},
	"policy": {
		"policy-type":   {"string", true},
		"policy-string": {"strings", false},
		"policy-domain": {"string", true},
		"mx-host":       {"strings", false},
	},
	"summary": {
		"total-successful-session-count": {"int", true},
		"total-failure-session-count":    {"int", true},
	},
	"failure-details": {
		"result-type":            {"string", true},
		"sending-mta-ip":         {"string", false},
		"receiving-mx-hostname":  {"string", false},
		"receiving-mx-helo":      {"string", false},
		"receiving-ip":           {"string", false},
		"failed-session-count":   {"int", true},
		"additional-information": {"string", false},
		"failure-reason-code":    {"string", false},
	},
}

var wholeDayStart = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T00:00:00Z$`)

// checkRFCFields checks that data is a report whose members all carry
// RFC 8460 4.4 names with the right JSON types. With rendered set it also
// checks what this package promises for its own output: required
// members present, mx-host an array, and a date-range of one whole UTC
// day in RFC 3339 with "Z".
func checkRFCFields(t *testing.T, data []byte, rendered bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	var check func(obj string, m map[string]any)
	check = func(obj string, m map[string]any) {
		spec := rfcSchema[obj]
		for name, f := range spec {
			if _, ok := m[name]; !ok && f.required {
				t.Errorf("%s: required member %q missing", obj, name)
			}
		}
		for name, v := range m {
			f, ok := spec[name]
			if !ok {
				t.Errorf("%s: member %q is not in RFC 8460 4.4", obj, name)
				continue
			}
			switch f.typ {
			case "string":
				if _, ok := v.(string); !ok {
					t.Errorf("%s.%s: %T, want string", obj, name, v)
				}
			case "int":
				n, ok := v.(json.Number)
				if _, err := n.Int64(); !ok || err != nil {
					t.Errorf("%s.%s: %v, want integer", obj, name, v)
				}
			case "strings":
				a, ok := v.([]any)
				if !ok {
					if _, isString := v.(string); isString && !rendered && name == "mx-host" {
						continue // the published RFC example's form
					}
					t.Errorf("%s.%s: %T, want array of strings", obj, name, v)
					continue
				}
				for _, e := range a {
					if _, ok := e.(string); !ok {
						t.Errorf("%s.%s: element %T, want string", obj, name, e)
					}
				}
			case "object":
				o, ok := v.(map[string]any)
				if !ok {
					t.Errorf("%s.%s: %T, want object", obj, name, v)
					continue
				}
				check(name, o)
			case "array":
				a, ok := v.([]any)
				if !ok {
					t.Errorf("%s.%s: %T, want array", obj, name, v)
					continue
				}
				for _, e := range a {
					o, ok := e.(map[string]any)
					if !ok {
						t.Errorf("%s.%s: element %T, want object", obj, name, e)
						continue
					}
					check(name, o)
				}
			}
		}
	}
	check("report", top)
	if !rendered {
		return
	}
	dr, _ := top["date-range"].(map[string]any)
	start, _ := dr["start-datetime"].(string)
	end, _ := dr["end-datetime"].(string)
	if !wholeDayStart.MatchString(start) {
		t.Errorf("start-datetime %q is not a UTC midnight in RFC 3339 with Z", start)
	}
	if want := start[:10] + "T23:59:59Z"; end != want {
		t.Errorf("end-datetime %q, want %q (the same UTC day)", end, want)
	}
	for _, s := range []string{start, end} {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("%q is not RFC 3339: %v", s, err)
		}
	}
}

// sampleReport builds a report through an Aggregator, as a sender would.
func sampleReport(t *testing.T) Report {
	t.Helper()
	var a Aggregator
	day := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	sts := Policy{Type: PolicySTS, Domain: "Example.COM.", Strings: []string{"version: STSv1", "mode: enforce", "mx: *.mx.example.com", "max_age: 86400"}, MXHosts: []string{"*.MX.example.com."}}
	tlsa := Policy{Type: PolicyTLSA, Domain: "example.com", Strings: []string{"_25._tcp.a.mx.example.com. IN TLSA 3 1 1 0123456789abcdef"}, MXHosts: []string{"a.mx.example.com"}}
	for i := range 10 {
		a.Success(sts, day.Add(time.Duration(i)*time.Hour))
	}
	a.Success(tlsa, day.Add(3*time.Hour))
	a.Failure(sts, FailureDetails{ResultType: CertificateExpired, SendingMTAIP: "::ffff:192.0.2.1", ReceivingMXHostname: "A.mx.example.com.", ReceivingIP: "2001:DB8::25"}, day.Add(5*time.Hour))
	a.Failure(sts, FailureDetails{ResultType: ValidationFailure, SendingMTAIP: "192.0.2.1", ReceivingMXHostname: "b.mx.example.com", ReceivingMXHelo: "b.mx.example.com", ReceivingIP: "198.51.100.7", FailureReasonCode: "tls-remote-alert-70-protocol-version-not-supported", AdditionalInformation: "https://sender.example/tlsrpt/1"}, day.Add(23*time.Hour+59*time.Minute+59*time.Second))
	a.Failure(tlsa, FailureDetails{ResultType: TLSAInvalid, SendingMTAIP: "192.0.2.1", ReceivingMXHostname: "a.mx.example.com"}, day.Add(time.Hour))
	reps := a.Reports(day.Add(12*time.Hour), "Sender Org", "tlsrpt@sender.example")
	if len(reps) != 1 {
		t.Fatalf("got %d reports, want 1", len(reps))
	}
	return reps[0]
}

func TestRenderedJSONMatchesRFC(t *testing.T) {
	t.Parallel()
	r := sampleReport(t)
	j, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	checkRFCFields(t, j, true)
	// Spot-check the canonical forms.
	for _, want := range []string{
		`"policy-domain":"example.com"`,
		`"mx-host":["*.mx.example.com"]`,
		`"sending-mta-ip":"192.0.2.1"`,
		`"receiving-ip":"2001:db8::25"`,
		`"receiving-mx-hostname":"a.mx.example.com"`,
		`"start-datetime":"2024-02-29T00:00:00Z","end-datetime":"2024-02-29T23:59:59Z"`,
	} {
		if !bytes.Contains(j, []byte(want)) {
			t.Errorf("JSON lacks %s:\n%s", want, j)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for name, r := range map[string]Report{"aggregated": sampleReport(t), "appendixB": *appendixB()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			j, err := r.JSON()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseReport(j)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*back, r) {
				t.Errorf("JSON round trip:\n got %+v\nwant %+v", *back, r)
			}
			gz, err := r.Gzip()
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				t.Fatal(err)
			}
			if zr.Name != "" || !zr.ModTime.IsZero() {
				t.Errorf("gzip header has name %q, time %v", zr.Name, zr.ModTime)
			}
			back, err = ParseReport(gz)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*back, r) {
				t.Errorf("gzip round trip:\n got %+v\nwant %+v", *back, r)
			}
		})
	}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

const minimalReport = `{"organization-name":"o","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-01T23:59:59Z"},"contact-info":"c","report-id":"r","policies":[{"policy":{"policy-type":"sts","policy-domain":"example.com"},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]}`

func TestParseReportTolerance(t *testing.T) {
	t.Parallel()
	base := func(t *testing.T) *Report {
		r, err := ParseReport([]byte(minimalReport))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name, from, to string
		check          func(*Report) bool
	}{
		{"no-zone", `"2024-01-01T00:00:00Z","end-datetime":"2024-01-01T23:59:59Z"`, `"2024-01-01T00:00:00","end-datetime":"2024-01-01T23:59:59"`, nil},
		{"offset", `"2024-01-01T00:00:00Z"`, `"2024-01-01T01:00:00+01:00"`, nil},
		{"lowercase-and-space", `"2024-01-01T00:00:00Z"`, `"2024-01-01 00:00:00z"`, nil},
		{"fraction", `"2024-01-01T23:59:59Z"`, `"2024-01-01T23:59:59.000Z"`, nil},
		{"mx-host-string", `"policy-domain":"example.com"`, `"policy-domain":"example.com","mx-host":"MX.Example.com."`,
			func(r *Report) bool {
				return reflect.DeepEqual(r.Policies[0].Policy.MXHosts, []string{"mx.example.com"})
			}},
		{"mx-host-array", `"policy-domain":"example.com"`, `"policy-domain":"example.com","mx-host":["a.example.com","*.b.example.com"]`,
			func(r *Report) bool {
				return reflect.DeepEqual(r.Policies[0].Policy.MXHosts, []string{"a.example.com", "*.b.example.com"})
			}},
		{"mx-host-null", `"policy-domain":"example.com"`, `"policy-domain":"example.com","mx-host":null`, nil},
		{"policy-string-string", `"policy-domain":"example.com"`, `"policy-domain":"example.com","policy-string":"version: STSv1"`,
			func(r *Report) bool {
				return reflect.DeepEqual(r.Policies[0].Policy.Strings, []string{"version: STSv1"})
			}},
		{"domain-case-dot", `"policy-domain":"example.com"`, `"policy-domain":"EXAMPLE.com."`, nil},
		{"bom", `{"organization-name"`, "\ufeff" + `{"organization-name"`, nil},
		{"unknown-fields", `"report-id":"r"`, `"report-id":"r","x-extension":{"a":[1,2]}`, nil},
		{"failure-error-code", `"total-failure-session-count":0}`, `"total-failure-session-count":1},"failure-details":[{"result-type":"validation-failure","failed-session-count":1,"failure-error-code":"X"}]`,
			func(r *Report) bool { return r.Policies[0].FailureDetails[0].FailureReasonCode == "X" }},
		{"field-name-case", `"report-id"`, `"Report-ID"`, nil},
		{"trailing-whitespace", `0}}]}`, "0}}]}\r\n\t ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := strings.Replace(minimalReport, tc.from, tc.to, 1)
			if in == minimalReport {
				t.Fatalf("replacement %q not found", tc.from)
			}
			for _, data := range [][]byte{[]byte(in), gzipBytes(t, []byte(in))} {
				r, err := ParseReport(data)
				if err != nil {
					t.Fatalf("ParseReport(%s): %v", in, err)
				}
				if tc.check != nil {
					if !tc.check(r) {
						t.Errorf("ParseReport(%s) = %+v", in, r)
					}
					continue
				}
				want := base(t)
				want.Policies[0].FailureDetails = r.Policies[0].FailureDetails
				want.Policies[0].Summary = r.Policies[0].Summary
				if !reflect.DeepEqual(r, want) {
					t.Errorf("ParseReport(%s) =\n%+v\nwant\n%+v", in, r, want)
				}
			}
		})
	}
}

func TestParseReportErrors(t *testing.T) {
	t.Parallel()
	bomb := gzipBytes(t, bytes.Repeat([]byte(" "), MaxReportSize+1))
	corrupt := gzipBytes(t, []byte(minimalReport))
	corrupt = corrupt[:len(corrupt)-6]
	for _, tc := range []struct {
		name string
		in   []byte
		kind Kind
	}{
		{"empty", nil, KindReportSyntax},
		{"array", []byte(`[` + minimalReport + `]`), KindReportSyntax},
		{"not-json", []byte("hello"), KindReportSyntax},
		{"trailing-data", []byte(minimalReport + "{}"), KindReportSyntax},
		{"truncated", []byte(minimalReport[:len(minimalReport)-3]), KindReportSyntax},
		{"no-date-range", []byte(strings.Replace(minimalReport, `"date-range"`, `"x"`, 1)), KindReportSyntax},
		{"no-end", []byte(strings.Replace(minimalReport, `"end-datetime"`, `"x"`, 1)), KindReportSyntax},
		{"bad-date", []byte(strings.Replace(minimalReport, `2024-01-01T00:00:00Z`, `yesterday`, 1)), KindReportSyntax},
		{"reversed-range", []byte(strings.Replace(minimalReport, `2024-01-01T00:00:00Z`, `2024-01-02T00:00:00Z`, 1)), KindReportSyntax},
		{"no-policies", []byte(strings.Replace(minimalReport, `"policies"`, `"x"`, 1)), KindReportSyntax},
		{"no-policy-domain", []byte(strings.Replace(minimalReport, `"policy-domain"`, `"x"`, 1)), KindReportSyntax},
		{"no-policy-type", []byte(strings.Replace(minimalReport, `"policy-type"`, `"x"`, 1)), KindReportSyntax},
		{"negative-count", []byte(strings.Replace(minimalReport, `"total-successful-session-count":1`, `"total-successful-session-count":-1`, 1)), KindReportSyntax},
		{"float-count", []byte(strings.Replace(minimalReport, `"total-successful-session-count":1`, `"total-successful-session-count":1.5`, 1)), KindReportSyntax},
		{"string-count", []byte(strings.Replace(minimalReport, `"total-successful-session-count":1`, `"total-successful-session-count":"1"`, 1)), KindReportSyntax},
		{"mx-host-number", []byte(strings.Replace(minimalReport, `"policy-domain":"example.com"`, `"policy-domain":"example.com","mx-host":5`, 1)), KindReportSyntax},
		{"too-large", bytes.Repeat([]byte(" "), MaxReportSize+1), KindTooLarge},
		{"gzip-bomb", bomb, KindTooLarge},
		{"gzip-corrupt", corrupt, KindCompression},
		{"gzip-header-only", []byte{0x1f, 0x8b}, KindCompression},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseReport(tc.in)
			if err == nil {
				t.Fatalf("ParseReport = %+v, want error", r)
			}
			if k := kindOf(err); k != tc.kind {
				t.Errorf("ParseReport: %v (kind %v), want kind %v", err, k, tc.kind)
			}
		})
	}
}

func TestFileName(t *testing.T) {
	t.Parallel()
	begin := time.Date(2016, 8, 1, 0, 0, 7, 0, time.UTC)
	end := begin.Add(48 * time.Hour)
	for _, tc := range []struct {
		name, sender, domain, id string
		gzip                     bool
		want                     string
	}{
		{"rfc-example", "mail.sender.example.com", "example.net", "001", true, "mail.sender.example.com!example.net!1470009607!1470182407!001.json.gz"},
		{"no-id-json", "Mail.Sender.Example.COM.", "example.net.", "", false, "mail.sender.example.com!example.net!1470009607!1470182407.json"},
		{"idn", "bücher.example", "münchen.example", "a-b_c", true, "xn--bcher-kva.example!xn--mnchen-3ya.example!1470009607!1470182407!abc.json.gz"},
		{"hostile", "../../etc/passwd!x", "a/b\\c!d", "!", false, "etcpasswdx!abcd!1470009607!1470182407.json"},
		{"empty", "", "..", "", false, "unknown!unknown!1470009607!1470182407.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := FileName(tc.sender, tc.domain, begin, end, tc.id, tc.gzip); got != tc.want {
				t.Errorf("FileName = %q, want %q", got, tc.want)
			}
		})
	}
	r := sampleReport(t)
	if got, want := r.FileName("sender.example", true), "sender.example!example.com!1709164800!1709251199!"+r.UniqueID()+".json.gz"; got != want {
		t.Errorf("Report.FileName = %q, want %q", got, want)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(r.UniqueID()) {
		t.Errorf("UniqueID = %q", r.UniqueID())
	}
}

func TestErrorsUnwrapAndRender(t *testing.T) {
	t.Parallel()
	_, err := ParseReport([]byte{0x1f, 0x8b, 0})
	if !errors.Is(err, gzip.ErrHeader) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ParseReport of a broken gzip header: %v does not wrap the gzip error", err)
	}
	r := Report{DateRange: DateRange{Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if _, err := r.JSON(); err == nil {
		t.Error("JSON of a year-10000 date-time succeeded; it would not parse back")
	}
	if _, err := r.Gzip(); err == nil {
		t.Error("Gzip of a year-10000 date-time succeeded")
	}
	if s := Kind(200).String(); s != "kind(200)" {
		t.Errorf("Kind(200) = %q", s)
	}
}
