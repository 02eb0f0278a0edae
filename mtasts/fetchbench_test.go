package mtasts

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The fetch benchmark measures the CPU a policy fetch costs the client
// alone. The policy host, an httptest TLS server, runs in a child
// process (this test binary, started again with policyHostEnv set), so
// that the process CPU time (getrusage) of the benchmark is the client's:
// dialling, the TLS handshake, the HTTP exchange, parsing, and the
// runtime's work for them (garbage collection included).

// policyHostEnv makes the test binary serve as the policy host of the
// benchmark; its value is the key algorithm of the chain ("p256" or
// "rsa2048").
const policyHostEnv = "MTASTS_BENCH_POLICY_HOST"

// tls13ServerContext is what a TLS 1.3 server signs in CertificateVerify
// (RFC 8446 4.4.3): 64 spaces, the context string, and the transcript
// hash (here a fixed one of the right length).
var tls13ServerSigned = strings.Repeat(" ", 64) + "TLS 1.3, server CertificateVerify\x00" + strings.Repeat("h", sha256.Size)

func TestMain(m *testing.M) {
	if alg := os.Getenv(policyHostEnv); alg != "" {
		os.Exit(servePolicyHost(alg))
	}
	os.Exit(m.Run())
}

// servePolicyHost runs the benchmark's policy host until its standard
// input closes. It prints the listener's address, the chain (root,
// intermediate, leaf) and a CertificateVerify signature by the leaf's
// key, one "name base64" line each, then "ready".
func servePolicyHost(alg string) int {
	t := exitFatal{}
	p := newChainPKI(t, alg)
	cert := p.issue(t, leafTemplate("mta-sts.bench.example"))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, goodPolicy)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	// A real policy host offers HTTP/2; the client decides.
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // tcp-only hangs up before the handshake
	srv.StartTLS()
	defer srv.Close()

	digest := sha256.Sum256([]byte(tls13ServerSigned))
	var sig []byte
	var err error
	switch k := cert.PrivateKey.(type) {
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, k, digest[:])
	case *rsa.PrivateKey:
		sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b64 := base64.StdEncoding.EncodeToString
	fmt.Printf("addr %s\nroot %s\ninter %s\nleaf %s\nsig %s\nready\n", b64([]byte(srv.Listener.Addr().String())),
		b64(p.root.Raw), b64(p.inter.Raw), b64(cert.Leaf.Raw), b64(sig))
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// benchPolicyHost is the parent's view of the child policy host.
type benchPolicyHost struct {
	addr              string
	root, inter, leaf *x509.Certificate
	sig               []byte
	pool              *x509.CertPool
}

// startPolicyHost starts the child policy host with a chain of alg.
func startPolicyHost(b *testing.B, alg string) *benchPolicyHost {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), policyHostEnv+"="+alg)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	fields := map[string][]byte{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		name, v, _ := strings.Cut(sc.Text(), " ")
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			b.Fatalf("policy host said %q", sc.Text())
		}
		fields[name] = raw
	}
	h := &benchPolicyHost{addr: string(fields["addr"]), sig: fields["sig"], pool: x509.NewCertPool()}
	for name, c := range map[string]**x509.Certificate{"root": &h.root, "inter": &h.inter, "leaf": &h.leaf} {
		if *c, err = x509.ParseCertificate(fields[name]); err != nil {
			b.Fatalf("policy host's %s: %v", name, err)
		}
	}
	h.pool.AddCert(h.root)
	return h
}

func (h *benchPolicyHost) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, h.addr)
}

// floor does the cryptography a client must do in one TLS 1.3 handshake
// with the host's chain: an X25519 key pair and shared secret, the
// server's CertificateVerify signature, the leaf's signature by the
// intermediate and the intermediate's by the root.
func (h *benchPolicyHost) floor(b *testing.B, serverShare *ecdh.PublicKey) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := k.ECDH(serverShare); err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte(tls13ServerSigned))
	switch pub := h.leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], h.sig) {
			b.Fatal("CertificateVerify signature does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], h.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			b.Fatal(err)
		}
	}
	if err := h.leaf.CheckSignatureFrom(h.inter); err != nil {
		b.Fatal(err)
	}
	if err := h.inter.CheckSignatureFrom(h.root); err != nil {
		b.Fatal(err)
	}
}

