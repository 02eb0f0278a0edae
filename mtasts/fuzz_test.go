package mtasts

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// The seed corpora live in testdata/fuzz/<FuzzName>; the f.Add calls
// cover the shapes the parsers branch on.

func FuzzParseRecord(f *testing.F) {
	f.Add("v=STSv1; id=20160831085700Z;")
	f.Add("v=STSv1;id=a; ext=1 ; x.y_z-1=%%")
	f.Add("v=STSv1 \t; \tid=policy1 \t;")
	f.Add("v=STSv1; id=a;;")
	f.Fuzz(func(t *testing.T, txt string) {
		r, err := ParseRecord(txt)
		if err != nil {
			if r != nil {
				t.Fatal("record with error")
			}
			return
		}
		if !isRecordID(r.ID) {
			t.Fatalf("invalid id %q accepted", r.ID)
		}
		s := r.String()
		r2, err := ParseRecord(s)
		if err != nil || r2.String() != s {
			t.Fatalf("String %q does not round-trip: %v", s, err)
		}
		if _, err := SelectRecord([]string{txt}); err != nil {
			t.Fatalf("SelectRecord refuses a valid record %q: %v", txt, err)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n"))
	f.Add([]byte("version:STSv1\r\nmode:\tnone\r\nmax_age: 0000000001\r\nx-ext: v a l"))
	f.Add([]byte("version: STSv1\nmode: testing\nmax_age: 31557600\nmx: 1.2.3.4\nmode: none"))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePolicy(body)
		if err != nil {
			if p != nil {
				t.Fatal("policy with error")
			}
			return
		}
		if p.MaxAge < 0 || p.MaxAge > MaxMaxAge || p.MaxAge%time.Second != 0 {
			t.Fatalf("max_age %v", p.MaxAge)
		}
		if p.Mode != Enforce && p.Mode != Testing && p.Mode != None {
			t.Fatalf("mode %q", p.Mode)
		}
		if p.Mode != None && len(p.MX) == 0 {
			t.Fatal("no mx")
		}
		if n := strings.Count(strings.TrimSuffix(string(body), "\n"), "\n") + 1; len(p.Lines) != n {
			t.Fatalf("%d lines for %d", len(p.Lines), n)
		}
		s := p.String()
		p2, err := ParsePolicy([]byte(s))
		if err != nil {
			t.Fatalf("String %q does not parse: %v", s, err)
		}
		if p2.Mode != p.Mode || p2.MaxAge != p.MaxAge || !slices.Equal(p2.MX, p.MX) || len(p2.Extensions) != len(p.Extensions) {
			t.Fatalf("round trip %+v != %+v", p2, p)
		}
		for _, mx := range p.MX {
			if mx != strings.ToLower(mx) {
				t.Fatalf("pattern %q not normalised", mx)
			}
			host := strings.Replace(mx, "*", "x", 1)
			if _, err := normalizeDomain(host); err == nil && !p.Match(host) {
				t.Fatalf("pattern %q does not match %q", mx, host)
			}
		}
		p.Lint("example.com")
	})
}

func FuzzMatch(f *testing.F) {
	f.Add("*.example.com", "mail.example.com")
	f.Add("*.xn--aca-6ma.com", "X.ñaca.COM.")
	f.Add("1.2.3.4", "[1.2.3.4]")
	f.Add("a.example", "a..example")
	f.Fuzz(func(t *testing.T, pattern, host string) {
		p := &Policy{Mode: Enforce, MX: []string{pattern}}
		m := p.Match(host)
		if !m {
			return
		}
		h, err := normalizeDomain(host)
		if err != nil {
			t.Fatalf("invalid host %q matched: %v", host, err)
		}
		if isIPLiteral(host) {
			t.Fatalf("address %q matched", host)
		}
		if isASCII(host) {
			if !p.Match(strings.ToUpper(host)) || (!strings.HasSuffix(host, ".") && !p.Match(host+".")) {
				t.Fatalf("match of %q depends on case or trailing dot", host)
			}
		}
		if suffix, wild := strings.CutPrefix(pattern, "*."); wild {
			ns, err := normalizeDomain(suffix)
			if err == nil && strings.Count(h, ".") != strings.Count(ns, ".")+1 {
				t.Fatalf("wildcard %q matched %q across labels", pattern, h)
			}
		}
	})
}

func FuzzUnmarshalEntry(f *testing.F) {
	e := testEntry(f, "example.com", Enforce, time.Hour, t0)
	f.Add(e.marshal())
	f.Add([]byte("smtptls-mtasts 1\nexpires x\n"))
	f.Add([]byte("smtptls-mtasts 2 1.5 none a.example 1 0 0 - - - 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		peekEntryString(string(data))
		e, err := unmarshalEntry(data)
		if err != nil {
			return
		}
		e2, err := unmarshalEntry(e.marshal())
		if err != nil || e2.domain != e.domain || e2.id != e.id || string(e2.body) != string(e.body) {
			t.Fatalf("entry does not round-trip: %v", err)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func BenchmarkParsePolicy(b *testing.B) {
	body := []byte("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: mx2.example.com\nmx: *.backup.example.net\nmax_age: 604800\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParsePolicy(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	p, err := ParsePolicy([]byte("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: mx2.example.com\nmx: *.backup.example.net\nmax_age: 604800\n"))
	if err != nil {
		b.Fatal(err)
	}
	for _, host := range []string{"mx3.backup.example.net", "MX3.Backup.Example.NET.", "nomatch.example.org"} {
		b.Run(host, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Match(host)
			}
		})
	}
}

// isIPLiteral reports whether host is an address, bracketed or not.
func isIPLiteral(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if strings.HasPrefix(host, "[") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}
