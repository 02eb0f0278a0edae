package tlsverify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

// tlsServer is a real crypto/tls server on a loopback socket. It records
// the SNI name of every ClientHello and writes "ok" after each handshake
// (so that TLS 1.3 clients receive the session ticket).
type tlsServer struct {
	ln  net.Listener
	mu  sync.Mutex // guards sni
	sni []string
}

func startTLSServer(t *testing.T, cert tls.Certificate, maxVersion uint16) *tlsServer {
	t.Helper()
	s := &tlsServer{}
	cfg := &tls.Config{
		MaxVersion: maxVersion,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			s.mu.Lock()
			s.sni = append(s.sni, hello.ServerName)
			s.mu.Unlock()
			return &cert, nil
		},
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err == nil {
					_, _ = c.Write([]byte("ok"))
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

func (s *tlsServer) lastSNI() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sni) == 0 {
		return ""
	}
	return s.sni[len(s.sni)-1]
}

// dial runs one client handshake with cfg and reads the server's "ok".
func dial(t *testing.T, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read after handshake: %v", err)
	}
	return c.ConnectionState(), nil
}

// recorder wraps a verifier and records every call and whether the
// connection being verified was resumed.
type recorder struct {
	v       Verifier
	mu      sync.Mutex // guards resumed
	resumed []bool
}

func (r *recorder) Verify(cs tls.ConnectionState) error {
	r.mu.Lock()
	r.resumed = append(r.resumed, cs.DidResume)
	r.mu.Unlock()
	return r.v.Verify(cs)
}

func (r *recorder) calls() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.resumed...)
}

func TestHandshake(t *testing.T) {
	t.Parallel()
	const mx = "mx.example.com"
	pki := newTestPKI(t, mx)
	other := newTestPKI(t, "other.example.net")
	srv := startTLSServer(t, pki.tlsCert(), 0)

	for _, tc := range []struct {
		name   string
		v      Verifier
		sni    string
		kind   Kind // 0: accept
		result tlsrpt.ResultType
	}{
		{name: "dane-ee", v: &DANE{Records: []TLSA{spkiSHA256(pki.leaf)}}, sni: "MX.Example.COM."},
		{name: "dane-ta", v: &DANE{Records: []TLSA{taSPKISHA256(pki.inter)}, Names: []string{mx}}, sni: mx},
		{name: "dane-ta-root", v: &DANE{Records: []TLSA{taSPKISHA256(pki.root)}, Names: []string{mx}}, sni: mx},
		{name: "dane-ee-wrong", v: &DANE{Records: []TLSA{spkiSHA256(other.leaf)}}, sni: mx, kind: KindNoMatch, result: tlsrpt.ValidationFailure},
		{name: "dane-ta-wrong-name", v: &DANE{Records: []TLSA{taSPKISHA256(pki.inter)}, Names: []string{"other.example.net"}}, sni: mx, kind: KindNameMismatch, result: tlsrpt.CertificateHostMismatch},
		{name: "dane-unusable", v: &DANE{Records: []TLSA{{PKIXEE, SPKI, SHA256, spkiSHA256(pki.leaf).Data}}}, sni: mx, kind: KindNoUsableRecords, result: tlsrpt.TLSAInvalid},
		{name: "pkix", v: &PKIX{Roots: pki.roots(), Host: "MX.example.com."}, sni: mx},
		{name: "pkix-wrong-host", v: &PKIX{Roots: pki.roots(), Host: "other.example.net"}, sni: mx, kind: KindNameMismatch, result: tlsrpt.CertificateHostMismatch},
		{name: "pkix-untrusted", v: &PKIX{Roots: other.roots(), Host: mx}, sni: mx, kind: KindUntrusted, result: tlsrpt.CertificateNotTrusted},
		{name: "pkix-expired", v: &PKIX{Roots: pki.roots(), Host: mx, Now: func() time.Time { return time.Now().Add(48 * time.Hour) }}, sni: mx, kind: KindExpired, result: tlsrpt.CertificateExpired},
		{name: "pkix-no-host", v: &PKIX{Roots: pki.roots()}, sni: mx, kind: KindConfig, result: tlsrpt.ValidationFailure},
		{name: "nil-verifier", v: nil, sni: mx, kind: KindConfig, result: tlsrpt.ValidationFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Sequential: the SNI check reads the server's last hello.
			cs, err := dial(t, srv.ln.Addr().String(), Config(nil, tc.sni, tc.v))
			if got := srv.lastSNI(); got != mx {
				t.Errorf("server saw SNI %q, want %q", got, mx)
			}
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("handshake failed: %v", err)
				}
				if cs.Version < tls.VersionTLS12 {
					t.Errorf("negotiated version %x", cs.Version)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error of kind %s", err, tc.kind)
			}
			if e.Kind != tc.kind || ClassifyHandshakeError(err) != tc.result {
				t.Errorf("got kind %s, result %s; want %s, %s", e.Kind, ClassifyHandshakeError(err), tc.kind, tc.result)
			}
		})
	}
}

