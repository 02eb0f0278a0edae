package tlsverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// testPKI is a root -> intermediate -> leaf hierarchy made at test time,
// valid around the real clock, for handshakes. (The vectors in testdata
// carry no private keys.)
type testPKI struct {
	root, inter, leaf *x509.Certificate
	leafKey           *ecdsa.PrivateKey
}

func newTestPKI(t testing.TB, leafName string) *testPKI {
	t.Helper()
	rootKey, interKey, leafKey := genKey(t), genKey(t), genKey(t)
	root := makeCert(t, "Handshake Root", rootKey, true, nil, nil, nil)
	inter := makeCert(t, "Handshake Intermediate", interKey, true, nil, root, rootKey)
	leaf := makeCert(t, leafName, leafKey, false, []string{leafName}, inter, interKey)
	return &testPKI{root, inter, leaf, leafKey}
}

func genKey(t testing.TB) *ecdsa.PrivateKey {
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
		NotAfter:              time.Now().Add(24 * time.Hour),
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

// tlsCert is the server's tls.Certificate: leaf, intermediate, root.
func (p *testPKI) tlsCert() tls.Certificate {
	return tls.Certificate{
		Certificate: [][]byte{p.leaf.Raw, p.inter.Raw, p.root.Raw},
		PrivateKey:  p.leafKey,
	}
}

func (p *testPKI) chain() []*x509.Certificate {
	return []*x509.Certificate{p.leaf, p.inter, p.root}
}

func (p *testPKI) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root)
	return pool
}

func spkiSHA256(c *x509.Certificate) TLSA {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return TLSA{DANEEE, SPKI, SHA256, h[:]}
}

func taSPKISHA256(c *x509.Certificate) TLSA {
	r := spkiSHA256(c)
	r.Usage = DANETA
	return r
}

// negativeSerial re-encodes cert with serial number -1 and re-signs it
// with key: a certificate that is well-formed DER, correctly signed, and
// rejected by Go's x509.ParseCertificate (negative serials are refused
// unless GODEBUG=x509negativeserial=1, which this package never sets).
func negativeSerial(t testing.TB, cert *x509.Certificate, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	var outer struct {
		TBS       asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.Raw, &outer); err != nil {
		t.Fatal(err)
	}
	content := outer.TBS.Bytes
	var version, serial asn1.RawValue
	rest, err := asn1.Unmarshal(content, &version)
	if err != nil {
		t.Fatal(err)
	}
	rest, err = asn1.Unmarshal(rest, &serial)
	if err != nil || serial.Tag != asn1.TagInteger {
		t.Fatalf("unexpected TBS layout: %v", err)
	}
	newContent := append(append(append([]byte{}, version.FullBytes...), 0x02, 0x01, 0xff), rest...)
	tbs, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: newContent})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(tbs)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		TBS       asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, asn1.RawValue{FullBytes: outer.Algorithm.FullBytes}, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}
