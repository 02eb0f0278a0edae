package tlsverify

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

// TestPKIXUnhandledCriticalExtension shows the one classification that
// changed when the copies became tlsrpt.Classify: a leaf with a critical
// extension x509 does not understand used to be KindPKIX,
// validation-failure, here (while crypto/tls's own verification of the
// same certificate reported certificate-not-trusted). RFC 8460 4.3.1 makes
// certificate-not-trusted the catch-all for certificate failures, so it is
// now KindUntrusted, certificate-not-trusted, however it is reached.
func TestPKIXUnhandledCriticalExtension(t *testing.T) {
	t.Parallel()
	const mx = "mx.example.com"
	rootKey, leafKey := genKey(t), genKey(t)
	root := makeCert(t, "Critical Root", rootKey, true, nil, nil, nil)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: mx},
		DNSNames:     []string{mx},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		ExtraExtensions: []pkix.Extension{{
			Id:       asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1},
			Critical: true,
			Value:    []byte{0x05, 0x00},
		}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, leafKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	err = (&PKIX{Roots: roots, Host: mx}).VerifyChain([]*x509.Certificate{leaf})
	e, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("VerifyChain = %v, want *Error", err)
	}
	if _, ok := errors.AsType[x509.UnhandledCriticalExtension](err); !ok {
		t.Fatalf("VerifyChain = %v, want it to wrap x509.UnhandledCriticalExtension", err)
	}
	if e.Kind != KindUntrusted || e.Result != tlsrpt.CertificateNotTrusted {
		t.Errorf("got kind %s, result %s; want %s, %s", e.Kind, e.Result, KindUntrusted, tlsrpt.CertificateNotTrusted)
	}
	if got := ClassifyHandshakeError(x509.UnhandledCriticalExtension{}); got != tlsrpt.CertificateNotTrusted {
		t.Errorf("ClassifyHandshakeError(bare x509.UnhandledCriticalExtension) = %q, want %q", got, tlsrpt.CertificateNotTrusted)
	}
}
