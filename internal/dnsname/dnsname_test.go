package dnsname

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	label63 = strings.Repeat("a", 63)
	label64 = strings.Repeat("a", 64)
	// name253 is 253 octets: 3 labels of 63, one of 61, and 3 dots.
	name253 = label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61)
	name254 = "a" + name253
)

type normCase struct {
	name, in, want string
	err            error // nil: want is the result
}

// common holds cases every profile judges alike.
var common = []normCase{
	{"lowercase", "mx.example.com", "mx.example.com", nil},
	{"uppercase", "MX.Example.COM", "mx.example.com", nil},
	{"trailing dot", "MX.Example.COM.", "mx.example.com", nil},
	{"u-label", "bücher.example", "xn--bcher-kva.example", nil},
	{"u-label uppercase", "BÜCHER.example.", "xn--bcher-kva.example", nil},
	{"a-label uppercase", "XN--BCHER-KVA.example", "xn--bcher-kva.example", nil},
	{"fullwidth mapped", "ＥＸＡＭＰＬＥ.com", "example.com", nil},
	{"ideographic full stop", "bücher。example", "xn--bcher-kva.example", nil},
	{"underscore label", "_x.example", "_x.example", nil},
	{"underscore beside u-label", "a_b.bücher.example", "a_b.xn--bcher-kva.example", nil},
	{"single label", "localhost", "localhost", nil},
	{"63-octet label", label63 + ".example", label63 + ".example", nil},
	{"253-octet name", name253, name253, nil},
	{"253-octet name with dot", name253 + ".", name253, nil},
	{"empty", "", "", ErrEmpty},
	{"root", ".", "", ErrEmpty},
	{"two dots", "..", "", ErrSyntax},
	{"two trailing dots", "example.com..", "", ErrSyntax},
	{"leading dot", ".example.com", "", ErrSyntax},
	{"empty label", "a..b", "", ErrSyntax},
	{"64-octet label", label64 + ".example", "", ErrSyntax},
	{"254-octet name", name254, "", ErrSyntax},
	{"254-octet name with dot", name254 + ".", "", ErrSyntax},
	{"long u-label", strings.Repeat("ü", 60) + ".example", "", ErrSyntax},
	{"huge input", strings.Repeat("a.", 5000), "", ErrSyntax},
	{"invalid utf-8", "\xff", "", ErrSyntax},
	{"invalid utf-8 label", "\xff\xfe.example", "", ErrSyntax},
	{"invalid utf-8 beside u-label", "bücher\xff.example", "", ErrSyntax},
	{"replacement character", "\ufffd.example", "", ErrIDNA},
	{"nul", "a\x00b", "", ErrSyntax},
	{"space", "a b", "", ErrSyntax},
	{"crlf", "a\r\nb", "", ErrSyntax},
	{"tab", "a\tb.example", "", ErrSyntax},
	{"delete", "a\x7fb.example", "", ErrSyntax},
	{"at sign", "user@example.com", "", ErrSyntax},
	{"slash", "a/b.example", "", ErrSyntax},
	{"u-label with space", "bücher example", "", ErrIDNA},
	{"disallowed u-label", "a\u0085b.example", "", ErrIDNA},
	{"joiner u-label", "ü\u200db.example", "", ErrIDNA},
	{"only ignorable", "\u00ad.example", "", ErrSyntax},
	{"ideographic full stop twice at end", "bücher.。", "", ErrSyntax},
	{"inner wildcard", "a.*.example", "", ErrSyntax},
	{"partial wildcard", "mx*.example.com", "", ErrSyntax},
	{"wildcard alone", "*", "", ErrSyntax},
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p     Profile
		cases []normCase
	}{
		{Mail, []normCase{
			{"hyphen inside", "a-b.example", "a-b.example", nil},
			{"double hyphen", "ab--cd.example", "ab--cd.example", nil},
			{"numeric inner label", "123.example", "123.example", nil},
			{"leading hyphen", "-a.example", "", ErrSyntax},
			{"trailing hyphen", "a-.example", "", ErrSyntax},
			{"ipv4", "192.0.2.1", "", ErrAddress},
			{"ipv4 dot", "192.0.2.1.", "", ErrAddress},
			{"ipv4 literal", "[192.0.2.1]", "", ErrAddress},
			{"ipv6 literal", "[IPv6:2001:db8::1]", "", ErrAddress},
			{"ipv6", "2001:db8::1", "", ErrAddress},
			{"ipv6 zone", "fe80::1%1", "", ErrAddress},
			{"short ipv4", "127.1", "", ErrAddress},
			{"numeric tld", "x.1.2.3.4", "", ErrAddress},
			{"numeric single label", "2130706433", "", ErrAddress},
			{"fullwidth ipv4", "１９２.０.２.１", "", ErrAddress},
			{"wildcard", "*.example.com", "", ErrSyntax},
		}},
		{Pattern, []normCase{
			{"wildcard", "*.example.com", "*.example.com", nil},
			{"wildcard uppercase dot", "*.EXAMPLE.com.", "*.example.com", nil},
			{"wildcard u-label", "*.bücher.example", "*.xn--bcher-kva.example", nil},
			{"wildcard one label", "*.com", "*.com", nil},
			{"wildcard then nothing", "*.", "", ErrSyntax},
			{"two wildcards", "*.*.example", "", ErrSyntax},
			{"wildcard empty label", "*..example", "", ErrSyntax},
			{"leading hyphen", "*.-a.example", "", ErrSyntax},
			{"ipv4", "192.0.2.1", "", ErrAddress},
			{"wildcard numeric tld", "*.1.2.3", "", ErrAddress},
		}},
		{DNSID, []normCase{
			{"wildcard", "*.example.com", "*.example.com", nil},
			{"wildcard uppercase", "*.EXAMPLE.com", "*.example.com", nil},
			{"wildcard one label", "*.com", "", ErrSyntax},
			{"two wildcards", "*.*.example.com", "", ErrSyntax},
			{"ipv4", "192.0.2.1", "", ErrAddress},
			{"numeric tld", "x.1.2.3.4", "", ErrAddress},
			{"trailing hyphen", "mx-.example.com", "", ErrSyntax},
		}},
		{Owner, []normCase{
			{"tlsa owner", "_25._TCP.MX.example.", "_25._tcp.mx.example", nil},
			{"sts owner", "_mta-sts.example", "_mta-sts.example", nil},
			{"tlsrpt owner", "_smtp._tls.bücher.example", "_smtp._tls.xn--bcher-kva.example", nil},
			{"reverse owner", "1.2.0.192.in-addr.arpa", "1.2.0.192.in-addr.arpa", nil},
			{"numeric", "192.0.2.1", "192.0.2.1", nil},
			{"leading hyphen", "-a.example", "-a.example", nil},
			{"address literal", "[192.0.2.1]", "", ErrSyntax},
			{"ipv6", "2001:db8::1", "", ErrSyntax},
			{"wildcard", "*.example", "", ErrSyntax},
		}},
	} {
		t.Run(tc.p.String(), func(t *testing.T) {
			t.Parallel()
			for _, c := range append(append([]normCase(nil), common...), tc.cases...) {
				t.Run(c.name, func(t *testing.T) {
					got, err := tc.p.Normalize(c.in)
					if c.err == nil {
						if err != nil || got != c.want {
							t.Fatalf("Normalize(%q) = %q, %v; want %q", c.in, got, err, c.want)
						}
						return
					}
					var e *Error
					if got != "" || !errors.Is(err, c.err) || !errors.As(err, &e) || e.Profile != tc.p || e.Name != c.in {
						t.Fatalf("Normalize(%q) = %q, %v; want %v", c.in, got, err, c.err)
					}
				})
			}
		})
	}
}

