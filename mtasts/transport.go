package mtasts

import (
	"bufio"
	"context"
	"crypto/fips140"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// FetchTransport is an http.RoundTripper built for policy fetches, the
// transport of a Client whose HTTPClient is nil. Each request costs one
// TCP connection, one TLS handshake and one HTTP/1.1 exchange, and as
// little else as it can:
//
//   - HTTP/1.1 only: ALPN offers "http/1.1" alone. HTTP/2 would set up
//     streams, flow control and two goroutines for a single request.
//   - One connection per request, closed with the response body: nothing
//     is reused across fetches or domains, and every fetch validates the
//     certificate again (RFC 8461 3.3). Without a proxy the exchange runs
//     on the caller's goroutine (net/http's own request writer and
//     response parser, no connection pool).
//   - Key exchange X25519 (see fetchCurves for why not the hybrid
//     post-quantum X25519MLKEM768).
//   - WebPKI validation for the URL's host (RFC 8461 3.3), as crypto/tls
//     does it, by the transport itself, which remembers intermediate
//     certificates it has already verified against its roots (see
//     verifyServer). The leaf is verified in full on every fetch: name,
//     validity, serverAuth usage and its issuer's signature. The
//     response's TLS.VerifiedChains holds the chain.
//
// Response headers are bounded to 64 KiB, the TLS handshake to 30 s and
// the wait for the response headers to 60 s; the request's context
// bounds everything, the body included. Only https URLs are fetched.
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
	// (for example http.ProxyFromEnvironment). Nil means no proxy.
	// Requests through a proxy go through an http.Transport (HTTP/1.1,
	// X25519, no idle connections, crypto/tls's own verification without
	// the cache); TLS is end to end through the CONNECT tunnel.
	Proxy func(*http.Request) (*url.URL, error)

	// Now returns the time at which certificates must be valid. Nil means
	// time.Now.
	Now func() time.Time

	once     sync.Once
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	proxied  *http.Transport
	verified *issuerCache // nil: crypto/tls verifies (see ownVerification)
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
// would add a tenth of a millisecond of CPU or more (BENCHMARKS.md) and
// 1.1 KB to the ClientHello of every fetch, for a secrecy the document
// does not have.
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

// ownVerification reports whether a FetchTransport verifies chains
// itself (with the cache of verified intermediates) rather than leaving
// it to crypto/tls. It does not where crypto/tls would verify
// differently from the Go verifier it reimplements: in FIPS 140 mode
// (which also restricts the chain's algorithms) and where crypto/x509
// may hand validation to the operating system (Windows and Apple
// platforms, with the system roots or a pool derived from them).
func ownVerification() bool {
	if fips140.Enabled() {
		return false
	}
	switch runtime.GOOS {
	case "windows", "darwin", "ios":
		return false
	}
	return true
}

func (t *FetchTransport) init() {
	t.once.Do(func() {
		t.dial = t.DialContext
		if t.dial == nil {
			t.dial = (&net.Dialer{Timeout: fetchDialTimeout}).DialContext
		}
		if ownVerification() {
			t.verified = newIssuerCache(maxVerifiedIssuers)
		}
		var protos http.Protocols
		protos.SetHTTP1(true)
		t.proxied = &http.Transport{
			Proxy:                  t.Proxy,
			DialContext:            t.dial,
			TLSClientConfig:        t.tlsConfig(""),
			Protocols:              &protos,
			DisableKeepAlives:      true,
			DisableCompression:     true,
			TLSHandshakeTimeout:    fetchHandshakeTimeout,
			ResponseHeaderTimeout:  fetchHeaderTimeout,
			MaxResponseHeaderBytes: maxResponseHeaderBytes,
		}
	})
}

// tlsConfig returns the client configuration for host ("" leaves it to
// http.Transport), with crypto/tls's own verification.
func (t *FetchTransport) tlsConfig(host string) *tls.Config {
	return &tls.Config{
		ServerName:       host,
		RootCAs:          t.RootCAs,
		Time:             t.Now,
		MinVersion:       tls.VersionTLS12, // RFC 8461 3.3 (RFC 7525)
		NextProtos:       []string{"http/1.1"},
		CurvePreferences: fetchCurves,
	}
}

// RoundTrip implements http.RoundTripper.
func (t *FetchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "https" || req.URL.Host == "" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("mtasts: FetchTransport fetches https URLs only")
	}
	t.init()
	if t.Proxy != nil {
		u, err := t.Proxy(req)
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		if u != nil {
			return t.proxied.RoundTrip(req)
		}
	}
	return t.direct(req)
}

