package tlsrpt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/internal/sharedtest"
)

func readVectors(t *testing.T, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(sharedtest.ReadFile(t, "vectors", "mtasts", name), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func kindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return KindUnknown
}

// rfcOverrides lists the record vectors whose source expectation we do
// not follow, with the RFC's reason.
var rfcOverrides = map[string]string{
	// mox accepts trailing WSP after the last URI without a closing ";".
	"v=TLSRPTv1; rua=mailto:tlsrpt@mox.example , \t\t https://mox.example/tlsrpt  ": "RFC 8460 3 ABNF ends a record with [field-delim] = *WSP \";\" *WSP; trailing WSP without \";\" is outside the grammar, so it is refused",
}

func TestMoxRecordVectors(t *testing.T) {
	t.Parallel()
	var vs []struct {
		Input      string
		Valid      bool
		RUA        [][]string `json:"rua"`
		Extensions [][2]string
		Source     string
		Note       string
	}
	readVectors(t, "mox-tlsrpt-record-vectors.json", &vs)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(v.Source, func(t *testing.T) {
			t.Parallel()
			want := v.Valid
			if why, ok := rfcOverrides[v.Input]; ok {
				t.Logf("source expects valid=%v; following the RFC instead: %s", v.Valid, why)
				want = !v.Valid
			} else if v.Note != "" {
				t.Logf("note (source agrees with our reading of the RFC here): %s", v.Note)
			}
			r, err := ParseRecord(v.Input)
			if !want {
				if err == nil {
					t.Fatalf("ParseRecord(%q) = %+v, want error", v.Input, r)
				}
				if k := kindOf(err); k != KindRecordSyntax {
					t.Fatalf("ParseRecord(%q): kind %v, want %v (%v)", v.Input, k, KindRecordSyntax, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRecord(%q): %v", v.Input, err)
			}
			var rua []string
			for _, l := range v.RUA {
				rua = append(rua, l...)
			}
			if !slices.Equal(r.RUA, rua) {
				t.Errorf("RUA = %q, want %q", r.RUA, rua)
			}
			var ext [][2]string
			for _, e := range r.Extensions {
				ext = append(ext, [2]string{e.Key, e.Value})
			}
			if len(ext) != len(v.Extensions) || (len(ext) > 0 && !reflect.DeepEqual(ext, v.Extensions)) {
				t.Errorf("Extensions = %q, want %q", ext, v.Extensions)
			}
		})
	}
}

func TestMoxSerializeVector(t *testing.T) {
	t.Parallel()
	var vs []struct {
		Kind   string
		Fields struct {
			RUA        [][]string `json:"rua"`
			Extensions [][2]string
		}
		Expected string
		Source   string
	}
	readVectors(t, "mox-serialize-vectors.json", &vs)
	n := 0
	for _, v := range vs {
		if v.Kind != "tlsrpt-record" {
			continue
		}
		n++
		t.Run(v.Source, func(t *testing.T) {
			r := &Record{}
			for _, l := range v.Fields.RUA {
				r.RUA = append(r.RUA, l...)
			}
			for _, e := range v.Fields.Extensions {
				r.Extensions = append(r.Extensions, Extension{Key: e[0], Value: e[1]})
			}
			if got := r.String(); got != v.Expected {
				t.Errorf("String() = %q, want %q", got, v.Expected)
			}
			back, err := ParseRecord(r.String())
			if err != nil || !reflect.DeepEqual(back, r) {
				t.Errorf("ParseRecord(String()) = %+v, %v; want %+v", back, err, r)
			}
		})
	}
	if n == 0 {
		t.Fatal("no tlsrpt-record vector")
	}
}

// The lookup vectors are about the DNS lookup; what this package owns is
// the selection among the TXT records found (RFC 8460 3).
func TestMoxLookupVectors(t *testing.T) {
	t.Parallel()
	var f struct {
		Resolver struct {
			TXT  map[string][]string
			Fail []string
		}
		Cases []struct {
			Domain string
			Valid  bool
			Record *struct {
				RUA [][]string `json:"rua"`
			}
			Error  *string
			Source string
		}
	}
	readVectors(t, "mox-tlsrpt-lookup-vectors.json", &f)
	if len(f.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range f.Cases {
		t.Run(c.Domain, func(t *testing.T) {
			t.Parallel()
			name := "_smtp._tls." + c.Domain + "."
			if slices.Contains(f.Resolver.Fail, "txt "+name) {
				// The resolver's outcome, not a record selection.
				t.Logf("%s: DNS failure (%v) is outside this package", c.Source, *c.Error)
				return
			}
			rec, err := SelectRecord(f.Resolver.TXT[name])
			if c.Valid {
				if err != nil {
					t.Fatalf("SelectRecord: %v", err)
				}
				var rua []string
				for _, l := range c.Record.RUA {
					rua = append(rua, l...)
				}
				if !slices.Equal(rec.RUA, rua) {
					t.Errorf("RUA = %q, want %q", rec.RUA, rua)
				}
				return
			}
			want := map[string]Kind{
				"ErrNoRecord":        KindNoRecord,
				"ErrMultipleRecords": KindMultipleRecords,
				"ErrRecordSyntax":    KindRecordSyntax,
			}[*c.Error]
			if want == KindUnknown {
				t.Fatalf("unmapped error %q", *c.Error)
			}
			if k := kindOf(err); k != want {
				t.Errorf("SelectRecord: %v (kind %v), want kind %v", err, k, want)
			}
		})
	}
}

func moxReportVectors(t *testing.T) (reportJSON, parsed []byte, msgs []moxMessage) {
	var f struct {
		ReportJSON struct {
			Text   string
			Parsed json.RawMessage
		} `json:"report_json"`
		Messages []moxMessage
	}
	readVectors(t, "mox-tlsrpt-report-vectors.json", &f)
	return []byte(f.ReportJSON.Text), f.ReportJSON.Parsed, f.Messages
}

type moxMessage struct {
	Name          string
	Message       string
	File          string
	Valid         bool
	ExpectedError *string `json:"expected_error"`
	Source        string
}

// appendixB is the RFC 8460 Appendix B report as this package parses it.
func appendixB() *Report {
	day := time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC)
	return &Report{
		OrganizationName: "Company-X",
		DateRange:        DateRange{Start: day, End: day.Add(24*time.Hour - time.Second)},
		ContactInfo:      "sts-reporting@company-x.example",
		ReportID:         "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
		Policies: []PolicyResult{{
			Policy: Policy{
				Type:    PolicySTS,
				Strings: []string{"version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"},
				Domain:  "company-y.example",
				MXHosts: []string{"*.mail.company-y.example"},
			},
			Summary: Summary{TotalSuccessfulSessionCount: 5326, TotalFailureSessionCount: 303},
			FailureDetails: []FailureDetails{{
				ResultType:          CertificateExpired,
				SendingMTAIP:        "2001:db8:abcd:0012::1",
				ReceivingMXHostname: "mx1.mail.company-y.example",
				FailedSessionCount:  100,
			}, {
				ResultType:            StartTLSNotSupported,
				SendingMTAIP:          "2001:db8:abcd:0013::1",
				ReceivingMXHostname:   "mx2.mail.company-y.example",
				ReceivingIP:           "203.0.113.56",
				FailedSessionCount:    200,
				AdditionalInformation: "https://reports.company-x.example/report_info ? id = 5065427 c - 23 d3# StarttlsNotSupported ",
			}, {
				ResultType:          ValidationFailure,
				SendingMTAIP:        "198.51.100.62",
				ReceivingIP:         "203.0.113.58",
				ReceivingMXHostname: "mx-backup.mail.company-y.example",
				FailedSessionCount:  3,
				FailureReasonCode:   "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED",
			}},
		}},
	}
}

func TestMoxReportJSON(t *testing.T) {
	t.Parallel()
	text, parsed, _ := moxReportVectors(t)
	want := appendixB()
	for name, in := range map[string][]byte{"text": text, "parsed": parsed} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The source decodes with DisallowUnknownFields: every field
			// must be one of RFC 8460 4.4.
			checkRFCFields(t, in, false)
			r, err := ParseReport(in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("ParseReport =\n%+v\nwant\n%+v", r, want)
			}
		})
	}
}