// TestResumptionIsVerified proves that a resumed session does not skip
// verification: the second handshake resumes (DidResume, seen both by the
// client and inside the verifier), and a third one, resuming the same
// session under records that no longer match, is rejected.
func TestResumptionIsVerified(t *testing.T) {
	t.Parallel()
	const mx = "mx.example.com"
	pki := newTestPKI(t, mx)
	other := newTestPKI(t, mx)
	for _, tc := range []struct {
		name    string
		version uint16
	}{
		{"tls12", tls.VersionTLS12},
		{"tls13", tls.VersionTLS13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startTLSServer(t, pki.tlsCert(), tc.version)
			addr := srv.ln.Addr().String()
			base := &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			good := &recorder{v: &DANE{Records: []TLSA{spkiSHA256(pki.leaf)}}}
			bad := &recorder{v: &DANE{Records: []TLSA{spkiSHA256(other.leaf)}}}

			cs, err := dial(t, addr, Config(base, mx, good))
			if err != nil || cs.DidResume {
				t.Fatalf("first handshake: err %v, resumed %v", err, cs.DidResume)
			}
			cs, err = dial(t, addr, Config(base, mx, good))
			if err != nil || !cs.DidResume {
				t.Fatalf("second handshake: err %v, resumed %v; want a resumed session", err, cs.DidResume)
			}
			if got := good.calls(); len(got) != 2 || got[0] || !got[1] {
				t.Fatalf("verifier calls (resumed?) %v, want [false true]", got)
			}
			_, err = dial(t, addr, Config(base, mx, bad))
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindNoMatch {
				t.Fatalf("resumed handshake under changed records: got %v, want KindNoMatch", err)
			}
			if got := bad.calls(); len(got) != 1 || !got[0] {
				t.Fatalf("verifier calls (resumed?) %v, want [true]: the rejected handshake was a resumption", got)
			}
		})
	}
}

// TestUnparsableCertificate shows the limit documented in the package
// doc: crypto/tls parses the server's certificates before VerifyConnection
// runs, so a leaf Go cannot parse ends the handshake even though a
// DANE-EE(3) record matches its key, and the verifier is never called.
// ClassifyHandshakeError reports it as validation-failure.
func TestUnparsableCertificate(t *testing.T) {
	t.Parallel()
	const mx = "mx.example.com"
	pki := newTestPKI(t, mx)
	der := negativeSerial(t, pki.leaf, pki.leafKey)
	if _, err := x509.ParseCertificate(der); err == nil {
		t.Fatal("crafted certificate parses; the test no longer exercises an unparsable leaf")
	}
	srv := startTLSServer(t, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: pki.leafKey}, 0)
	// The record matches the crafted leaf's key: the same key as pki.leaf.
	r := &recorder{v: &DANE{Records: []TLSA{spkiSHA256(pki.leaf)}}}
	_, err := dial(t, srv.ln.Addr().String(), Config(nil, mx, r))
	if err == nil {
		t.Fatal("handshake with an unparsable leaf succeeded")
	}
	if n := len(r.calls()); n != 0 {
		t.Errorf("verifier called %d times, want 0", n)
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("error is a *Error (%v); crypto/tls should have failed first", err)
	}
	if got := ClassifyHandshakeError(err); got != tlsrpt.ValidationFailure {
		t.Errorf("ClassifyHandshakeError = %q, want %q (err %v)", got, tlsrpt.ValidationFailure, err)
	}
	t.Logf("handshake error: %v", err)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	d := &DANE{}
	for _, tc := range []struct {
		name    string
		base    *tls.Config
		sni     string
		wantMin uint16
		wantSNI string
	}{
		{"nil-base", nil, "MX.Example.COM.", tls.VersionTLS12, "mx.example.com"},
		{"raise-min", &tls.Config{MinVersion: tls.VersionTLS10}, "mx.example.com", tls.VersionTLS12, "mx.example.com"},
		{"keep-higher-min", &tls.Config{MinVersion: tls.VersionTLS13}, "mx.example.com", tls.VersionTLS13, "mx.example.com"},
		{"idn", nil, "bücher.example", tls.VersionTLS12, "xn--bcher-kva.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Config(tc.base, tc.sni, d)
			if c == tc.base {
				t.Fatal("base not cloned")
			}
			if c.MinVersion != tc.wantMin || c.ServerName != tc.wantSNI || !c.InsecureSkipVerify || c.VerifyConnection == nil {
				t.Errorf("got MinVersion %x ServerName %q InsecureSkipVerify %v VerifyConnection set %v",
					c.MinVersion, c.ServerName, c.InsecureSkipVerify, c.VerifyConnection != nil)
			}
			if tc.base != nil && (tc.base.InsecureSkipVerify || tc.base.VerifyConnection != nil) {
				t.Error("base modified")
			}
		})
	}
}
