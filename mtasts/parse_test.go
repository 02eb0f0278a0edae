package mtasts

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		id    string // "" = invalid
		nexts int
	}{
		{"minimal", "v=STSv1;id=a", "a", 0},
		{"trailing delimiter with WSP", "v=STSv1; id=a ;\t ", "a", 0},
		{"32 character id", "v=STSv1; id=" + strings.Repeat("Z", 32), strings.Repeat("Z", 32), 0},
		{"33 character id", "v=STSv1; id=" + strings.Repeat("Z", 33), "", 0},
		{"id after extension", "v=STSv1; x=1; id=b", "b", 1},
		{"duplicate id", "v=STSv1; id=a; id=b", "", 0},
		{"upper-case ID is an extension", "v=STSv1; ID=a", "", 0},
		{"version is case-sensitive", "v=stsv1; id=a", "", 0},
		{"leading WSP", " v=STSv1; id=a", "", 0},
		{"empty field", "v=STSv1;; id=a", "", 0},
		{"extension value with ';' split", "v=STSv1; id=a; e=x;y", "", 0},
		{"32 character extension name", "v=STSv1; id=a; " + strings.Repeat("e", 32) + "=1", "a", 1},
		{"extension name with _ - .", "v=STSv1; id=a; a_b-c.d=%x", "a", 1},
		{"extension name starting with _", "v=STSv1; id=a; _a=1", "", 0},
		{"control byte", "v=STSv1; id=a\x00", "", 0},
		{"non-ASCII id", "v=STSv1; id=é", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRecord(tt.in)
			if tt.id == "" {
				var e *Error
				if !errors.As(err, &e) || e.Kind != KindRecordSyntax {
					t.Fatalf("ParseRecord(%q) = %+v, %v; want KindRecordSyntax", tt.in, r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRecord(%q): %v", tt.in, err)
			}
			if r.ID != tt.id || len(r.Extensions) != tt.nexts {
				t.Errorf("ParseRecord(%q) = %+v, want id %q and %d extensions", tt.in, r, tt.id, tt.nexts)
			}
		})
	}
}

func TestSelectRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		txts []string
		id   string
		kind Kind
	}{
		{"none", nil, "", KindNoRecord},
		{"only other records", []string{"google-site-verification=x", "v=spf1 -all"}, "", KindNoRecord},
		{"STSv12 is not STSv1", []string{"v=STSv12; id=1"}, "", KindNoRecord},
		{"one among others", []string{"v=spf1 -all", "v=STSv1; id=1"}, "1", 0},
		{"two", []string{"v=STSv1; id=1", "v=STSv1; id=2"}, "", KindMultipleRecords},
		{"two, one broken", []string{"v=STSv1; id=1", "v=STSv1; broken"}, "", KindMultipleRecords},
		{"one broken", []string{"v=STSv1; broken"}, "", KindRecordSyntax},
		{"version alone is a broken record", []string{"v=STSv1"}, "", KindRecordSyntax},
		{"WSP before ';' is an STS record", []string{"v=STSv1 ; id=3"}, "3", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := SelectRecord(tt.txts)
			if tt.kind != 0 {
				var e *Error
				if !errors.As(err, &e) || e.Kind != tt.kind {
					t.Fatalf("SelectRecord = %+v, %v; want %v", r, err, tt.kind)
				}
				return
			}
			if err != nil || r.ID != tt.id {
				t.Fatalf("SelectRecord = %+v, %v; want id %q", r, err, tt.id)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	const head = "version: STSv1\nmode: enforce\nmx: mx.example.com\n"
	tests := []struct {
		name   string
		body   string
		ok     bool
		line   int
		check  func(*testing.T, *Policy)
		maxAge time.Duration
	}{
		{name: "CRLF", body: "version: STSv1\r\nmode: testing\r\nmx: a.example\r\nmax_age: 5\r\n", ok: true, maxAge: 5 * time.Second},
		{name: "mixed LF and CRLF, no final terminator", body: "version: STSv1\nmode: testing\r\nmx: a.example\nmax_age: 5", ok: true, maxAge: 5 * time.Second},
		{name: "lone CR terminator", body: "version: STSv1\rmode: none\nmax_age: 5", ok: false},
		{name: "CR at end without LF", body: head + "max_age: 5\r", ok: false, line: 4},
		{name: "max_age upper bound", body: head + "max_age: 31557600", ok: true, maxAge: MaxMaxAge},
		{name: "max_age above bound", body: head + "max_age: 31557601", ok: false, line: 4},
		{name: "max_age ten digits", body: head + "max_age: 0000000007", ok: true, maxAge: 7 * time.Second},
		{name: "max_age ten nines", body: head + "max_age: 9999999999", ok: false, line: 4},
		{name: "max_age eleven digits", body: head + "max_age: 00000000001", ok: false, line: 4},
		{name: "max_age would overflow int64", body: head + "max_age: 99999999999999999999", ok: false, line: 4},
		{name: "max_age negative", body: head + "max_age: -1", ok: false, line: 4},
		{name: "max_age plus sign", body: head + "max_age: +1", ok: false, line: 4},
		{name: "first duplicate wins (mode)", body: head + "max_age: 1\nmode: none", ok: true, maxAge: time.Second,
			check: func(t *testing.T, p *Policy) {
				if p.Mode != Enforce {
					t.Errorf("Mode = %q, want the first value", p.Mode)
				}
			}},
		{name: "first duplicate wins (max_age)", body: head + "max_age: 1\nmax_age: 2", ok: true, maxAge: time.Second},
		{name: "duplicate must still be syntactically valid", body: head + "max_age: 1\nmode: a\tb", ok: false, line: 5},
		{name: "unknown keys ignored", body: head + "max_age: 1\nnmx: evil.example\nx-foo: bar baz", ok: true, maxAge: time.Second,
			check: func(t *testing.T, p *Policy) {
				if len(p.Extensions) != 2 || !slices.Equal(p.MX, []string{"mx.example.com"}) {
					t.Errorf("got %+v", p)
				}
				if !slices.ContainsFunc(p.Lint("example.com"), func(w Warning) bool { return w.Kind == WarnUnknownKey && w.Subject == "nmx" }) {
					t.Errorf("Lint does not flag the nmx typo: %v", p.Lint("example.com"))
				}
			}},
		{name: "mx required for enforce", body: "version: STSv1\nmode: enforce\nmax_age: 1", ok: false},
		{name: "mx not required for none", body: "version: STSv1\nmode: none\nmax_age: 1", ok: true, maxAge: time.Second},
		{name: "mx lowercased", body: "version: STSv1\nmode: testing\nmax_age: 1\nmx: *.EXAMPLE.com", ok: true, maxAge: time.Second,
			check: func(t *testing.T, p *Policy) {
				if p.MX[0] != "*.example.com" {
					t.Errorf("MX = %q", p.MX)
				}
			}},
		// RFC 8461 3.2's Domain has no trailing dot; one is removed (the
		// same name), never more (see TestParsePolicyTolerances).
		{name: "mx with trailing dot", body: head + "max_age: 1\nmx: b.example.", ok: true, maxAge: time.Second,
			check: func(t *testing.T, p *Policy) {
				if !slices.Equal(p.MX, []string{"mx.example.com", "b.example"}) {
					t.Errorf("MX = %q", p.MX)
				}
			}},
		{name: "mx with two trailing dots", body: head + "max_age: 1\nmx: b.example..", ok: false, line: 5},
		{name: "mx dot alone", body: head + "max_age: 1\nmx: .", ok: false, line: 5},
		{name: "mx wildcard and dot", body: head + "max_age: 1\nmx: *.", ok: false, line: 5},
		{name: "mx wildcard alone", body: head + "max_age: 1\nmx: *", ok: false, line: 5},
		{name: "mx inner wildcard", body: head + "max_age: 1\nmx: a.*.example", ok: false, line: 5},
		{name: "mx with port", body: head + "max_age: 1\nmx: a.example:25", ok: false, line: 5},
		{name: "mx A-label", body: head + "max_age: 1\nmx: xn--mx-xka.example", ok: true, maxAge: time.Second},
		{name: "keys case-sensitive", body: "Version: STSv1\nmode: none\nmax_age: 1", ok: false},
		{name: "mode value case-sensitive", body: "version: STSv1\nmode: NONE\nmax_age: 1", ok: false, line: 2},
		{name: "WSP before colon", body: "version : STSv1\nmode: none\nmax_age: 1", ok: false, line: 1},
		{name: "leading WSP", body: " version: STSv1\nmode: none\nmax_age: 1", ok: false, line: 1},
		{name: "no WSP after colon", body: "version:STSv1\nmode:none\nmax_age:1", ok: true, maxAge: time.Second},
		{name: "trailing empty line", body: "version: STSv1\nmode: none\nmax_age: 1\n\n", ok: true, maxAge: time.Second},
		{name: "trailing blank lines, CRLF and WSP", body: "version: STSv1\r\nmode: none\r\nmax_age: 1\r\n\r\n \t\r\n\n", ok: true, maxAge: time.Second},
		{name: "empty line between fields", body: "version: STSv1\n\nmode: none\nmax_age: 1\n", ok: false, line: 2},
		{name: "empty line before a trailing field", body: "version: STSv1\nmode: none\nmax_age: 1\n\nx: y\n", ok: false, line: 4},
		{name: "BOM", body: "\ufeffversion: STSv1\nmode: none\nmax_age: 1", ok: false, line: 1},
		{name: "too large", body: head + "max_age: 1\nx: " + strings.Repeat("a", MaxPolicySize), ok: false},
		{name: "exactly the size limit", body: padTo(head+"max_age: 1\nx: ", MaxPolicySize), ok: true, maxAge: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePolicy([]byte(tt.body))
			if !tt.ok {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("ParsePolicy = %+v, %v; want an *Error", p, err)
				}
				if tt.line != 0 && e.Line != tt.line {
					t.Errorf("error %v at line %d, want line %d", err, e.Line, tt.line)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			if p.MaxAge != tt.maxAge {
				t.Errorf("MaxAge = %v, want %v", p.MaxAge, tt.maxAge)
			}
			if want := strings.Count(strings.TrimSuffix(tt.body, "\n"), "\n") + 1; len(p.Lines) != want {
				t.Errorf("%d Lines, want %d", len(p.Lines), want)
			}
			for _, l := range p.Lines {
				if strings.ContainsAny(l, "\r\n") {
					t.Errorf("line %q keeps its terminator", l)
				}
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func padTo(prefix string, n int) string {
	return prefix + strings.Repeat("a", n-len(prefix))
}

func TestMatch(t *testing.T) {
	t.Parallel()
	p := &Policy{Mode: Enforce, MX: []string{"mx.example.com", "*.example.net", "xn--mnchen-3ya.example", "1.2.3.4", "*.1.2.3.4", "xn--zn7ca.example"}}
	tests := []struct {
		host string
		want bool
	}{
		{"mx.example.com", true},
		{"MX.Example.COM.", true},
		{"mx.example.com..", false},
		{"a.example.net", true},
		{"A.EXAMPLE.NET.", true},
		{"example.net", false},
		{"a.b.example.net", false},
		{".example.net", false},
		{"*.example.net", false},
		{"münchen.example", true},
		{"MÜNCHEN.example.", true},
		{"xn--mnchen-3ya.example", true},
		{"1.2.3.4", false},
		{"[1.2.3.4]", false},
		{"x.1.2.3.4", false},
		{"::1", false},
		{"", false},
		{"mx.example.com\x00", false},
		{"\xff\xfe.example", false}, // was xn--zn7ca.example, and matched
		{"_mx.example.net", true},   // '_' as Postfix; was refused
	}
	for _, tt := range tests {
		if got := p.Match(tt.host); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestNormalizeDomain(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Example.COM.", "example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"ＥＸＡＭＰＬＥ.com", "example.com"},
		{"", ""},
		{".", ""},
		{".example.com", ""},
		{"a..b", ""},
		{"-a.example", ""},
		{"192.0.2.1", ""},
		{"[192.0.2.1]", ""},
		{"2001:db8::1", ""},
		{"a_b.example", "a_b.example"}, // as Postfix; was refused
		{"\xff\xfe.example", ""},       // was xn--zn7ca.example (U+FFFD)
		{"b\xfccher.example", ""},      // Latin-1, not UTF-8
		{"x.1.2.3.4", ""},
		{"a\r\nb.example", ""},
		{"a b.example", ""},
		{strings.Repeat("a", 64) + ".example", ""},
		{strings.Repeat("a.", 127) + "a", ""},
	}
	for _, tt := range tests {
		got, err := normalizeDomain(tt.in)
		if tt.want == "" {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalidDomain {
				t.Errorf("normalizeDomain(%q) = %q, %v; want KindInvalidDomain", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("normalizeDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		domain string
		body   string
		want   []WarningKind
	}{
		{"clean", "example.com", "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: *.example.com\nmx: mx.example.net", nil},
		{"wildcard over com", "example.com", "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: *.com", []WarningKind{WarnWildcardPublicSuffix}},
		{"wildcard over co.uk", "example.co.uk", "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: *.co.uk", []WarningKind{WarnWildcardPublicSuffix}},
		{"domain is a public suffix", "co.uk", "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: mx.example.com", []WarningKind{WarnDomainPublicSuffix}},
		{"address-like pattern", "example.com", "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: 192.0.2.1", []WarningKind{WarnAddressPattern}},
		{"short max_age", "example.com", "version: STSv1\nmode: testing\nmax_age: 60\nmx: mx.example.com", []WarningKind{WarnShortMaxAge}},
		{"short max_age in mode none is fine", "example.com", "version: STSv1\nmode: none\nmax_age: 60", nil},
		{"key typos", "example.com", "version: STSv1\nmode: none\nmax_age: 86400\nMode: enforce\nmax-age: 1\nmxx: a\ncomment: hello", []WarningKind{WarnUnknownKey, WarnUnknownKey, WarnUnknownKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePolicy([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			var got []WarningKind
			for _, w := range p.Lint(tt.domain) {
				got = append(got, w.Kind)
				if w.String() == "" {
					t.Error("empty warning text")
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Lint = %v, want %v", p.Lint(tt.domain), tt.want)
			}
		})
	}
	// Lint never changes behaviour: the public-suffix wildcard still
	// matches one label, as RFC 8461 4.1 says.
	p := &Policy{Mode: Enforce, MX: []string{"*.com"}}
	if !p.Match("attacker.com") {
		t.Error("*.com must still match attacker.com")
	}
}

// TestParsePolicyTolerances: the two syntax slips ParsePolicy tolerates
// (issue 13 point 10) keep an enforce policy in force, never widen what
// it matches, and are reported by Lint.
func TestParsePolicyTolerances(t *testing.T) {
	t.Parallel()
	const strict = "version: STSv1\nmode: enforce\nmx: mail.example\nmx: *.backup.example\nmax_age: 86400\n"
	const sloppy = "version: STSv1\nmode: enforce\nmx: mail.example.\nmx: *.backup.example.\nmax_age: 86400\n\n\r\n"
	want, err := ParsePolicy([]byte(strict))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePolicy([]byte(sloppy))
	if err != nil {
		t.Fatalf("a trailing dot and trailing blank lines reject an enforce policy: %v", err)
	}
	if got.Mode != Enforce || !slices.Equal(got.MX, want.MX) {
		t.Fatalf("got %+v, want the patterns of %+v", got, want)
	}
	for _, host := range []string{
		"mail.example", "MAIL.example.", "x.mail.example", "mail.example.com", "example",
		"a.backup.example", "backup.example", "a.b.backup.example", "mail", "a.backup.example.net",
	} {
		if g, w := got.Match(host), want.Match(host); g != w {
			t.Errorf("Match(%q) = %v with the tolerated policy, %v with the strict one", host, g, w)
		}
	}
	var kinds []WarningKind
	var subjects []string
	for _, w := range got.Lint("example.com") {
		kinds = append(kinds, w.Kind)
		subjects = append(subjects, w.Subject)
	}
	wantKinds := []WarningKind{WarnMXTrailingDot, WarnMXTrailingDot, WarnTrailingBlankLines}
	if !slices.Equal(kinds, wantKinds) || !slices.Equal(subjects, []string{"mail.example.", "*.backup.example.", "2"}) {
		t.Errorf("Lint = %v (%q), want %v", got.Lint("example.com"), subjects, wantKinds)
	}
	if ws := want.Lint("example.com"); len(ws) != 0 {
		t.Errorf("Lint of the strict policy = %v", ws)
	}
}