// The published example has "mx-host" as a string; erratum EID 6241 and
// the mox vector have an array. Both must give the same report.
func TestRFC8460AppendixB(t *testing.T) {
	t.Parallel()
	in := sharedtest.ReadFile(t, "vectors", "mtasts", "rfc8460-appendixB-report.json")
	r, err := ParseReport(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := appendixB(); !reflect.DeepEqual(r, want) {
		t.Errorf("ParseReport =\n%+v\nwant\n%+v", r, want)
	}
	if !bytes.Contains(in, []byte(`"mx-host": "*.mail.company-y.example"`)) {
		t.Error("vector no longer has mx-host as a string; this test no longer covers that form")
	}
}

func TestMoxReportMessages(t *testing.T) {
	t.Parallel()
	_, _, msgs := moxReportVectors(t)
	if len(msgs) == 0 {
		t.Fatal("no messages")
	}
	for _, m := range msgs {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			data := []byte(m.Message)
			if m.File != "" {
				data = sharedtest.ReadFile(t, "vectors", "mtasts", m.File)
			}
			r, err := ParseMessage(bytes.NewReader(data))
			if m.Valid {
				if err != nil {
					t.Fatalf("ParseMessage: %v", err)
				}
				if r.PolicyDomain() == "" || len(r.Policies) == 0 {
					t.Errorf("report without policy domain: %+v", r)
				}
				return
			}
			if *m.ExpectedError != "ErrNoReport" {
				t.Fatalf("unmapped error %q", *m.ExpectedError)
			}
			if k := kindOf(err); k != KindNoReport {
				t.Errorf("ParseMessage: %v (kind %v), want kind %v", err, k, KindNoReport)
			}
		})
	}
}