// max1xx bounds the informational responses skipped before the final
// one (all of their headers count against maxResponseHeaderBytes too).
const max1xx = 8

// errHeadersTooLarge ends a response whose headers exceed
// maxResponseHeaderBytes.
var errHeadersTooLarge = errors.New("mtasts: response headers exceed " + strconv.Itoa(maxResponseHeaderBytes) + " bytes")

// direct makes the request over a new connection to the URL's host, on
// the caller's goroutine.
func (t *FetchTransport) direct(req *http.Request) (resp *http.Response, err error) {
	if req.Body != nil {
		// Policy fetches are GETs; a body would need the transport's
		// whole writer machinery.
		req.Body.Close()
		if req.ContentLength != 0 || req.Body != http.NoBody {
			return nil, errors.New("mtasts: FetchTransport sends no request body")
		}
	}
	ctx := req.Context()
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = "443"
	}
	raw, err := t.dial(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	// The context ends the exchange at any stage, the body's reading
	// included: closing the connection unblocks every read and write.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer func() {
		if err != nil {
			stop()
			raw.Close()
			if cerr := ctx.Err(); cerr != nil {
				err = cerr
			}
		}
	}()

	tc, cs, err := t.handshake(raw, host)
	if err != nil {
		return nil, err
	}

	raw.SetDeadline(time.Now().Add(fetchHeaderTimeout))
	r := *req
	r.Close = true // Connection: close
	if err := r.Write(tc); err != nil {
		return nil, err
	}
	lr := &io.LimitedReader{R: tc, N: maxResponseHeaderBytes}
	br := bufio.NewReader(lr)
	for n := 0; ; n++ {
		resp, err = http.ReadResponse(br, req)
		if err != nil {
			if lr.N <= 0 {
				err = errHeadersTooLarge
			}
			return nil, err
		}
		// RFC 9110 15.2: informational responses precede the final one
		// (101 would switch protocols: final, and not a policy).
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if n == max1xx {
			return nil, errors.New("mtasts: too many informational (1xx) responses")
		}
	}
	raw.SetDeadline(time.Time{})
	lr.N = math.MaxInt64
	resp.TLS = cs
	resp.Body = &connBody{ReadCloser: resp.Body, conn: tc, stop: stop}
	return resp, nil
}

// handshake runs the TLS handshake for host over raw, within
// fetchHandshakeTimeout, and returns the connection and its state with
// the verified chains.
func (t *FetchTransport) handshake(raw net.Conn, host string) (*tls.Conn, *tls.ConnectionState, error) {
	cfg := t.tlsConfig(host)
	var chains [][]*x509.Certificate
	if t.verified != nil {
		// crypto/tls calls VerifyConnection on every handshake, after
		// checking the server's signature, and aborts the handshake when
		// it fails.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			var err error
			chains, err = verifyServer(t.verified, t.RootCAs, cs.PeerCertificates, host, t.now())
			if err != nil {
				return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
			}
			return nil
		}
	}
	tc := tls.Client(raw, cfg)
	raw.SetDeadline(time.Now().Add(fetchHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return nil, nil, err
	}
	cs := tc.ConnectionState()
	if t.verified != nil {
		cs.VerifiedChains = chains
	}
	return tc, &cs, nil
}

// connBody is a response body that closes its connection.
type connBody struct {
	io.ReadCloser
	conn      net.Conn
	stop      func() bool
	closeOnce sync.Once
}

func (b *connBody) Close() error {
	b.closeOnce.Do(func() {
		b.stop()
		b.conn.Close()
	})
	return nil
}

// CloseIdleConnections is there for http.Client.CloseIdleConnections: a
// FetchTransport keeps no idle connections.
func (t *FetchTransport) CloseIdleConnections() {
	t.init()
	t.proxied.CloseIdleConnections()
}

func (t *FetchTransport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}
