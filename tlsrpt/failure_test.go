package tlsrpt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/smtptls/smtptls/internal/sharedtest"
	"github.com/smtptls/smtptls/tlsrpt"
	"github.com/smtptls/smtptls/tlsverify"
)

// testPKI is a CA with a valid and an expired leaf for "localhost".
type testPKI struct {
	roots          *x509.CertPool
	valid, expired tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tlsrpt test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, notBefore, notAfter time.Time) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "localhost"},
			DNSNames:     []string{"localhost"},
			NotBefore:    notBefore,
			NotAfter:     notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	p := &testPKI{roots: x509.NewCertPool()}
	p.roots.AddCert(ca)
	p.valid = leaf(2, now.Add(-time.Hour), now.Add(time.Hour))
	p.expired = leaf(3, now.Add(-2*time.Hour), now.Add(-time.Hour))
	return p
}

// serve accepts one connection on a loopback listener and hands it to
// handle; it returns the address.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		handle(c)
	}()
	return ln.Addr().String()
}

func tlsServer(cfg *tls.Config) func(net.Conn) {
	return func(c net.Conn) {
		tls.Server(c, cfg).Handshake()
	}
}

// silent holds the connection open, reading nothing, until the client
// goes away.
func silent(c net.Conn) { io.Copy(io.Discard, c) }

// handshake dials addr and runs a client handshake with cfg; prepare may
// set up the connection or the context first.
func handshake(t *testing.T, addr string, cfg *tls.Config, prepare func(net.Conn) context.Context) error {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if prepare != nil {
		ctx = prepare(c)
	} else {
		c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	return tls.Client(c, cfg).HandshakeContext(ctx)
}

// Each scenario of mox-tlsrpt-failure-details-vectors.json, run as a real
// TLS handshake over loopback. The result type comes from
// tlsverify.ClassifyHandshakeError (tlsrpt.Classify, with
// validation-failure for other handshake errors), the failure-reason-code
// from tlsrpt.FailureReasonCode.
func TestFailureDetailsVectors(t *testing.T) {
	t.Parallel()
	var vs []struct {
		Scenario          string
		ResultType        tlsrpt.ResultType `json:"result_type"`
		FailureReasonCode string            `json:"failure_reason_code"`
		AlsoAccepted      string            `json:"failure_reason_code_also_accepted"`
		Source            string
	}
	if err := json.Unmarshal(sharedtest.ReadFile(t, "vectors", "mtasts", "mox-tlsrpt-failure-details-vectors.json"), &vs); err != nil {
		t.Fatal(err)
	}
	pki := newTestPKI(t)
	trusting := func(name string) *tls.Config {
		return &tls.Config{RootCAs: pki.roots, ServerName: name}
	}
	scenarios := map[string]func(t *testing.T) error{
		"server presents expired certificate (trusted, name localhost, client ServerName localhost)": func(t *testing.T) error {
			return handshake(t, serve(t, tlsServer(&tls.Config{Certificates: []tls.Certificate{pki.expired}})), trusting("localhost"), nil)
		},
		"valid certificate for localhost, client ServerName otherhost": func(t *testing.T) error {
			return handshake(t, serve(t, tlsServer(&tls.Config{Certificates: []tls.Certificate{pki.valid}})), trusting("otherhost"), nil)
		},
		"valid certificate for localhost, client has empty RootCAs (not signed by a trusted CA)": func(t *testing.T) error {
			return handshake(t, serve(t, tlsServer(&tls.Config{Certificates: []tls.Certificate{pki.valid}})), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}, nil)
		},
		"client limited to TLS 1.0, server requires TLS 1.2 minimum": func(t *testing.T) error {
			cfg := trusting("localhost")
			cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
			return handshake(t, serve(t, tlsServer(&tls.Config{Certificates: []tls.Certificate{pki.valid}, MinVersion: tls.VersionTLS12})), cfg, nil)
		},
		"remote does not speak TLS (writes 128-byte zero buffers)": func(t *testing.T) error {
			return handshake(t, serve(t, func(c net.Conn) {
				buf := make([]byte, 128)
				for range 64 {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}), trusting("localhost"), nil)
		},
		"context deadline (1ns) exceeded during handshake, server silent": func(t *testing.T) error {
			return handshake(t, serve(t, silent), trusting("localhost"), func(c net.Conn) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
				t.Cleanup(cancel)
				return ctx
			})
		},
		"connection deadline set to now before handshake, server silent": func(t *testing.T) error {
			return handshake(t, serve(t, silent), trusting("localhost"), func(c net.Conn) context.Context {
				c.SetDeadline(time.Now())
				return context.Background()
			})
		},
		"server closes the connection during handshake": func(t *testing.T) error {
			return handshake(t, serve(t, func(c net.Conn) {
				// Read the ClientHello, then close without answering.
				c.Read(make([]byte, 16<<10))
			}), trusting("localhost"), nil)
		},
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(v.Source, func(t *testing.T) {
			t.Parallel()
			run, ok := scenarios[v.Scenario]
			if !ok {
				t.Fatalf("no setup for scenario %q", v.Scenario)
			}
			err := run(t)
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			if got := tlsverify.ClassifyHandshakeError(err); got != v.ResultType {
				t.Errorf("result type %q, want %q (err %v)", got, v.ResultType, err)
			}
			got := tlsrpt.FailureReasonCode(err)
			if got != v.FailureReasonCode && (v.AlsoAccepted == "" || got != v.AlsoAccepted) {
				t.Errorf("failure-reason-code %q, want %q (err %v)", got, v.FailureReasonCode, err)
			}
		})
	}
}

func TestFailureReasonCodeOther(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"canceled", context.Canceled, ""},
		{"local-alert", tls.AlertError(40), "tls-local-alert-40-handshake-failure"},
		{"unknown-alert", tls.AlertError(255), "tls-local-alert-255"},
		{"remote-unexpected-eof", io.ErrUnexpectedEOF, tlsrpt.ReasonConnectionClosed},
		{"other", io.ErrShortWrite, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tlsrpt.FailureReasonCode(tc.err); got != tc.want {
				t.Errorf("FailureReasonCode(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