func TestErrorMessageBounded(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("\r\n", 200) + "x"
	_, err := Mail.Normalize(in)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if len(msg) > 300 || strings.ContainsAny(msg, "\r\n") {
		t.Errorf("message not bounded or not quoted: %q", msg)
	}
	if !strings.HasPrefix(msg, "dnsname: invalid mail domain ") {
		t.Errorf("message %q", msg)
	}
}

func TestCanonicalNoAlloc(t *testing.T) {
	for _, p := range []Profile{Mail, Pattern, DNSID, Owner} {
		if n := testing.AllocsPerRun(100, func() { _, _ = p.Normalize("mx1.example.com") }); n != 0 {
			t.Errorf("%v: %v allocations for a canonical name", p, n)
		}
	}
}

func TestUnknownProfile(t *testing.T) {
	t.Parallel()
	if _, err := Profile(0).Normalize("example.com"); !errors.Is(err, ErrSyntax) {
		t.Errorf("zero Profile: %v", err)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"MX.Example.COM.", "bücher.example", "[1.2.3.4]", "a..b", "xn--",
		"*.example.com", "_25._tcp.mx.example", "\xff\xfe.example", "a。b", "127.1", name253} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []Profile{Mail, Pattern, DNSID, Owner} {
			n, err := p.Normalize(s)
			if err != nil {
				var e *Error
				if n != "" || !errors.As(err, &e) || e.Err == nil {
					t.Fatalf("%v: Normalize(%q) = %q, %v", p, s, n, err)
				}
				continue
			}
			if !utf8.ValidString(s) {
				t.Fatalf("%v: Normalize(%q) = %q for invalid UTF-8", p, s, n)
			}
			if n == "" || len(n) > 253 || strings.HasSuffix(n, ".") {
				t.Fatalf("%v: Normalize(%q) = %q", p, s, n)
			}
			for i := 0; i < len(n); i++ {
				if c := n[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
					t.Fatalf("%v: Normalize(%q) = %q, not lowercase ASCII", p, s, n)
				}
			}
			if isASCII(s) && n != strings.ToLower(strings.TrimSuffix(s, ".")) {
				t.Fatalf("%v: Normalize(%q) = %q rewrote an ASCII name", p, s, n)
			}
			if again, err := p.Normalize(n); err != nil || again != n {
				t.Fatalf("%v: Normalize(%q) = %q, not idempotent: %q %v", p, s, n, again, err)
			}
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, s := range []string{"mx3.backup.example.net", "MX3.Backup.Example.NET.", "*.backup.example.net", "bücher.example"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Pattern.Normalize(s)
			}
		})
	}
}
