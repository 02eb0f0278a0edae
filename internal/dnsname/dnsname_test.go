package dnsname

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want string
		err      error
	}{
		{"MX.Example.COM.", "mx.example.com", nil},
		{"_25._tcp.mx.example", "_25._tcp.mx.example", nil},
		{"bücher.example", "xn--bcher-kva.example", nil},
		{"XN--BCHER-KVA.example.", "xn--bcher-kva.example", nil},
		{"", "", ErrEmpty},
		{".", "", ErrEmpty},
		{"192.0.2.1", "", ErrAddress},
		{"[IPv6:2001:db8::1]", "", ErrAddress},
		{"2001:db8::1", "", ErrAddress},
		{"a..b", "", ErrSyntax},
		{"a b.example", "", ErrIDNA},
		{string(make([]byte, 64)) + ".example", "", ErrIDNA},
	} {
		got, err := Normalize(c.in)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"MX.Example.COM.", "bücher.example", "[1.2.3.4]", "a..b", "xn--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Normalize(s)
		if err != nil {
			return
		}
		if again, err := Normalize(n); err != nil || again != n {
			t.Fatalf("Normalize(%q) = %q, not idempotent: %q %v", s, n, again, err)
		}
	})
}
