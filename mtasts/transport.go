package mtasts

import (
	"context"
	"crypto/fips140"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"time"
)

// FetchTransport is an http.RoundTripper built for policy fetches, the
// transport of a Client whose HTTPClient is nil. Each request costs one
// TCP connection, one TLS handshake and one HTTP/1.1 exchange, close to
// what the cryptography of the handshake alone costs:
//
//   - HTTP/1.1 only: ALPN offers "http/1.1" alone. HTTP/2 would set up
//     streams, flow control and two goroutines for a single request.
//   - No idle connections: the connection is closed after the response,
//     so nothing is reused across fetches or domains, and every fetch
//     validates the certificate again (RFC 8461 3.3).
//   - Key exchange X25519 (see fetchCurves for why not the hybrid
//     post-quantum X25519MLKEM768).
//   - WebPKI validation for the policy host's name (RFC 8461 3.3) done by
//     the transport itself, which remembers intermediate certificates it
//     has already verified against its roots (see verifyServer). The leaf
//     is verified in full on every fetch: name, validity, serverAuth and
//     its issuer's signature.
//
// Fetch trusts the validation of a FetchTransport (crypto/tls records no
// VerifiedChains for it); wrapping a FetchTransport in another
// RoundTripper hides it from Fetch, which then refuses every response.
//
// Set the fields before the first request and do not change them
// afterwards. A FetchTransport is safe for concurrent use.
type FetchTransport struct {
	// RootCAs are the WebPKI roots. Nil means the system's roots.
	RootCAs *x509.CertPool

	// DialContext dials the TCP connection to the policy host (or to the
	// proxy), with the signature of net.Dialer.DialContext. Nil means a
	// net.Dialer with a 30 s timeout (and the system's resolver).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Proxy returns the proxy for a request, as http.Transport.Proxy
	// (for example http.ProxyFromEnvironment). Nil means no proxy. TLS
	// is end to end through an HTTPS CONNECT proxy: it never sees the
	// policy.
	Proxy func(*http.Request) (*url.URL, error)

	// Now returns the time at which certificates must be valid. Nil means
	// time.Now.
	Now func() time.Time

	once     sync.Once
	tr       *http.Transport
	verified *issuerCache
}

// fetchCurves are the key exchanges a FetchTransport offers, the first
// with a key share in the ClientHello (the others only after a
// HelloRetryRequest from a server that lacks X25519).
//
// Not X25519MLKEM768, Go's default, on purpose. The hybrid post-quantum
// exchange protects the confidentiality of the session against an
// attacker who records it now and breaks X25519 later ("harvest now,
// decrypt later"). A policy is a public document: anyone may fetch it,
// and the request reveals nothing the SNI does not already send in the
// clear. What a sender needs is the policy's integrity and origin, and
// those come from the certificate chain and the handshake signature,
// which are the same whichever key exchange runs (and a recording gives
// a future attacker nothing to forge today's session with). ML-KEM-768
// would add about 150 µs of CPU and 1.1 KB to the ClientHello of every
// fetch for a secrecy the document does not have.
var fetchCurves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}

// Timeouts of a FetchTransport's phases; Fetch's own budget
// (DefaultFetchTimeout or Client.FetchTimeout) bounds the whole fetch.
const (
	fetchDialTimeout      = 30 * time.Second
	fetchHandshakeTimeout = 30 * time.Second
	fetchHeaderTimeout    = 60 * time.Second
	// maxResponseHeaderBytes bounds the response headers: a policy host
	// has no reason to send large ones (the zero value of
	// http.Transport would allow 10 MB).
	maxResponseHeaderBytes = 64 << 10
)

// ownVerification reports whether a FetchTransport with roots verifies
// chains itself (with the cache of verified intermediates) rather than
// leaving it to crypto/tls. It does not where crypto/tls would verify
// differently from the Go verifier it reimplements: in FIPS 140 mode
// (which also restricts the chain's algorithms) and where crypto/x509
// hands validation with the system roots to the operating system
// (Windows and Apple platforms).
func ownVerification(roots *x509.CertPool) bool {
	if fips140.Enabled() {
		return false
	}
	switch runtime.GOOS {
	case "windows", "darwin", "ios":
		return roots != nil
	}
	return true
}

func (t *FetchTransport) init() {
	t.once.Do(func() {
		dial := t.DialContext
		if dial == nil {
			dial = (&net.Dialer{Timeout: fetchDialTimeout}).DialContext
		}
		var protos http.Protocols
		protos.SetHTTP1(true)
		t.tr = &http.Transport{
			Proxy:       t.Proxy,
			DialContext: dial,
			TLSClientConfig: &tls.Config{
				RootCAs:          t.RootCAs,
				Time:             t.Now,
				MinVersion:       tls.VersionTLS12, // RFC 8461 3.3 (via RFC 7525)
				NextProtos:       []string{"http/1.1"},
				CurvePreferences: fetchCurves,
			},
			Protocols:              &protos,
			DisableKeepAlives:      true,
			DisableCompression:     true,
			TLSHandshakeTimeout:    fetchHandshakeTimeout,
			ResponseHeaderTimeout:  fetchHeaderTimeout,
			MaxResponseHeaderBytes: maxResponseHeaderBytes,
		}
		if ownVerification(t.RootCAs) {
			// verifyConnection validates the chain on every handshake
			// (resumption included, although there is no session
			// cache), as crypto/tls would; only the signatures above an
			// intermediate already verified may come from the cache.
			t.verified = newIssuerCache(maxVerifiedIssuers)
			t.tr.TLSClientConfig.InsecureSkipVerify = true
			t.tr.TLSClientConfig.VerifyConnection = t.verifyConnection
		}
	})
}

// RoundTrip implements http.RoundTripper. Only https URLs are fetched.
func (t *FetchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("mtasts: FetchTransport fetches https URLs only")
	}
	t.init()
	return t.tr.RoundTrip(req)
}

// CloseIdleConnections is there for http.Client.CloseIdleConnections: a
// FetchTransport keeps no idle connections.
func (t *FetchTransport) CloseIdleConnections() {
	t.init()
	t.tr.CloseIdleConnections()
}

func (t *FetchTransport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// verifyConnection validates the server's chain for the name the
// handshake was for (http.Transport sets ServerName to the URL's host),
// as crypto/tls does without InsecureSkipVerify, and fails the handshake
// with a *tls.CertificateVerificationError otherwise.
func (t *FetchTransport) verifyConnection(cs tls.ConnectionState) error {
	if err := verifyServer(t.verified, t.RootCAs, cs.PeerCertificates, cs.ServerName, t.now()); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}
