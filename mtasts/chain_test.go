package mtasts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"time"
)

// fataler is what the chain helpers need of a testing.TB; the
// benchmark's policy host process, which has none, passes exitFatal.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// exitFatal is a fataler for a process without a testing.TB: it prints
// the failure and exits.
type exitFatal struct{}

func (exitFatal) Helper() {}

func (exitFatal) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(1)
}

func (exitFatal) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// chainPKI is a three-level WebPKI in miniature, as policy hosts present
// it: a root (in pool), an intermediate that issues the leaves, and the
// leaves, which servers send followed by the intermediate.
type chainPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
	pool              *x509.CertPool
	alg               string
}

// newKey returns a new key: "p256" (ECDSA P-256) or "rsa2048".
func newKey(t fataler, alg string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown key algorithm %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mkcert signs tmpl with parentKey as parent (nil: self-signed) for key.
func mkcert(t fataler, tmpl, parent *x509.Certificate, parentKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	serial.Lock()
	serial.n++
	tmpl.SerialNumber = big.NewInt(serial.n + 1000)
	serial.Unlock()
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

// caTemplate is a CA certificate template valid from nb to na.
func caTemplate(cn string, nb, na time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"mtasts test"}},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// newChainPKI returns a root and an intermediate with keys of alg, valid
// from an hour ago for a year.
func newChainPKI(t fataler, alg string) *chainPKI {
	t.Helper()
	now := time.Now()
	return newChainPKIWith(t, alg, caTemplate("mtasts test root", now.Add(-time.Hour), now.AddDate(1, 0, 0)),
		caTemplate("mtasts test intermediate", now.Add(-time.Hour), now.AddDate(1, 0, 0)))
}

// newChainPKIWith returns a root and an intermediate from the templates.
func newChainPKIWith(t fataler, alg string, rootTmpl, interTmpl *x509.Certificate) *chainPKI {
	t.Helper()
	p := &chainPKI{alg: alg, rootKey: newKey(t, alg), interKey: newKey(t, alg)}
	p.root = mkcert(t, rootTmpl, nil, nil, p.rootKey)
	p.inter = mkcert(t, interTmpl, p.root, p.rootKey, p.interKey)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.root)
	return p
}

// leafTemplate is a serverAuth leaf template for names, valid from an
// hour ago for 90 days.
func leafTemplate(names ...string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0]},
		DNSNames:    names,
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(90 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// issue returns a server certificate from tmpl signed by the
// intermediate, with the chain a server sends: leaf, intermediate.
func (p *chainPKI) issue(t fataler, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key := newKey(t, p.alg)
	leaf := mkcert(t, tmpl, p.inter, p.interKey, key)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, p.inter.Raw}, PrivateKey: key, Leaf: leaf}
}

// certsOf parses a tls.Certificate's chain as a handshake would.
func certsOf(t fataler, c tls.Certificate) []*x509.Certificate {
	t.Helper()
	out := make([]*x509.Certificate, len(c.Certificate))
	for i, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = x
	}
	return out
}
