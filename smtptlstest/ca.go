package smtptlstest

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
	"net"
	"strings"
	"time"
)

// A CA is a two-level test certificate authority: a self-signed root,
// which clients trust, and an intermediate, which issues the leaves. Each
// NewCA has fresh keys, so certificates of one World never verify in
// another. The fields must not be changed after NewCA.
type CA struct {
	// Root is the self-signed root certificate (path length 1).
	Root *x509.Certificate
	// RootKey is the root's private key.
	RootKey crypto.Signer
	// Intermediate is the issuing certificate, signed by Root (path
	// length 0). It is what a DANE-TA(2) TLSA record usually names.
	Intermediate *x509.Certificate
	// IntermediateKey is the intermediate's private key.
	IntermediateKey crypto.Signer
}

// CertOptions shapes a certificate issued by CA.Issue.
type CertOptions struct {
	// NotBefore and NotAfter bound the validity. Zero values mean an hour
	// ago and 90 days from now.
	NotBefore, NotAfter time.Time
	// CommonName is the subject CN. Empty means the first name.
	CommonName string
	// Key is the certificate's key pair. Nil means a new ECDSA P-256
	// key.
	Key crypto.Signer
}

// NewCA creates a CA with fresh ECDSA P-256 keys, valid from an hour ago
// for ten years.
func NewCA() (*CA, error) {
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	root, err := createCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "smtptlstest root CA", Organization: []string{"smtptlstest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}, nil, rootKey, rootKey)
	if err != nil {
		return nil, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	inter, err := createCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "smtptlstest intermediate CA", Organization: []string{"smtptlstest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}, root, rootKey, interKey)
	if err != nil {
		return nil, err
	}
	return &CA{Root: root, RootKey: rootKey, Intermediate: inter, IntermediateKey: interKey}, nil
}

// Pool returns a new certificate pool holding only the root.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Root)
	return p
}

// Issue returns a server (and client) certificate for names, signed by
// the intermediate. Names may be DNS names (any case, with or without the
// trailing dot, U-labels, wildcards such as "*.example.com") or IP
// addresses. The chain in Certificate is leaf then intermediate, without
// the root, as a server sends it; Leaf is set.
func (c *CA) Issue(opts CertOptions, names ...string) (*tls.Certificate, error) {
	return issue(opts, names, c.Intermediate, c.IntermediateKey)
}

// SelfSigned returns a self-signed leaf certificate for names (not a CA),
// valid from an hour ago for 90 days, with a new ECDSA P-256 key: what a
// server that relies on DANE-EE(3) TLSA records typically presents.
func SelfSigned(names ...string) (*tls.Certificate, error) {
	return issue(CertOptions{}, names, nil, nil)
}

func issue(opts CertOptions, names []string, parent *x509.Certificate, parentKey crypto.Signer) (*tls.Certificate, error) {
	now := time.Now()
	if opts.NotBefore.IsZero() {
		opts.NotBefore = now.Add(-time.Hour)
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = now.Add(90 * 24 * time.Hour)
	}
	key := opts.Key
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	}
	tmpl := &x509.Certificate{
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range names {
		if ip := net.ParseIP(strings.Trim(n, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		wild := strings.HasPrefix(n, "*.")
		h, err := hostName(strings.TrimPrefix(n, "*."))
		if err != nil {
			return nil, err
		}
		if wild {
			h = "*." + h
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	tmpl.Subject.CommonName = opts.CommonName
	if tmpl.Subject.CommonName == "" && len(names) > 0 {
		if len(tmpl.DNSNames) > 0 {
			tmpl.Subject.CommonName = tmpl.DNSNames[0]
		} else {
			tmpl.Subject.CommonName = tmpl.IPAddresses[0].String()
		}
	}
	if parent == nil {
		tmpl.Subject.Organization = []string{"smtptlstest self-signed"}
		parentKey = key
	}
	leaf, err := createCert(tmpl, parent, parentKey, key)
	if err != nil {
		return nil, err
	}
	chain := [][]byte{leaf.Raw}
	if parent != nil {
		chain = append(chain, parent.Raw)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// createCert signs tmpl with parentKey (self-signed when parent is nil)
// for the public key of key.
func createCert(tmpl, parent *x509.Certificate, parentKey, key crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("smtptlstest: creating certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}
