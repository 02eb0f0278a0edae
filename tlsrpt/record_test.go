package tlsrpt

import (
	"slices"
	"testing"
)

func TestParseRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		rua      []string // nil: error
		mailto   []string
		https    []string
	}{
		{"rfc-mailto", "v=TLSRPTv1;rua=mailto:reports@example.com", []string{"mailto:reports@example.com"}, []string{"reports@example.com"}, nil},
		{"rfc-https", "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", []string{"https://reporting.example.com/v1/tlsrpt"}, nil, []string{"https://reporting.example.com/v1/tlsrpt"}},
		{"both-and-final-delim", "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example/x ;\t", []string{"mailto:a@example.com", "https://r.example/x"}, []string{"a@example.com"}, []string{"https://r.example/x"}},
		{"encoded-comma-two-addresses", "v=TLSRPTv1; rua=mailto:a@example.com%2Cb@example.com", []string{"mailto:a@example.com%2Cb@example.com"}, []string{"a@example.com", "b@example.com"}, nil},
		{"encoded-local-part", "v=TLSRPTv1; rua=mailto:tls%2Brpt@example.com?subject=x", []string{"mailto:tls%2Brpt@example.com?subject=x"}, []string{"tls+rpt@example.com"}, nil},
		{"scheme-case", "v=TLSRPTv1; rua=MAILTO:a@example.com,HTTPS://r.example/", []string{"MAILTO:a@example.com", "HTTPS://r.example/"}, []string{"a@example.com"}, []string{"HTTPS://r.example/"}},
		{"duplicates", "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:a@example.com", []string{"mailto:a@example.com", "mailto:a@example.com"}, []string{"a@example.com"}, nil},
		// RFC 8460 3: parsers MUST accept syntactically valid records;
		// only mailto and https are used.
		{"unsupported-schemes-kept", "v=TLSRPTv1; rua=http://r.example/,ftp://r.example/", []string{"http://r.example/", "ftp://r.example/"}, nil, nil},
		{"unusable-mailto-https", "v=TLSRPTv1; rua=mailto:,https:/path,mailto:not-an-address", []string{"mailto:", "https:/path", "mailto:not-an-address"}, nil, nil},
		{"ipv6-host", "v=TLSRPTv1; rua=https://[2001:db8::1]:8443/r", []string{"https://[2001:db8::1]:8443/r"}, nil, []string{"https://[2001:db8::1]:8443/r"}},
		{"extension-before-rua", "v=TLSRPTv1; x.y-z_1=v;rua=mailto:a@example.com", []string{"mailto:a@example.com"}, []string{"a@example.com"}, nil},
		{"empty", "", nil, nil, nil},
		{"version-case", "V=TLSRPTv1; rua=mailto:a@example.com", nil, nil, nil},
		{"rua-case", "v=TLSRPTv1; RUA=mailto:a@example.com", nil, nil, nil},
		{"leading-space", " v=TLSRPTv1; rua=mailto:a@example.com", nil, nil, nil},
		{"literal-bang", "v=TLSRPTv1; rua=mailto:a@example.com!10m", nil, nil, nil},
		{"space-in-uri", "v=TLSRPTv1; rua=mailto:a b@example.com", nil, nil, nil},
		{"non-ascii-uri", "v=TLSRPTv1; rua=mailto:ä@example.com", nil, nil, nil},
		{"bad-scheme", "v=TLSRPTv1; rua=1http://x/", nil, nil, nil},
		{"two-fragments", "v=TLSRPTv1; rua=https://x/#a#b", nil, nil, nil},
		{"bad-brackets", "v=TLSRPTv1; rua=https://[x/", nil, nil, nil},
		{"trailing-comma", "v=TLSRPTv1; rua=mailto:a@example.com,", nil, nil, nil},
		{"control-char", "v=TLSRPTv1; rua=mailto:a@example.com\x00", nil, nil, nil},
		{"newline-wsp", "v=TLSRPTv1;\nrua=mailto:a@example.com", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRecord(tc.in)
			if tc.rua == nil {
				if err == nil {
					t.Fatalf("ParseRecord(%q) = %+v, want error", tc.in, r)
				}
				if k := kindOf(err); k != KindRecordSyntax {
					t.Fatalf("kind %v, want %v", k, KindRecordSyntax)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRecord(%q): %v", tc.in, err)
			}
			if !slices.Equal(r.RUA, tc.rua) {
				t.Errorf("RUA = %q, want %q", r.RUA, tc.rua)
			}
			if got := r.Mailto(); !slices.Equal(got, tc.mailto) {
				t.Errorf("Mailto() = %q, want %q", got, tc.mailto)
			}
			if got := r.HTTPS(); !slices.Equal(got, tc.https) {
				t.Errorf("HTTPS() = %q, want %q", got, tc.https)
			}
			back, err := ParseRecord(r.String())
			if err != nil || !slices.Equal(back.RUA, r.RUA) {
				t.Errorf("ParseRecord(%q) = %+v, %v", r.String(), back, err)
			}
		})
	}
}

func TestRecordStringEncodes(t *testing.T) {
	t.Parallel()
	r := &Record{RUA: []string{"mailto:a@example.com,b@example.com", "https://x.example/a;b!c d"}}
	want := "v=TLSRPTv1; rua=mailto:a@example.com%2Cb@example.com,https://x.example/a%3Bb%21c%20d"
	if got := r.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	back, err := ParseRecord(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Mailto(); !slices.Equal(got, []string{"a@example.com", "b@example.com"}) {
		t.Errorf("Mailto() = %q", got)
	}
}

func TestSelectRecord(t *testing.T) {
	t.Parallel()
	const good = "v=TLSRPTv1; rua=mailto:a@example.com"
	for _, tc := range []struct {
		name string
		txts []string
		kind Kind // KindUnknown: success
	}{
		{"one", []string{good}, KindUnknown},
		{"with-others", []string{"v=spf1 -all", good, "v=TLSRPTv10; rua=mailto:b@example.com", "v=STSv1; id=1"}, KindUnknown},
		{"none", nil, KindNoRecord},
		{"only-others", []string{"v=TLSRPTv2; rua=mailto:a@example.com", "v=TLSRPTv1x"}, KindNoRecord},
		{"two", []string{good, good}, KindMultipleRecords},
		// "v=TLSRPTv1 ;" is admitted by the ABNF and so kept by the
		// discard rule: two records remain, so no reporting.
		{"two-one-with-space", []string{good, "v=TLSRPTv1 ; rua=mailto:b@example.com"}, KindMultipleRecords},
		// A broken candidate means no reporting, not a fallback.
		{"broken", []string{"v=TLSRPTv1; bad"}, KindRecordSyntax},
		{"broken-no-fallback", []string{"v=TLSRPTv1", "v=TLSRPTv2; rua=mailto:a@example.com"}, KindRecordSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := SelectRecord(tc.txts)
			if tc.kind == KindUnknown {
				if err != nil || !slices.Equal(r.RUA, []string{"mailto:a@example.com"}) {
					t.Fatalf("SelectRecord = %+v, %v", r, err)
				}
				return
			}
			if k := kindOf(err); k != tc.kind {
				t.Errorf("SelectRecord = %+v, %v (kind %v), want kind %v", r, err, k, tc.kind)
			}
		})
	}
}
