package dnssec

import (
	"bytes"
	"testing"

	"github.com/miekg/dns"
)

// compareOracle is canonical order (RFC 4034 6.1) written the plain way:
// every label copied with its ASCII letters lowercased, then compared
// from the right. (bytes.ToLower, which the validator used before, is
// not it: it maps each octet that is not UTF-8 to U+FFFD, so that \255
// and \128 compared equal.)
func compareOracle(a, b string) (int, bool) {
	labels := func(name string) ([][]byte, bool) {
		var buf [256]byte
		off, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
		if err != nil {
			return nil, false
		}
		var out [][]byte
		for i := 0; i < off && buf[i] != 0; i += 1 + int(buf[i]) {
			l := bytes.Clone(buf[i+1 : i+1+int(buf[i])])
			for j, c := range l {
				if 'A' <= c && c <= 'Z' {
					l[j] = c + 'a' - 'A'
				}
			}
			out = append(out, l)
		}
		return out, true
	}
	la, oka := labels(a)
	lb, okb := labels(b)
	if !oka || !okb {
		return 0, false
	}
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		if c := bytes.Compare(la[len(la)-i], lb[len(lb)-i]); c != 0 {
			return c, true
		}
	}
	switch {
	case len(la) < len(lb):
		return -1, true
	case len(la) > len(lb):
		return 1, true
	}
	return 0, true
}

// FuzzCompareOracle: compare, which works on the stack, orders names as
// the plain implementation does.
func FuzzCompareOracle(f *testing.F) {
	for _, p := range [][2]string{
		{"a.example.", "Z.a.example."}, {"\\001.z.example.", "*.z.example."}, {".", "example."},
		{"A.example.", "a.example."}, {"ab.example.", "a.example."}, {"\\255.example.", "\\128.example."},
		{"[.example.", "A.example."}, {"`.example.", "Z.example."}, {"example", "example."},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got, ok := compare(a, b)
		want, wok := compareOracle(a, b)
		if ok != wok || got != want {
			t.Fatalf("compare(%q, %q) = %d, %v; oracle %d, %v", a, b, got, ok, want, wok)
		}
	})
}

// TestCompareOctets: octets above 127 are compared as unsigned values,
// never folded together (RFC 4034 6.1: only US-ASCII letters are
// lowercased).
func TestCompareOctets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"\\255.example.", "\\128.example.", 1},
		{"\\200.example.", "\\200.example.", 0},
		{"\\195\\137.example.", "\\195\\169.example.", -1}, // not Unicode case folding either
		{"Z.example.", "\\128.example.", -1},
	} {
		if got, ok := compare(tc.a, tc.b); !ok || got != tc.want {
			t.Errorf("compare(%q, %q) = %d, %v; want %d", tc.a, tc.b, got, ok, tc.want)
		}
	}
}

func TestCompareAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { less("a.b.example.test.", "Mx1.b.Example.test.") }); n != 0 {
		t.Errorf("compare allocates %v times", n)
	}
}
