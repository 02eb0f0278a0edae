package tlsrpt

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
		"v=TLSRPTv1;rua=mailto:a@example.com,https://r.example/x;",
		"v=TLSRPTv1 ; rua=mailto:a@example.com%2Cb@example.com; rua=https://[2001:db8::1]/r; ext=1",
		"v=TLSRPTv1; rua=mailto:x@x.example other",
		"v=TLSRPTv1; rua=http://bad/%",
		"v=TLSRPTv1; rua=,, ,",
		"v=TLSRPTv1; a12345678901234567890123456789012=1; rua=mailto:a@b",
		"v=TLSRPTv1",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		r, err := ParseRecord(txt)
		_, _ = SelectRecord([]string{txt, "v=spf1 -all"})
		if err != nil {
			if kindOf(err) != KindRecordSyntax {
				t.Fatalf("error of kind %v: %v", kindOf(err), err)
			}
			return
		}
		if len(r.RUA) == 0 {
			t.Fatal("record without rua")
		}
		_ = r.Mailto()
		_ = r.HTTPS()
		// What parses renders to a record that parses to the same.
		back, err := ParseRecord(r.String())
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("ParseRecord(%q) -> String %q -> %+v, %v", txt, r.String(), back, err)
		}
	})
}

func FuzzParseReport(f *testing.F) {
	f.Add([]byte(minimalReport))
	f.Add(gzipBytes(f, []byte(minimalReport)))
	f.Add([]byte(strings.Replace(minimalReport, `"policy-domain":"example.com"`, `"policy-domain":"Example.COM.","mx-host":"*.MX.example.com","policy-string":["version: STSv1"]`, 1)))
	f.Add([]byte(`{"organization-name":"Microsoft Corporation","date-range":{"start-datetime":"2023-01-10T00:00:00","end-datetime":"2023-01-10T23:59:59"},"contact-info":"tlsrpt-noreply@microsoft.com","report-id":"133198585438131172+test.xmox.nl","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce"],"policy-domain":"test.xmox.nl"},"summary":{"total-successful-session-count":2,"total-failure-session-count":0}}]}`))
	f.Add([]byte(`{"date-range":{"start-datetime":"2024-01-01 00:00:00.5+01:00","end-datetime":"2024-01-01t23:59:59z"},"policies":[{"policy":{"policy-type":"tlsa","policy-domain":"bücher.example"},"summary":{},"failure-details":[{"result-type":"x","failure-error-code":"e","failed-session-count":1,"receiving-mx-hostname":"MX."}]}]}`))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			switch kindOf(err) {
			case KindReportSyntax, KindTooLarge, KindCompression:
			default:
				t.Fatalf("error of kind %v: %v", kindOf(err), err)
			}
			return
		}
		// Rendering is stable after one parse: parse(render(r)) renders
		// the same bytes.
		j1, err := r.JSON()
		if err != nil {
			t.Fatalf("JSON: %v", err)
		}
		r2, err := ParseReport(j1)
		if err != nil {
			t.Fatalf("rendered report does not parse: %v\n%s", err, j1)
		}
		j2, err := r2.JSON()
		if err != nil || !bytes.Equal(j1, j2) {
			t.Fatalf("render not stable:\n%s\n%s", j1, j2)
		}
		_ = r.PolicyDomain()
		_ = r.FileName("sender.example", true)
	})
}

func FuzzParseMessage(f *testing.F) {
	gz := gzipBytes(f, []byte(minimalReport))
	r, err := ParseReport(gz)
	if err != nil {
		f.Fatal(err)
	}
	built, err := (&Message{From: "tlsrpt@sender.example", To: []string{"a@example.com"}}).Build(r)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(built)
	f.Add([]byte("Content-Type: application/tlsrpt+json\r\n\r\n" + minimalReport))
	f.Add([]byte("Content-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n--b\r\nContent-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{=\r\n}\r\n--b--\r\n"))
	f.Add([]byte("Subject: x\r\n\r\nhello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseMessage(bytes.NewReader(data))
		if err != nil && kindOf(err) == KindUnknown {
			t.Fatalf("untyped error: %v", err)
		}
	})
}
