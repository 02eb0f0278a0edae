package mtasts

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

// testPKI is a throw-away certificate authority for the real-HTTPS fetch
// tests.
type testPKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mtasts test root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testPKI{cert: cert, key: key, pool: pool}
}

var serial struct {
	sync.Mutex
	n int64
}

// leaf issues a server certificate for names, valid from nb to na (zero
// means an hour ago to a day ahead).
func (p *testPKI) leaf(t testing.TB, nb, na time.Time, names ...string) tls.Certificate {
	t.Helper()
	if nb.IsZero() {
		nb, na = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial.Lock()
	serial.n++
	sn := serial.n + 1
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// policyServer is a real HTTPS server on loopback that serves policy
// hosts by SNI, and a client that dials it for every known host name (and
// fails like a DNS miss for unknown ones).
type policyServer struct {
	srv   *httptest.Server
	pki   *testPKI
	mu    sync.Mutex // guards certs and hosts
	certs map[string]*tls.Certificate
	hosts map[string]http.HandlerFunc
	// requests records each request's host.
	requests []*http.Request
}

func newPolicyServer(t testing.TB) *policyServer {
	t.Helper()
	ps := &policyServer{pki: newTestPKI(t), certs: map[string]*tls.Certificate{}, hosts: map[string]http.HandlerFunc{}}
	ps.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.mu.Lock()
		h := ps.hosts[r.Host]
		ps.requests = append(ps.requests, r)
		ps.mu.Unlock()
		if h == nil || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	ps.srv.TLS = &tls.Config{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			ps.mu.Lock()
			defer ps.mu.Unlock()
			if c := ps.certs[hello.ServerName]; c != nil {
				return c, nil
			}
			return nil, errors.New("no certificate for " + hello.ServerName)
		},
	}
	ps.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	ps.srv.StartTLS()
	t.Cleanup(ps.srv.Close)
	return ps
}

// serve registers host with a certificate (nil = a valid one from the
// server's CA) and a handler.
func (ps *policyServer) serve(t testing.TB, host string, cert *tls.Certificate, h http.HandlerFunc) {
	t.Helper()
	if cert == nil {
		c := ps.pki.leaf(t, time.Time{}, time.Time{}, host)
		cert = &c
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.certs[host] = cert
	ps.hosts[host] = h
}

// servePolicy serves body as text/plain with status 200.
func (ps *policyServer) servePolicy(t testing.TB, host, body string) {
	ps.serve(t, host, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(body))
	})
}

// client returns an HTTP client that trusts the server's CA and dials the
// server for every registered host. It follows redirects by default, as
// http.Client does: Fetch must refuse them anyway.
func (ps *policyServer) client() *http.Client {
	addr := ps.srv.Listener.Addr().String()
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, hostport string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(hostport)
			ps.mu.Lock()
			_, ok := ps.certs[host]
			ps.mu.Unlock()
			if !ok {
				return nil, &net.OpError{Op: "dial", Net: network,
					Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: ps.pki.pool},
	}}
}

func (ps *policyServer) lastRequest() *http.Request {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.requests) == 0 {
		return nil
	}
	return ps.requests[len(ps.requests)-1]
}

func (ps *policyServer) count(host string) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	n := 0
	for _, r := range ps.requests {
		if strings.EqualFold(r.Host, host) {
			n++
		}
	}
	return n
}

// poolOf returns a pool trusting the given certificates themselves, as
// mox's test trusts its self-signed leaf.
func poolOf(certs ...tls.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c.Leaf)
	}
	return pool
}

// resultTypeOf returns the TLS-RPT result type carried by err.
func resultTypeOf(err error) tlsrpt.ResultType {
	var e *Error
	if errors.As(err, &e) {
		return e.Result
	}
	return ""
}
