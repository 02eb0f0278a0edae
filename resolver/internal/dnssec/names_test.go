package dnssec

import (
	"crypto/rand"
	"encoding/base64"
	"math/big"
	mrand "math/rand/v2"
	"testing"

	"github.com/miekg/dns"
)

// TestCompareCanonicalOrder checks the example of RFC 4034 6.1, shuffled.
func TestCompareCanonicalOrder(t *testing.T) {
	t.Parallel()
	want := []string{
		"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.",
		"z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example.",
	}
	for i := 1; i < len(want); i++ {
		if !less(want[i-1], want[i]) || less(want[i], want[i-1]) {
			t.Errorf("%s should sort before %s", want[i-1], want[i])
		}
	}
	got := append([]string{}, want...)
	mrand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
	for i := range got {
		for j := i + 1; j < len(got); j++ {
			if less(got[j], got[i]) {
				got[i], got[j] = got[j], got[i]
			}
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sorted %v, want %v", got, want)
		}
	}
	if c, ok := compare("Example.", "eXample."); !ok || c != 0 {
		t.Errorf("case must not matter: %d %v", c, ok)
	}
}

func TestNameHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want string }{
		{parent("a.b.example."), "b.example."},
		{parent("example."), "."},
		{parent("."), "."},
		{parent("a\\.b.example."), "example."},
		{suffix("a.b.example.", 2), "b.example."},
		{suffix("a.b.example.", 0), "."},
		{suffix("a.b.example.", 9), "a.b.example."},
		{commonAncestor("a.b.example.", "c.b.example."), "b.example."},
		{wildcard("."), "*."},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if isAncestor("xample.test.", "example.test.") {
		t.Error("a string suffix is not an ancestor")
	}
	if !isAncestor(".", "example.test.") || !isProperAncestor("test.", "example.test.") || isProperAncestor("test.", "TEST.") {
		t.Error("ancestor checks")
	}
	if n := sigLabels("*.a.example."); n != 2 {
		t.Errorf("labels of a wildcard owner: %d", n)
	}
}

func TestRSABits(t *testing.T) {
	t.Parallel()
	k := &dns.DNSKEY{Algorithm: dns.RSASHA256, PublicKey: rsaPublic(rsaModulus(t, 768), 65537)}
	if n := rsaBits(k); n != 768 {
		t.Errorf("bits %d, want 768", n)
	}
	if keyUnusable(k) == "" {
		t.Error("a 768-bit key must be unusable")
	}
	big := &dns.DNSKEY{Algorithm: dns.RSASHA256, Flags: 256, Protocol: 3}
	if _, err := big.Generate(1024); err != nil {
		t.Fatal(err)
	}
	if n := rsaBits(big); n != 1024 || keyUnusable(big) != "" {
		t.Errorf("bits %d", n)
	}
	for _, bad := range []string{"", "AA==", "AAAA", "!!"} {
		if n := rsaBits(&dns.DNSKEY{PublicKey: bad}); n != 0 {
			t.Errorf("%q: %d bits", bad, n)
		}
	}
}

// FuzzCompare: canonical order is a total order on names that pack.
func FuzzCompare(f *testing.F) {
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
		ab, ok1 := compare(a, b)
		ba, ok2 := compare(b, a)
		if ok1 != ok2 || (ok1 && ab != -ba) {
			t.Fatalf("compare(%q,%q)=%d,%v but compare(%q,%q)=%d,%v", a, b, ab, ok1, b, a, ba, ok2)
		}
	})
}

// FuzzRSABits: the RSA key parser never panics on DNSKEY data.
func FuzzRSABits(f *testing.F) {
	f.Add([]byte{3, 1, 0, 1, 0xc0, 0})
	f.Add([]byte{0, 0, 3, 1, 0, 1, 0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pub []byte) {
		k := &dns.DNSKEY{Algorithm: dns.RSASHA256, PublicKey: base64.StdEncoding.EncodeToString(pub)}
		if n := rsaBits(k); n < 0 || n > 8*len(pub) {
			t.Fatalf("%d bits from %d bytes", n, len(pub))
		}
	})
}

// rsaModulus returns a product of two random primes of exactly bits bits:
// crypto/rsa refuses to generate keys below 1024 bits.
func rsaModulus(t *testing.T, bits int) *big.Int {
	t.Helper()
	for {
		p, err := rand.Prime(rand.Reader, bits/2)
		if err != nil {
			t.Fatal(err)
		}
		q, err := rand.Prime(rand.Reader, bits/2)
		if err != nil {
			t.Fatal(err)
		}
		if n := new(big.Int).Mul(p, q); n.BitLen() == bits {
			return n
		}
	}
}

// rsaPublic encodes an RSA public key as DNSKEY data (RFC 3110 2).
func rsaPublic(n *big.Int, e int) string {
	eb := big.NewInt(int64(e)).Bytes()
	buf := append([]byte{byte(len(eb))}, eb...)
	buf = append(buf, n.Bytes()...)
	return base64.StdEncoding.EncodeToString(buf)
}
