package resolver

import (
	"math/rand/v2"
	"testing"

	"github.com/miekg/dns"
)

// TestValCompareCanonicalOrder checks the example of RFC 4034 6.1, shuffled.
func TestValCompareCanonicalOrder(t *testing.T) {
	t.Parallel()
	want := []string{
		"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.",
		"z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example.",
	}
	for i := 1; i < len(want); i++ {
		if !valLess(want[i-1], want[i]) || valLess(want[i], want[i-1]) {
			t.Errorf("%s should sort before %s", want[i-1], want[i])
		}
	}
	got := append([]string{}, want...)
	rand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
	for i := range got {
		for j := i + 1; j < len(got); j++ {
			if valLess(got[j], got[i]) {
				got[i], got[j] = got[j], got[i]
			}
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sorted %v, want %v", got, want)
		}
	}
	if c, ok := valCompare("Example.", "eXample."); !ok || c != 0 {
		t.Errorf("case must not matter: %d %v", c, ok)
	}
}

func TestValNameHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want string }{
		{valParent("a.b.example."), "b.example."},
		{valParent("example."), "."},
		{valParent("."), "."},
		{valParent("a\\.b.example."), "example."},
		{valSuffix("a.b.example.", 2), "b.example."},
		{valSuffix("a.b.example.", 0), "."},
		{valSuffix("a.b.example.", 9), "a.b.example."},
		{valCommonAncestor("a.b.example.", "c.b.example."), "b.example."},
		{valWildcard("."), "*."},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if valIsAncestor("xample.test.", "example.test.") {
		t.Error("a string suffix is not an ancestor")
	}
	if !valIsAncestor(".", "example.test.") || !valIsProperAncestor("test.", "example.test.") || valIsProperAncestor("test.", "TEST.") {
		t.Error("ancestor checks")
	}
	if n := valSigLabels("*.a.example."); n != 2 {
		t.Errorf("labels of a wildcard owner: %d", n)
	}
}

func TestValRSABits(t *testing.T) {
	t.Parallel()
	small := twRawRSAKey(768)
	k := &dns.DNSKEY{Algorithm: dns.RSASHA256, PublicKey: twRSAPublic(small.n, 65537)}
	if n := valRSABits(k); n != 768 {
		t.Errorf("bits %d, want 768", n)
	}
	if valKeyUnusable(k) == "" {
		t.Error("a 768-bit key must be unusable")
	}
	big := &dns.DNSKEY{Algorithm: dns.RSASHA256, Flags: 256, Protocol: 3}
	if _, err := big.Generate(1024); err != nil {
		t.Fatal(err)
	}
	if n := valRSABits(big); n != 1024 || valKeyUnusable(big) != "" {
		t.Errorf("bits %d", n)
	}
	for _, bad := range []string{"", "AA==", "AAAA", "!!"} {
		if n := valRSABits(&dns.DNSKEY{PublicKey: bad}); n != 0 {
			t.Errorf("%q: %d bits", bad, n)
		}
	}
}

// FuzzValCompare: canonical order is a total order on names that pack.
func FuzzValCompare(f *testing.F) {
	f.Add("a.example.", "Z.a.example.")
	f.Add("\\001.z.example.", "*.z.example.")
	f.Add(".", "example.")
	f.Fuzz(func(t *testing.T, a, b string) {
		if _, ok := dns.IsDomainName(a); !ok {
			return
		}
		if _, ok := dns.IsDomainName(b); !ok {
			return
		}
		ab, ok1 := valCompare(a, b)
		ba, ok2 := valCompare(b, a)
		if ok1 != ok2 || (ok1 && ab != -ba) {
			t.Fatalf("compare(%q,%q)=%d,%v but compare(%q,%q)=%d,%v", a, b, ab, ok1, b, a, ba, ok2)
		}
	})
}

// FuzzValRSABits: the RSA key parser never panics on DNSKEY data.
func FuzzValRSABits(f *testing.F) {
	f.Add([]byte{3, 1, 0, 1, 0xc0, 0})
	f.Add([]byte{0, 0, 3, 1, 0, 1, 0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pub []byte) {
		k := &dns.DNSKEY{Algorithm: dns.RSASHA256, PublicKey: twB64(pub)}
		if n := valRSABits(k); n < 0 || n > 8*len(pub) {
			t.Fatalf("%d bits from %d bytes", n, len(pub))
		}
	})
}
