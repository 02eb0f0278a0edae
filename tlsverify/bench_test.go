package tlsverify

import (
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"
)

// benchChain is the standard vector chain: ECDSA P-256 leaf and
// intermediate, RSA-2048 root.
func benchChain(b testing.TB) []*x509.Certificate {
	b.Helper()
	for _, v := range loadVectors(b) {
		if v.name == "ta-inter-spki-sha256" {
			return v.chain
		}
	}
	b.Fatal("vector ta-inter-spki-sha256 not found")
	return nil
}

var benchNow = func() time.Time { return time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC) }

func bench(b *testing.B, d *DANE, chain []*x509.Certificate, wantDepth int) {
	b.Helper()
	if m, err := d.VerifyChain(chain); err != nil || m.Depth != wantDepth {
		b.Fatalf("depth %d, err %v", m.Depth, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.VerifyChain(chain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify311 is DANE-EE(3) SPKI(1) SHA-256 against a 3-certificate
// chain; compare with BenchmarkSHA256SPKI.
func BenchmarkVerify311(b *testing.B) {
	chain := benchChain(b)
	d := &DANE{Records: []TLSA{spkiSHA256(chain[0])}, Names: []string{"mx.example.com"}, Now: benchNow}
	bench(b, d, chain, 0)
}

// BenchmarkVerify211 is DANE-TA(2) SPKI(1) SHA-256 matching the
// intermediate of a 3-certificate chain; compare with BenchmarkSigCheck.
func BenchmarkVerify211(b *testing.B) {
	chain := benchChain(b)
	d := &DANE{Records: []TLSA{taSPKISHA256(chain[1])}, Names: []string{"mx.example.com"}, Now: benchNow}
	bench(b, d, chain, 1)
}

// BenchmarkVerify211Root is DANE-TA(2) SPKI(1) SHA-256 matching the root;
// compare with BenchmarkSigCheckRoot.
func BenchmarkVerify211Root(b *testing.B) {
	chain := benchChain(b)
	d := &DANE{Records: []TLSA{taSPKISHA256(chain[2])}, Names: []string{"mx.example.com"}, Now: benchNow}
	bench(b, d, chain, 2)
}

// BenchmarkSHA256SPKI is the irreducible work of a 3 1 1 match.
func BenchmarkSHA256SPKI(b *testing.B) {
	leaf := benchChain(b)[0]
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		_ = h
	}
}

// BenchmarkSigCheck is the irreducible work of BenchmarkVerify211: the
// intermediate's signature on the leaf.
func BenchmarkSigCheck(b *testing.B) {
	chain := benchChain(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := chain[0].CheckSignatureFrom(chain[1]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSigCheckRoot is the irreducible work of BenchmarkVerify211Root:
// two signatures (leaf by intermediate, intermediate by root).
func BenchmarkSigCheckRoot(b *testing.B) {
	chain := benchChain(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := chain[0].CheckSignatureFrom(chain[1]); err != nil {
			b.Fatal(err)
		}
		if err := chain[1].CheckSignatureFrom(chain[2]); err != nil {
			b.Fatal(err)
		}
	}
}

// The DANE-EE(3) hot path must not allocate.
func TestVerify311Allocs(t *testing.T) {
	chain := benchChain(t)
	d := &DANE{Records: []TLSA{spkiSHA256(chain[0])}}
	if _, err := d.VerifyChain(chain); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = d.VerifyChain(chain) }); n != 0 {
		t.Errorf("VerifyChain 3 1 1 allocates %v times per call", n)
	}
}
