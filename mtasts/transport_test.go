package mtasts

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/tlsrpt"
)

// chainServer is an httptest TLS server offering HTTP/2 and HTTP/1.1, as
// real policy hosts do, with a leaf of a chainPKI for names. It records
// what each ClientHello offered, each request, and its connections'
// states.
type chainServer struct {
	srv *httptest.Server
	pki *chainPKI

	mu       sync.Mutex // guards the fields below
	hellos   []*tls.ClientHelloInfo
	requests []*http.Request
	opened   int
	closed   int
}

func newChainServer(t *testing.T, names ...string) *chainServer {
	t.Helper()
	cs := &chainServer{pki: newChainPKI(t, "p256")}
	cert := cs.pki.issue(t, leafTemplate(names...))
	cs.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.mu.Lock()
		cs.requests = append(cs.requests, r)
		cs.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, goodPolicy)
	}))
	cs.srv.EnableHTTP2 = true
	cs.srv.TLS = &tls.Config{NextProtos: []string{"h2", "http/1.1"}, GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		cs.mu.Lock()
		cs.hellos = append(cs.hellos, h)
		cs.mu.Unlock()
		return &cert, nil
	}}
	cs.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		switch s {
		case http.StateNew:
			cs.opened++
		case http.StateClosed, http.StateHijacked:
			cs.closed++
		}
	}
	cs.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	cs.srv.StartTLS()
	t.Cleanup(cs.srv.Close)
	return cs
}

func (cs *chainServer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, cs.srv.Listener.Addr().String())
}

