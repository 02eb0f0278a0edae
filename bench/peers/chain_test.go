package peers

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsverify"
)

// benchHost is the MX host name the benchmark leaf certificate is issued
// for, and the TLSA base domain both verifiers check DANE-TA(2) against.
const benchHost = "mx.example.com"

// newChain makes the chain a server sends, leaf first: an ECDSA P-256
// leaf for benchHost, an ECDSA P-256 intermediate, and an RSA-2048 root
// (the shape of the main module's tlsverify benchmarks, so that figures
// can be set side by side). Validity is around the real clock, because
// mox's dane.Verify has no clock parameter.
func newChain(t testing.TB) []*x509.Certificate {
	t.Helper()
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	interKey, leafKey := ecKey(t), ecKey(t)
	root := makeCert(t, "Bench Root", rootKey, true, nil, nil, nil)
	inter := makeCert(t, "Bench Intermediate", interKey, true, nil, root, rootKey)
	leaf := makeCert(t, benchHost, leafKey, false, []string{benchHost}, inter, interKey)
	return []*x509.Certificate{leaf, inter, root}
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func makeCert(t testing.TB, cn string, key crypto.Signer, ca bool, dns []string, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  ca,
		DNSNames:              dns,
	}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// spkiSHA256 is the "<usage> 1 1" record for c's public key.
func spkiSHA256(usage uint8, c *x509.Certificate) tlsverify.TLSA {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return tlsverify.TLSA{Usage: usage, Selector: tlsverify.SPKI, MatchingType: tlsverify.SHA256, Data: h[:]}
}