// fetchVariants are what BenchmarkFetchCPU measures, each against the
// floor. First the clients: what the default fetch client was before
// FetchTransport (HTTP/2 by ALPN, Go's default hybrid X25519MLKEM768 key
// exchange, crypto/tls's verification), then one change at a time, then
// FetchTransport. Then, for reference, parts of a fetch alone: a TCP
// connection opened and closed, and that plus FetchTransport's TLS
// handshake (with its cache), without HTTP.
var fetchVariants = []struct {
	name string
	op   func(b *testing.B, h *benchPolicyHost) func()
}{
	{"http2-mlkem", fetchWith(func(h *benchPolicyHost) http.RoundTripper {
		return &http.Transport{DialContext: h.dial, ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: h.pool, MinVersion: tls.VersionTLS12}}
	})},
	{"http1-mlkem", fetchWith(func(h *benchPolicyHost) http.RoundTripper {
		var p http.Protocols
		p.SetHTTP1(true)
		return &http.Transport{DialContext: h.dial, Protocols: &p, DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: h.pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}
	})},
	{"http1-x25519", fetchWith(func(h *benchPolicyHost) http.RoundTripper {
		var p http.Protocols
		p.SetHTTP1(true)
		return &http.Transport{DialContext: h.dial, Protocols: &p, DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: h.pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
				CurvePreferences: fetchCurves}}
	})},
	{"FetchTransport", fetchWith(func(h *benchPolicyHost) http.RoundTripper {
		return &FetchTransport{RootCAs: h.pool, DialContext: h.dial}
	})},
	{"tcp-only", func(b *testing.B, h *benchPolicyHost) func() {
		return func() {
			c, err := h.dial(context.Background(), "tcp", "")
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	}},
	{"tcp-tls-only", func(b *testing.B, h *benchPolicyHost) func() {
		ft := &FetchTransport{RootCAs: h.pool, DialContext: h.dial}
		ft.init()
		return func() {
			raw, err := h.dial(context.Background(), "tcp", "")
			if err != nil {
				b.Fatal(err)
			}
			tc, _, err := ft.handshake(raw, "mta-sts.bench.example")
			if err != nil {
				b.Fatal(err)
			}
			tc.Close()
		}
	}},
}

// fetchWith returns a policy fetch through the RoundTripper that
// newRT returns.
func fetchWith(newRT func(h *benchPolicyHost) http.RoundTripper) func(b *testing.B, h *benchPolicyHost) func() {
	return func(b *testing.B, h *benchPolicyHost) func() {
		c := &http.Client{Transport: newRT(h)}
		b.Cleanup(c.CloseIdleConnections)
		return func() {
			if _, _, err := fetch(context.Background(), c, "bench.example", fetchOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFetchCPU reports, per policy fetch from a policy host in
// another process: the client's CPU time (cpu-µs/op), the CPU time of
// the cryptography of one TLS 1.3 handshake with the same chain measured
// in the same run (floor-µs), and their ratio (x-floor). Each iteration
// is one operation and one floor; they run in alternating batches so
// that the machine's load weighs on both alike. ns/op is the wall time
// of both.
func BenchmarkFetchCPU(b *testing.B) {
	for _, alg := range []string{"p256", "rsa2048"} {
		b.Run(alg, func(b *testing.B) {
			h := startPolicyHost(b, alg)
			server, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			for _, v := range fetchVariants {
				b.Run(v.name, func(b *testing.B) {
					op := v.op(b, h)
					op() // warm: caches, the child's code paths
					const batch = 16
					var opCPU, floorCPU time.Duration
					b.ReportAllocs()
					b.ResetTimer()
					for done := 0; done < b.N; {
						n := min(batch, b.N-done)
						start := cpuTime()
						for range n {
							op()
						}
						mid := cpuTime()
						for range n {
							h.floor(b, server.PublicKey())
						}
						opCPU += mid - start
						floorCPU += cpuTime() - mid
						done += n
					}
					b.StopTimer()
					if opCPU == 0 || floorCPU == 0 {
						b.Skip("no process CPU time on this platform")
					}
					b.ReportMetric(float64(opCPU.Microseconds())/float64(b.N), "cpu-µs/op")
					b.ReportMetric(float64(floorCPU.Microseconds())/float64(b.N), "floor-µs")
					b.ReportMetric(float64(opCPU)/float64(floorCPU), "x-floor")
				})
			}
		})
	}
}
