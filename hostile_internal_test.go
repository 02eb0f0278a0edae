package smtptls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/mtasts"
)

// TestPolicyHTTPClientBoundsHeaders: the Evaluator's default MTA-STS
// fetch client refuses response headers larger than 64 KiB (invariant 4:
// every peer-controlled input is bounded), where a zero
// http.Transport.MaxResponseHeaderBytes would accept 10 MB.
func TestPolicyHTTPClientBoundsHeaders(t *testing.T) {
	t.Parallel()
	const host = "mta-sts.hostile.example"
	cert, pool := selfSignedFor(t, host)
	const policy = "version: STSv1\nmode: enforce\nmx: mx.hostile.example\nmax_age: 86400\n"
	for _, tc := range []struct {
		name   string
		header int
		ok     bool
	}{
		{"1 KiB header", 1 << 10, true},
		{"1 MiB header", 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("X-Padding", strings.Repeat("a", tc.header))
				w.Write([]byte(policy))
			}))
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			srv.StartTLS()
			defer srv.Close()
			c := policyHTTPClient(pool, nil, func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, srv.Listener.Addr().String())
			})
			_, err := mtasts.Fetch(context.Background(), c, "hostile.example")
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *mtasts.Error
			if !errors.As(err, &e) || e.Kind != mtasts.KindNetwork {
				t.Fatalf("Fetch with a %d-byte header: %v", tc.header, err)
			}
		})
	}
}

// selfSignedFor returns a self-signed certificate for host and a pool
// trusting it.
func selfSignedFor(t *testing.T, host string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