// The real Google and Microsoft report e-mails, taken apart with
// net/mail and mime/multipart independently of ParseMessage: the
// attachment parses, and its file name is the one FileName gives for
// the parsed report.
func TestReportEmails(t *testing.T) {
	t.Parallel()
	day := func(y int, m time.Month, d int) DateRange {
		s := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return DateRange{Start: s, End: s.Add(24*time.Hour - time.Second)}
	}
	for _, tc := range []struct {
		file, sender, uniqueID string
		org                    string
		dr                     DateRange
		mx                     []string
		success                int64
	}{
		{"mox-tlsreports-example.eml", "google.com", "001", "Google Inc.", day(2022, 9, 15), []string{"komijn.test.xmox.nl"}, 3},
		// Microsoft: date-times without a zone, no mx-host.
		{"mox-tlsreports-microsoft.eml", "microsoft.com", "133198585438131172", "Microsoft Corporation", day(2023, 1, 10), nil, 2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			raw := sharedtest.ReadFile(t, "vectors", "mtasts", tc.file)
			msg, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.Header.Get("TLS-Report-Domain"); got != "test.xmox.nl" {
				t.Errorf("TLS-Report-Domain = %q", got)
			}
			if got := msg.Header.Get("TLS-Report-Submitter"); got != tc.sender {
				t.Errorf("TLS-Report-Submitter = %q", got)
			}
			mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
			if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
				t.Fatalf("Content-Type %q %v: %v", mt, params, err)
			}
			mr := multipart.NewReader(msg.Body, params["boundary"])
			var gz []byte
			var fileName string
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt != MediaTypeGzip {
					continue
				}
				if !strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
					t.Fatalf("report part not base64")
				}
				_, dp, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
				if err != nil {
					t.Fatal(err)
				}
				fileName = dp["filename"]
				gz, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
				if err != nil {
					t.Fatal(err)
				}
			}
			if gz == nil {
				t.Fatal("no application/tlsrpt+gzip part")
			}
			r, err := ParseReport(gz)
			if err != nil {
				t.Fatal(err)
			}
			if r.OrganizationName != tc.org || r.DateRange != tc.dr || r.PolicyDomain() != "test.xmox.nl" {
				t.Errorf("report = %q %v %q", r.OrganizationName, r.DateRange, r.PolicyDomain())
			}
			p := r.Policies[0]
			if p.Policy.Type != PolicySTS || !slices.Equal(p.Policy.MXHosts, tc.mx) || p.Summary.TotalSuccessfulSessionCount != tc.success || p.Summary.TotalFailureSessionCount != 0 {
				t.Errorf("policy = %+v", p)
			}
			if got := FileName(tc.sender, r.PolicyDomain(), r.DateRange.Start, r.DateRange.End, tc.uniqueID, true); got != fileName {
				t.Errorf("FileName = %q, attachment is %q", got, fileName)
			}
			viaMsg, err := ParseMessage(bytes.NewReader(raw))
			if err != nil || !reflect.DeepEqual(viaMsg, r) {
				t.Errorf("ParseMessage = %+v, %v; want %+v", viaMsg, err, r)
			}
		})
	}
}
