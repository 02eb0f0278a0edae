package mtasts

import (
	"errors"
	"strings"
	"testing"
)

// matchPolicyBody holds TestMatch's patterns as a policy body, so that
// ParsePolicy compiles them.
const matchPolicyBody = "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx.example.com\nmx: *.example.net\nmx: xn--mnchen-3ya.example\nmx: 1.2.3.4\nmx: *.1.2.3.4\nmx: xn--zn7ca.example\n"

func TestMatchHostAgreesWithMatch(t *testing.T) {
	t.Parallel()
	parsed, err := ParsePolicy([]byte(matchPolicyBody))
	if err != nil {
		t.Fatal(err)
	}
	byHand := &Policy{Mode: Enforce, MX: parsed.MX}
	hosts := []string{
		"mx.example.com", "MX.Example.COM.", "mx.example.com..", "a.example.net", "A.EXAMPLE.NET.",
		"example.net", "a.b.example.net", ".example.net", "*.example.net", "münchen.example",
		"xn--mnchen-3ya.example", "1.2.3.4", "[1.2.3.4]", "x.1.2.3.4", "::1", "", "mx.example.com\x00",
		"\xff\xfe.example", "_mx.example.net", "net", "x.net",
	}
	for _, host := range hosts {
		want := byHand.Match(host)
		if got := parsed.Match(host); got != want {
			t.Errorf("Match(%q) = %v with compiled patterns, %v without", host, got, want)
		}
		h, err := ParseHostName(host)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalidDomain {
				t.Errorf("ParseHostName(%q): %v, want a KindInvalidDomain *Error", host, err)
			}
			if want {
				t.Errorf("ParseHostName(%q) failed, but Match matches it", host)
			}
			if h != (HostName{}) {
				t.Errorf("ParseHostName(%q) failed but returned %q", host, h)
			}
		}
		if got := parsed.MatchHost(h); got != want {
			t.Errorf("MatchHost(%q) = %v, Match says %v", host, got, want)
		}
		if err == nil && h.String() != strings.ToLower(h.String()) {
			t.Errorf("ParseHostName(%q) = %q, not canonical", host, h)
		}
	}
	if (&Policy{MX: []string{"*.example.net"}}).MatchHost(HostName{}) {
		t.Error("the zero HostName matched")
	}
}

// TestMatchAfterMXEdit: the compiled patterns never outlive the MX
// entries they were made from.
func TestMatchAfterMXEdit(t *testing.T) {
	t.Parallel()
	p, err := ParsePolicy([]byte("version: STSv1\nmode: enforce\nmax_age: 86400\nmx: old.example\nmx: *.wild.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Match("old.example") || !p.Match("a.wild.example") {
		t.Fatal("parsed policy does not match its own patterns")
	}
	p.MX[0] = "New.Example"
	p.MX = p.MX[:1]
	if p.Match("old.example") || !p.Match("new.example") || p.Match("a.wild.example") {
		t.Errorf("after editing MX to %q: old %v, new %v, wild %v", p.MX,
			p.Match("old.example"), p.Match("new.example"), p.Match("a.wild.example"))
	}
	p.MX = append(p.MX, "*.other.example", "*.wild.example")
	if !p.Match("a.other.example") || !p.Match("a.wild.example") {
		t.Errorf("after appending to MX %q: no match", p.MX)
	}
}

// TestMatchHostAllocations: the pre-parsed path does not allocate, and
// parsing an already canonical name does not either.
func TestMatchHostAllocations(t *testing.T) {
	p, err := ParsePolicy([]byte("version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx1.example.com\nmx: *.mx.example.net\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHostName("a.mx.example.net")
	if err != nil {
		t.Fatal(err)
	}
	miss, _ := ParseHostName("mail.example.org")
	if n := testing.AllocsPerRun(100, func() {
		if !p.MatchHost(h) || p.MatchHost(miss) {
			t.Fatal("wrong match")
		}
	}); n != 0 {
		t.Errorf("MatchHost: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if !p.Match("a.mx.example.net") {
			t.Fatal("no match")
		}
	}); n != 0 {
		t.Errorf("Match of a canonical name: %v allocations", n)
	}
}

func FuzzMatchHost(f *testing.F) {
	f.Add("*.example.com", "mail.example.com")
	f.Add("*.xn--aca-6ma.com", "X.ñaca.COM.")
	f.Add("1.2.3.4", "[1.2.3.4]")
	f.Add("Mail.Example.", "mail.example")
	f.Fuzz(func(t *testing.T, pattern, host string) {
		byHand := &Policy{Mode: Enforce, MX: []string{pattern}}
		want := byHand.Match(host)
		h, err := ParseHostName(host)
		if got := byHand.MatchHost(h); got != want {
			t.Fatalf("MatchHost(%q) = %v, Match = %v (parse error %v)", host, got, want, err)
		}
		body := "version: STSv1\nmode: enforce\nmax_age: 1\nmx: " + pattern + "\n"
		if p, err := ParsePolicy([]byte(body)); err == nil {
			if got := p.Match(host); got != (&Policy{MX: p.MX}).Match(host) {
				t.Fatalf("parsed %q: Match(%q) = %v with compiled patterns, not without", pattern, host, got)
			}
		}
	})
}