// waitClosed waits until the server has seen every connection it
// accepted close, and returns how many it accepted.
func (cs *chainServer) waitClosed(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs.mu.Lock()
		opened, closed := cs.opened, cs.closed
		cs.mu.Unlock()
		if opened == closed {
			return opened
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections still open", opened-closed, opened)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFetchTransport: a fetch through FetchTransport speaks HTTP/1.1
// even to a server that offers HTTP/2, offers X25519 and no hybrid
// post-quantum exchange, sends Connection: close, uses a new connection
// for every fetch and closes it, reports the verified chain, and reuses
// the verified intermediate for the next domain's certificate.
func TestFetchTransport(t *testing.T) {
	t.Parallel()
	cs := newChainServer(t, "mta-sts.a.example", "mta-sts.b.example")
	ft := &FetchTransport{RootCAs: cs.pki.pool, DialContext: cs.dial}
	c := &http.Client{Transport: ft}
	ctx := context.Background()

	for i, d := range []string{"a.example", "b.example", "a.example"} {
		p, err := Fetch(ctx, c, d)
		if err != nil || p.Mode != Enforce {
			t.Fatalf("Fetch(%s) = %+v, %v", d, p, err)
		}
		if n := cs.waitClosed(t); n != i+1 {
			t.Errorf("after %d fetches the server accepted %d connections", i+1, n)
		}
	}
	if ft.verified == nil {
		t.Log("crypto/tls verifies on this platform: no cache")
	} else if hits := ft.verified.hitCount(); hits != 2 {
		t.Errorf("%d fetches used the cached intermediate, want 2 (all but the first)", hits)
	}

	// The response carries the chain it verified (also when cached).
	resp, err := c.Get("https://mta-sts.b.example/.well-known/mta-sts.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.TLS.VerifiedChains; len(v) != 1 || len(v[0]) != 3 || !v[0][1].Equal(cs.pki.inter) || !v[0][2].Equal(cs.pki.root) {
		t.Errorf("VerifiedChains %v, want leaf, intermediate, root", v)
	}
	if resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN %q", resp.TLS.NegotiatedProtocol)
	}

	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, h := range cs.hellos {
		if !slices.Equal(h.SupportedProtos, []string{"http/1.1"}) {
			t.Errorf("ALPN offered %q, want http/1.1 alone", h.SupportedProtos)
		}
		if !slices.Equal(h.SupportedCurves, fetchCurves) || slices.Contains(h.SupportedCurves, tls.X25519MLKEM768) {
			t.Errorf("key exchanges offered %v, want %v", h.SupportedCurves, fetchCurves)
		}
		if h.ServerName != "mta-sts.a.example" && h.ServerName != "mta-sts.b.example" {
			t.Errorf("SNI %q", h.ServerName)
		}
	}
	for _, r := range cs.requests {
		if r.ProtoMajor != 1 || r.ProtoMinor != 1 || !r.Close {
			t.Errorf("request %s, Close %v: want HTTP/1.1 with Connection: close", r.Proto, r.Close)
		}
		if r.TLS == nil || r.TLS.CurveID != tls.X25519 || r.TLS.Version != tls.VersionTLS13 {
			t.Errorf("request over %+v, want TLS 1.3 with X25519", r.TLS)
		}
	}
}

// TestFetchTransportNeverHTTP2: against a host that offers HTTP/2 alone,
// FetchTransport still sends an HTTP/1.1 request (TLS lets such clients
// in without ALPN), never the HTTP/2 preface; the fetch fails when the
// host insists.
func TestFetchTransportNeverHTTP2(t *testing.T) {
	leakcheck.Check(t)
	pki := newTestPKI(t)
	var first atomic.Value
	s := newHostileServer(t, serverTLS(t, pki, "h2"), func(s *hostileServer, c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		first.Store(line)
	})
	fetchOutcome(t, s.client(pki), tlsrpt.STSPolicyFetchError, KindNetwork)
	if line, _ := first.Load().(string); line != "GET /.well-known/mta-sts.txt HTTP/1.1\r\n" {
		t.Errorf("the client's first line was %q", line)
	}
}

// TestFetchTransportRefuses: only https URLs, no request bodies, and a
// certificate failure is a certificate failure.
func TestFetchTransportRefuses(t *testing.T) {
	t.Parallel()
	cs := newChainServer(t, "mta-sts.a.example")
	ft := &FetchTransport{RootCAs: cs.pki.pool, DialContext: cs.dial}
	for _, u := range []string{"http://mta-sts.a.example/.well-known/mta-sts.txt", "ftp://mta-sts.a.example/x", "https:///x"} {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			continue
		}
		if resp, err := ft.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Errorf("%s fetched", u)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "https://mta-sts.a.example/", strings.NewReader("x"))
	if resp, err := ft.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Error("a request with a body was sent")
	}
	// Another name than the certificate's: the handshake fails with the
	// error crypto/tls would give, which Fetch classifies.
	_, err := Fetch(context.Background(), &http.Client{Transport: ft}, "b.example")
	wantFetchError(t, nil, err, KindCertificate, tlsrpt.STSWebPKIInvalid)
	var ve *tls.CertificateVerificationError
	if !errors.As(err, &ve) || tlsrpt.Classify(err) != tlsrpt.CertificateHostMismatch {
		t.Errorf("error %v (%q) is not a host mismatch in a *tls.CertificateVerificationError", err, tlsrpt.Classify(err))
	}
}

// TestFetchTransportProxy: through an HTTP CONNECT proxy, the fetch goes
// through the tunnel, TLS end to end, crypto/tls verifying the chain.
func TestFetchTransportProxy(t *testing.T) {
	t.Parallel()
	cs := newChainServer(t, "mta-sts.a.example")
	var tunnels atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		tunnels.Add(1)
		up, err := cs.dial(r.Context(), "tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		w.WriteHeader(http.StatusOK)
		down, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer down.Close()
		go func() {
			io.Copy(up, brw)
			up.Close()
		}()
		io.Copy(down, up)
	}))
	t.Cleanup(proxy.Close)
	pu, _ := url.Parse(proxy.URL)
	ft := &FetchTransport{RootCAs: cs.pki.pool, Proxy: http.ProxyURL(pu)}
	c := &http.Client{Transport: ft}
	if _, err := Fetch(context.Background(), c, "a.example"); err != nil {
		t.Fatal(err)
	}
	if tunnels.Load() != 1 {
		t.Errorf("%d tunnels, want 1", tunnels.Load())
	}
	_, err := Fetch(context.Background(), c, "b.example")
	wantFetchError(t, nil, err, KindCertificate, tlsrpt.STSWebPKIInvalid)
}
