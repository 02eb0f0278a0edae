package mtasts

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/internal/rawserver"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/tlsrpt"
)

// Hostile policy hosts: raw servers on loopback that speak just enough
// TLS, HTTP/1.1 or HTTP/2 to misbehave. Every fetch must end within its
// time budget with a *Error of the expected Kind and TLS-RPT result type,
// read at most MaxPolicySize+1 bytes of body, follow nothing, and leave no
// goroutine behind (leakcheck; these tests are therefore not parallel at
// the top level).

const hostileDomain = "hostile.example"

// hostileBudget is the fetch budget of these tests, and hostileBound the
// time a fetch may take in all (the budget plus slack for a loaded machine
// under the race detector).
const (
	hostileBudget = 500 * time.Millisecond
	hostileBound  = 5 * time.Second
)

// hostileServer accepts TCP connections on loopback and hands each to a
// handler, after a TLS handshake when tlsConfig is set. It counts
// connections and closes everything when the test ends.
type hostileServer struct {
	ln        net.Listener
	tlsConfig *tls.Config
	handle    func(s *hostileServer, c net.Conn)
	written   atomic.Int64 // body bytes written by endless handlers

	srv *rawserver.Server
}

func newHostileServer(t testing.TB, tlsConfig *tls.Config, handle func(s *hostileServer, c net.Conn)) *hostileServer {
	t.Helper()
	s := &hostileServer{tlsConfig: tlsConfig, handle: handle}
	s.srv = rawserver.New(t)
	s.ln = s.srv.Listener()
	s.srv.Serve(s.serve)
	return s
}

func (s *hostileServer) serve(c net.Conn) {
	if s.tlsConfig != nil {
		tc := tls.Server(c, s.tlsConfig)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	s.handle(s, c)
}

// sleep waits d, or less when the server stops; it reports whether the
// server is still running.
func (s *hostileServer) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-s.srv.Done():
		return false
	}
}

func (s *hostileServer) stopped() bool {
	select {
	case <-s.srv.Done():
		return true
	default:
		return false
	}
}

// client returns the fetch client of a Client with a nil HTTPClient (a
// FetchTransport: its header limit, HTTP/1.1 only, TLS 1.2 minimum, its
// own chain validation), trusting pki and dialling the server for every
// host.
func (s *hostileServer) client(pki *testPKI) *http.Client {
	return &http.Client{Transport: &FetchTransport{RootCAs: pki.pool, DialContext: s.dial}}
}

// h2client returns a client such as a caller may set as
// Client.HTTPClient: an http.Transport that negotiates HTTP/2 by ALPN,
// with the same header limit, trusting pki and dialling the server for
// every host.
func (s *hostileServer) h2client(pki *testPKI) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:            s.dial,
		TLSClientConfig:        &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}}
}

// dial connects to the server whatever the address.
func (s *hostileServer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, s.ln.Addr().String())
}

// serverTLS is a TLS configuration for the policy host, offering protos
// by ALPN.
func serverTLS(t testing.TB, pki *testPKI, protos ...string) *tls.Config {
	cert := pki.leaf(t, time.Time{}, time.Time{}, "mta-sts."+hostileDomain)
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos}
}

// readRequest reads one HTTP/1.1 request from c.
func readRequest(c net.Conn) (*http.Request, *bufio.Reader, error) {
	br := bufio.NewReader(c)
	r, err := http.ReadRequest(br)
	return r, br, err
}

// h1 is a handler for an HTTP/1.1 server that reads the request and then
// calls respond.
func h1(respond func(s *hostileServer, c net.Conn, r *http.Request)) func(s *hostileServer, c net.Conn) {
	return func(s *hostileServer, c net.Conn) {
		r, _, err := readRequest(c)
		if err != nil {
			return
		}
		respond(s, c, r)
		// Wait for the client to hang up, as a server holding on would.
		io.Copy(io.Discard, c)
	}
}

// raw writes a fixed response.
func raw(resp string) func(s *hostileServer, c net.Conn, r *http.Request) {
	return func(s *hostileServer, c net.Conn, r *http.Request) { io.WriteString(c, resp) }
}

// rawClose writes a fixed response and closes the connection.
func rawClose(resp string) func(s *hostileServer, c net.Conn, r *http.Request) {
	return func(s *hostileServer, c net.Conn, r *http.Request) {
		io.WriteString(c, resp)
		c.Close()
	}
}

// fetchOutcome runs a fetch against s and checks the error's kind (one
// of kinds), its TLS-RPT result type and the time it took.
func fetchOutcome(t *testing.T, c *http.Client, rt tlsrpt.ResultType, kinds ...Kind) *Error {
	t.Helper()
	start := time.Now()
	p, _, err := fetch(context.Background(), c, hostileDomain, fetchOptions{timeout: hostileBudget})
	if d := time.Since(start); d > hostileBound {
		t.Errorf("fetch took %v", d)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("fetch = %+v, %v (%T); want a *mtasts.Error of kind %v", p, err, err, kinds)
	}
	if p != nil {
		t.Errorf("a policy came with the error")
	}
	ok := false
	for _, k := range kinds {
		ok = ok || e.Kind == k
	}
	if !ok {
		t.Fatalf("kind %v (%v), want one of %v", e.Kind, err, kinds)
	}
	if e.Result != rt {
		t.Errorf("result type %q, want %q (%v)", e.Result, rt, err)
	}
	return e
}

// TestHostileHTTP1 covers HTTP/1.1 policy hosts that stall, flood, lie
// about lengths, redirect or send the wrong media type.
func TestHostileHTTP1(t *testing.T) {
	leakcheck.Check(t)
	pki := newTestPKI(t)
	fetchErr := tlsrpt.STSPolicyFetchError
	header := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	cases := []struct {
		name    string
		respond func(s *hostileServer, c net.Conn, r *http.Request)
		rt      tlsrpt.ResultType
		kinds   []Kind
	}{
		{"slowloris body", func(s *hostileServer, c net.Conn, r *http.Request) {
			io.WriteString(c, header+"Content-Length: 1000\r\n\r\n")
			for s.sleep(50 * time.Millisecond) {
				if _, err := c.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}, fetchErr, []Kind{KindTimeout}},
		{"slowloris headers", func(s *hostileServer, c net.Conn, r *http.Request) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\n")
			for s.sleep(50 * time.Millisecond) {
				if _, err := io.WriteString(c, "X: y\r\n"); err != nil {
					return
				}
			}
		}, fetchErr, []Kind{KindTimeout}},
		{"no response at all", func(s *hostileServer, c net.Conn, r *http.Request) { s.sleep(time.Minute) }, fetchErr, []Kind{KindTimeout}},
		{"endless chunked body", func(s *hostileServer, c net.Conn, r *http.Request) {
			io.WriteString(c, header+"Transfer-Encoding: chunked\r\n\r\n")
			chunk := "1000\r\n" + strings.Repeat("x", 0x1000) + "\r\n"
			for !s.stopped() {
				n, err := io.WriteString(c, chunk)
				s.written.Add(int64(n))
				if err != nil {
					return
				}
			}
		}, tlsrpt.STSPolicyInvalid, []Kind{KindBodyTooLarge}},
		{"endless body until close", func(s *hostileServer, c net.Conn, r *http.Request) {
			io.WriteString(c, header+"Connection: close\r\n\r\n")
			buf := bytes.Repeat([]byte("x"), 16<<10)
			for !s.stopped() {
				n, err := c.Write(buf)
				s.written.Add(int64(n))
				if err != nil {
					return
				}
			}
		}, tlsrpt.STSPolicyInvalid, []Kind{KindBodyTooLarge}},
		{"64 KiB + 1 announced", raw(header + "Content-Length: 65537\r\n\r\n" + strings.Repeat("x", 65537)), tlsrpt.STSPolicyInvalid, []Kind{KindBodyTooLarge}},
		{"64 KiB + 1 unannounced", rawClose(header + "Connection: close\r\n\r\n" + strings.Repeat("x", 65537)), tlsrpt.STSPolicyInvalid, []Kind{KindBodyTooLarge}},
		{"10 GB announced", raw(header + "Content-Length: 10000000000\r\n\r\nversion: STSv1\n"), tlsrpt.STSPolicyInvalid, []Kind{KindBodyTooLarge}},
		{"Content-Length shorter than the body", raw(header + "Content-Length: 20\r\n\r\n" + goodPolicy), tlsrpt.STSPolicyInvalid, []Kind{KindPolicySyntax}},
		{"Content-Length longer than the body", rawClose(header + "Content-Length: 500\r\nConnection: close\r\n\r\n" + goodPolicy), fetchErr, []Kind{KindNetwork}},
		{"two different Content-Lengths", raw(header + "Content-Length: 10\r\nContent-Length: 20\r\n\r\n" + goodPolicy), fetchErr, []Kind{KindNetwork}},
		{"negative Content-Length", raw(header + "Content-Length: -1\r\n\r\n" + goodPolicy), fetchErr, []Kind{KindNetwork}},
		{"1 MiB header", raw("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"), fetchErr, []Kind{KindNetwork}},
		{"endless headers", func(s *hostileServer, c net.Conn, r *http.Request) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\n")
			line := "X-Flood: " + strings.Repeat("a", 1000) + "\r\n"
			for !s.stopped() {
				if _, err := io.WriteString(c, line); err != nil {
					return
				}
			}
		}, fetchErr, []Kind{KindNetwork}},
		{"not HTTP", rawClose("SSH-2.0-OpenSSH_9.6\r\n"), fetchErr, []Kind{KindNetwork}},
		{"HTTP/0.9 style body only", rawClose(goodPolicy), fetchErr, []Kind{KindNetwork}},
		{"status line only then close", rawClose("HTTP/1.1 200 OK\r\n"), fetchErr, []Kind{KindNetwork}},
		{"1xx forever", func(s *hostileServer, c net.Conn, r *http.Request) {
			for i := 0; i < 1000 && !s.stopped(); i++ {
				if _, err := io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\n"); err != nil {
					return
				}
			}
			s.sleep(time.Minute)
		}, fetchErr, []Kind{KindNetwork, KindTimeout}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newHostileServer(t, serverTLS(t, pki, "http/1.1"), h1(tc.respond))
			fetchOutcome(t, s.client(pki), tc.rt, tc.kinds...)
		})
	}
}

// TestHostileRedirects: every 3xx, with every kind of Location, is a
// failure (RFC 8461 3.3), and the Location is never contacted.
func TestHostileRedirects(t *testing.T) {
	leakcheck.Check(t)
	pki := newTestPKI(t)
	locations := map[string]string{
		"other host":        "https://mta-sts.elsewhere.example/.well-known/mta-sts.txt",
		"cleartext":         "http://mta-sts." + hostileDomain + "/.well-known/mta-sts.txt",
		"same URL":          "https://mta-sts." + hostileDomain + "/.well-known/mta-sts.txt",
		"relative":          "/policy.txt",
		"scheme-relative":   "//mta-sts.elsewhere.example/x",
		"address literal":   "https://127.0.0.1/.well-known/mta-sts.txt",
		"none":              "",
		"garbage":           "\x7f::",
		"data URL":          "data:text/plain,version: STSv1",
		"file URL":          "file:///etc/passwd",
		"javascript":        "javascript:alert(1)",
		"very long":         "https://mta-sts." + hostileDomain + "/" + strings.Repeat("a", 8000),
		"CRLF injection":    "/x\r\nSet-Cookie: a=b",
		"to a 200 response": "https://mta-sts." + hostileDomain + "/ok",
	}
	for _, status := range []int{300, 301, 302, 303, 304, 305, 306, 307, 308, 399} {
		for name, loc := range locations {
			t.Run(strconv.Itoa(status)+"/"+name, func(t *testing.T) {
				t.Parallel()
				var requests atomic.Int64
				s := newHostileServer(t, serverTLS(t, pki, "http/1.1"), func(s *hostileServer, c net.Conn) {
					br := bufio.NewReader(c)
					for {
						r, err := http.ReadRequest(br)
						if err != nil {
							return
						}
						requests.Add(1)
						if r.URL.Path != "/.well-known/mta-sts.txt" {
							// Somebody followed the redirect.
							io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "+strconv.Itoa(len(goodPolicy))+"\r\n\r\n"+goodPolicy)
							continue
						}
						resp := "HTTP/1.1 " + strconv.Itoa(status) + " Moved\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(goodPolicy)) + "\r\n"
						if loc != "" {
							resp += "Location: " + loc + "\r\n"
						}
						io.WriteString(c, resp+"\r\n"+goodPolicy)
					}
				})
				c := s.client(pki)
				// Even a client that allows every redirect.
				c.CheckRedirect = func(*http.Request, []*http.Request) error { return nil }
				e := fetchOutcome(t, c, tlsrpt.STSPolicyFetchError, KindRedirect, KindNetwork)
				if e.Kind == KindRedirect && e.StatusCode != status {
					t.Errorf("StatusCode %d", e.StatusCode)
				}
				if n := requests.Load(); n != 1 || s.srv.Accepted() != 1 {
					t.Errorf("%d requests on %d connections: the redirect was followed", n, s.srv.Accepted())
				}
			})
		}
	}
}

// TestHostileMediaType: only text/plain (in any case, with any
// parameters) is a policy; no sniffing.
func TestHostileMediaType(t *testing.T) {
	leakcheck.Check(t)
	pki := newTestPKI(t)
	cases := []struct {
		name    string
		headers []string // Content-Type header values, in order
		ok      bool
	}{
		{"none, sniffable as text", nil, false},
		{"empty", []string{""}, false},
		{"html", []string{"text/html"}, false},
		{"html then plain", []string{"text/html", "text/plain"}, false},
		{"list in one header", []string{"text/plain, text/html"}, false},
		{"text/plain suffix", []string{"text/plainx"}, false},
		{"text/*", []string{"text/*"}, false},
		{"json", []string{"application/json"}, false},
		{"message/http", []string{"message/http"}, false},
		{"nul inside", []string{"text/pl\x00ain"}, false},
		{"plain", []string{"text/plain"}, true},
		{"mixed case and charset", []string{"Text/PLAIN; charset=UTF-8"}, true},
		{"trailing semicolon", []string{"text/plain;"}, true},
		{"broken parameter", []string{`text/plain; charset="unterminated`}, true},
		{"tab around", []string{"\ttext/plain\t"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newHostileServer(t, serverTLS(t, pki, "http/1.1"), h1(func(s *hostileServer, c net.Conn, r *http.Request) {
				resp := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(goodPolicy)) + "\r\n"
				for _, h := range tc.headers {
					resp += "Content-Type: " + h + "\r\n"
				}
				io.WriteString(c, resp+"\r\n"+goodPolicy)
			}))
			if tc.ok {
				if _, _, err := fetch(context.Background(), s.client(pki), hostileDomain, fetchOptions{timeout: hostileBound}); err != nil {
					t.Fatal(err)
				}
				return
			}
			fetchOutcome(t, s.client(pki), tlsrpt.STSPolicyFetchError, KindContentType, KindNetwork)
		})
	}
}

// h2conn is the server side of a raw HTTP/2 connection.
type h2conn struct {
	fr     *http2.Framer
	stream uint32 // the client's request stream
	wmu    sync.Mutex
}

// headers encodes header fields given as name, value pairs.
func headers(kv ...string) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for i := 0; i+1 < len(kv); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return b.Bytes()
}

// h2 is a handler for an HTTP/2 server: it reads the preface, exchanges
// SETTINGS, waits for the request's HEADERS and calls respond. Frames the
// client sends afterwards are read and dropped (SETTINGS are
// acknowledged) until the connection ends.
func h2(respond func(s *hostileServer, h *h2conn)) func(s *hostileServer, c net.Conn) {
	return func(s *hostileServer, c net.Conn) {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
			return
		}
		h := &h2conn{fr: http2.NewFramer(c, c)}
		h.fr.WriteSettings()
		for h.stream == 0 {
			f, err := h.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					h.write(func() { h.fr.WriteSettingsAck() })
				}
			case *http2.HeadersFrame:
				h.stream = f.StreamID
			}
		}
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for {
				f, err := h.fr.ReadFrame()
				if err != nil {
					return
				}
				if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
					h.write(func() { h.fr.WriteSettingsAck() })
				}
			}
		}()
		respond(s, h)
		<-drained
	}
}

func (h *h2conn) write(f func()) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	f()
}

func (h *h2conn) headers(end bool, kv ...string) error {
	var err error
	h.write(func() {
		err = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: h.stream, BlockFragment: headers(kv...), EndHeaders: true, EndStream: end})
	})
	return err
}

func (h *h2conn) data(end bool, b []byte) error {
	var err error
	h.write(func() { err = h.fr.WriteData(h.stream, end, b) })
	return err
}

var okHeaders = []string{":status", "200", "content-type", "text/plain"}

// TestHostileHTTP2 covers HTTP/2 policy hosts: GOAWAY, RST_STREAM, header
// floods (CONTINUATION), endless and trickled DATA, protocol violations.
// Our own FetchTransport never speaks HTTP/2 (TestFetchTransportHTTP1),
// but a caller's Client.HTTPClient may.
func TestHostileHTTP2(t *testing.T) {
	leakcheck.Check(t)
	pki := newTestPKI(t)
	fetchErr := tlsrpt.STSPolicyFetchError
	cases := []struct {
		name    string
		respond func(s *hostileServer, h *h2conn)
		rt      tlsrpt.ResultType
		kinds   []Kind
	}{
		{"valid response", func(s *hostileServer, h *h2conn) {
			h.headers(false, okHeaders...)
			h.data(true, []byte(goodPolicy))
		}, "", nil},
		{"GOAWAY before the response", func(s *hostileServer, h *h2conn) {
			h.write(func() { h.fr.WriteGoAway(0, http2.ErrCodeNo, nil) })
		}, fetchErr, []Kind{KindNetwork, KindTimeout}},
		{"GOAWAY with an error after the headers", func(s *hostileServer, h *h2conn) {
			h.headers(false, okHeaders...)
			h.data(false, []byte("version: STSv1\n"))
			h.write(func() { h.fr.WriteGoAway(h.stream-1, http2.ErrCodeEnhanceYourCalm, []byte("bye")) })
		}, fetchErr, []Kind{KindNetwork, KindTimeout}},
		{"RST_STREAM refused", func(s *hostileServer, h *h2conn) {
			h.write(func() { h.fr.WriteRSTStream(h.stream, http2.ErrCodeRefusedStream) })
		}, fetchErr, []Kind{KindNetwork, KindTimeout}},
		{"RST_STREAM in the body", func(s *hostileServer, h *h2conn) {
			h.headers(false, okHeaders...)
			h.data(false, []byte("version: STSv1\nmode: enforce\n"))
			h.write(func() { h.fr.WriteRSTStream(h.stream, http2.ErrCodeInternal) })
		}, fetchErr, []Kind{KindNetwork}},
		{"CONTINUATION flood", func(s *hostileServer, h *h2conn) {
			block := headers(":status", "200", "x-a", strings.Repeat("a", 8000))
			h.write(func() {
				if h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: h.stream, BlockFragment: block}) != nil {
					return
				}
				frag := headers("x-b", strings.Repeat("b", 8000))
				for !s.stopped() {
					if h.fr.WriteContinuation(h.stream, false, frag) != nil {
						return
					}
				}
			})
		}, fetchErr, []Kind{KindNetwork}},
		{"1 MiB header value", func(s *hostileServer, h *h2conn) {
			block := headers(":status", "200", "x-big", strings.Repeat("a", 1<<20))
			h.write(func() {
				first := true
				for len(block) > 0 && !s.stopped() {
					n := min(len(block), 16384)
					var err error
					if first {
						err = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: h.stream, BlockFragment: block[:n], EndHeaders: n == len(block)})
					} else {
						err = h.fr.WriteContinuation(h.stream, n == len(block), block[:n])
					}
					if err != nil {
						return
					}
					first = false
					block = block[n:]
				}
			})
			// The client refuses the oversized header block (a network
			// error); on a loaded machine under the race detector the
			// 500 ms budget may end first. Either way the fetch is bounded.
		}, fetchErr, []Kind{KindNetwork, KindTimeout}},
		{"endless DATA", func(s *hostileServer, h *h2conn) {
			h.headers(false, okHeaders...)
			buf := bytes.Repeat([]byte("x"), 16384)
			for !s.stopped() {
				if h.data(false, buf) != nil {
					return
				}
				s.written.Add(int64(len(buf)))
			}
		}, tlsrpt.STSPolicyInvalid, []Kind{KindBodyTooLarge, KindNetwork}},
		{"trickled DATA", func(s *hostileServer, h *h2conn) {
			h.headers(false, okHeaders...)
			for s.sleep(50 * time.Millisecond) {
				if h.data(false, []byte("x")) != nil {
					return
				}
			}
		}, fetchErr, []Kind{KindTimeout}},
		{"headers never sent", func(s *hostileServer, h *h2conn) { s.sleep(time.Minute) }, fetchErr, []Kind{KindTimeout}},
		{"content-length smaller than DATA", func(s *hostileServer, h *h2conn) {
			h.headers(false, ":status", "200", "content-type", "text/plain", "content-length", "10")
			h.data(true, []byte(goodPolicy))
		}, fetchErr, []Kind{KindNetwork}},
		{"DATA before HEADERS", func(s *hostileServer, h *h2conn) {
			h.data(true, []byte(goodPolicy))
		}, fetchErr, []Kind{KindNetwork}},
		{"no :status", func(s *hostileServer, h *h2conn) {
			h.headers(false, "content-type", "text/plain")
			h.data(true, []byte(goodPolicy))
		}, fetchErr, []Kind{KindNetwork}},
		{"uppercase header name", func(s *hostileServer, h *h2conn) {
			h.headers(false, ":status", "200", "Content-Type", "text/plain")
			h.data(true, []byte(goodPolicy))
		}, fetchErr, []Kind{KindNetwork}},
		{"HEADERS on a stream the client never opened", func(s *hostileServer, h *h2conn) {
			h.write(func() {
				h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: h.stream + 2, BlockFragment: headers(okHeaders...), EndHeaders: true})
			})
			s.sleep(time.Minute)
		}, fetchErr, []Kind{KindNetwork, KindTimeout}},
		{"PING flood", func(s *hostileServer, h *h2conn) {
			for i := 0; i < 10000 && !s.stopped(); i++ {
				var err error
				h.write(func() { err = h.fr.WritePing(false, [8]byte{byte(i)}) })
				if err != nil {
					return
				}
			}
			s.sleep(time.Minute)
		}, fetchErr, []Kind{KindTimeout, KindNetwork}},
		{"WINDOW_UPDATE overflow", func(s *hostileServer, h *h2conn) {
			h.write(func() {
				h.fr.WriteWindowUpdate(0, 1<<31-1)
				h.fr.WriteWindowUpdate(0, 1<<31-1)
			})
			s.sleep(time.Minute)
		}, fetchErr, []Kind{KindNetwork, KindTimeout}},
		{"redirect", func(s *hostileServer, h *h2conn) {
			h.headers(true, ":status", "308", "location", "https://mta-sts.elsewhere.example/")
		}, fetchErr, []Kind{KindRedirect}},
		{"html", func(s *hostileServer, h *h2conn) {
			h.headers(false, ":status", "200", "content-type", "text/html")
			h.data(true, []byte(goodPolicy))
		}, fetchErr, []Kind{KindContentType}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newHostileServer(t, serverTLS(t, pki, "h2"), h2(tc.respond))
			c := s.h2client(pki)
			if tc.kinds == nil {
				// The control case: the client speaks HTTP/2 and the raw
				// server is good enough for a real fetch.
				p, _, err := fetch(context.Background(), c, hostileDomain, fetchOptions{timeout: hostileBound})
				if err != nil || p.Mode != Enforce {
					t.Fatalf("fetch over HTTP/2: %+v, %v", p, err)
				}
				return
			}
			fetchOutcome(t, c, tc.rt, tc.kinds...)
		})
	}
}

// TestHostileTLS: failures of the TLS layer are network failures
// (sts-policy-fetch-error), certificate failures are sts-webpki-invalid.
func TestHostileTLS(t *testing.T) {
	leakcheck.Check(t)
	pki := newTestPKI(t)
	other := newTestPKI(t)
	good := serverTLS(t, pki, "http/1.1")
	serveGood := h1(raw("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(goodPolicy)) + "\r\n\r\n" + goodPolicy))
	withCert := func(c tls.Certificate) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{c}, NextProtos: []string{"http/1.1"}}
	}
	now := time.Now()
	cases := []struct {
		name  string
		cfg   *tls.Config
		raw   func(s *hostileServer, c net.Conn)
		rt    tlsrpt.ResultType
		kinds []Kind
	}{
		{"plaintext HTTP on the TLS port", nil, func(s *hostileServer, c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"+goodPolicy)
		}, tlsrpt.STSPolicyFetchError, []Kind{KindNetwork}},
		{"close after ClientHello", nil, func(s *hostileServer, c net.Conn) {
			c.Read(make([]byte, 4096))
		}, tlsrpt.STSPolicyFetchError, []Kind{KindNetwork}},
		{"silent after accept", nil, func(s *hostileServer, c net.Conn) { s.sleep(time.Minute) }, tlsrpt.STSPolicyFetchError, []Kind{KindTimeout}},
		{"endless garbage", nil, func(s *hostileServer, c net.Conn) {
			buf := bytes.Repeat([]byte{0x16, 0x03, 0x03, 0x40, 0x00}, 4096)
			for !s.stopped() {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}, tlsrpt.STSPolicyFetchError, []Kind{KindNetwork}},
		{"handshake alert (no certificate)", &tls.Config{NextProtos: []string{"http/1.1"}}, nil, tlsrpt.STSPolicyFetchError, []Kind{KindNetwork}},
		{"client certificate required", func() *tls.Config {
			c := good.Clone()
			c.ClientAuth = tls.RequireAnyClientCert
			return c
		}(), nil, tlsrpt.STSPolicyFetchError, []Kind{KindNetwork}},
		{"TLS 1.1 only", func() *tls.Config {
			c := good.Clone()
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			return c
		}(), nil, tlsrpt.STSPolicyFetchError, []Kind{KindNetwork, KindTLSVersion}},
		{"untrusted issuer", withCert(other.leaf(t, time.Time{}, time.Time{}, "mta-sts."+hostileDomain)), nil, tlsrpt.STSWebPKIInvalid, []Kind{KindCertificate}},
		{"wrong name", withCert(pki.leaf(t, time.Time{}, time.Time{}, hostileDomain)), nil, tlsrpt.STSWebPKIInvalid, []Kind{KindCertificate}},
		{"expired", withCert(pki.leaf(t, now.Add(-48*time.Hour), now.Add(-time.Hour), "mta-sts."+hostileDomain)), nil, tlsrpt.STSWebPKIInvalid, []Kind{KindCertificate}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			handle := tc.raw
			if handle == nil {
				handle = serveGood
			}
			s := newHostileServer(t, tc.cfg, handle)
			fetchOutcome(t, s.client(pki), tc.rt, tc.kinds...)
		})
	}
}

// TestHostileFetchMemory: a policy host streaming an endless body at
// loopback speed costs the fetch a bounded amount of memory, far less
// than what the host sent.
func TestHostileFetchMemory(t *testing.T) {
	leakcheck.Check(t)
	pki := newTestPKI(t)
	s := newHostileServer(t, serverTLS(t, pki, "http/1.1"), h1(func(s *hostileServer, c net.Conn, r *http.Request) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
		buf := bytes.Repeat([]byte("x"), 64<<10)
		for !s.stopped() {
			n, err := c.Write(buf)
			s.written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	c := s.client(pki)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := fetch(context.Background(), c, hostileDomain, fetchOptions{timeout: hostileBound})
	runtime.ReadMemStats(&after)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindBodyTooLarge {
		t.Fatalf("fetch: %v", err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("the host wrote %d bytes; the fetch allocated %d bytes", s.written.Load(), alloc)
	// The body is read through a MaxPolicySize+1 limit: what is
	// allocated is that buffer and TLS/HTTP state, whatever the host
	// sends. The bound leaves room for the server side of the test,
	// which runs in the same process.
	if alloc > 8<<20 {
		t.Errorf("a fetch allocated %d bytes", alloc)
	}
}

// TestHostileClientLookup drives the whole Client (TXT lookup, fetch,
// cache) against a hostile policy host: the failure is an outcome in the
// Result, with the TLS-RPT result type, and the next lookup within the
// back-off does not contact the host again.
func TestHostileClientLookup(t *testing.T) {
	leakcheck.Check(t)
	pki := newTestPKI(t)
	s := newHostileServer(t, serverTLS(t, pki, "http/1.1"), h1(func(s *hostileServer, c net.Conn, r *http.Request) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
		for !s.stopped() {
			if _, err := io.WriteString(c, fmt.Sprintf("%x\r\n%s\r\n", 4096, strings.Repeat("y", 4096))); err != nil {
				return
			}
		}
	}))
	srv := newTXTServer(t, map[string]string{"_mta-sts." + hostileDomain + ".": "v=STSv1; id=1"})
	cl := &Client{Resolver: srv, HTTPClient: s.client(pki), FetchTimeout: hostileBudget, Logger: discardLogger()}
	for i := range 3 {
		start := time.Now()
		res, err := cl.Lookup(context.Background(), hostileDomain)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > hostileBound {
			t.Errorf("lookup %d took %v", i, d)
		}
		if res.Policy != nil || res.RecordStatus != RecordFound || resultTypeOf(res.FetchError) != tlsrpt.STSPolicyInvalid {
			t.Fatalf("lookup %d: %+v", i, res)
		}
		if i > 0 && res.BackoffUntil.IsZero() {
			t.Errorf("lookup %d fetched again within the back-off", i)
		}
	}
	if n := s.srv.Accepted(); n != 1 {
		t.Errorf("%d connections to the policy host, want 1", n)
	}
}

// newTXTServer serves the given TXT records (name -> one record) on a
// loopback UDP socket and returns a Stub that asks it; other names are
// NXDOMAIN.
func newTXTServer(t testing.TB, txt map[string]string) *resolver.Stub {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		qq := q.Question[0]
		v, ok := txt[strings.ToLower(qq.Name)]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case qq.Qtype == dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: []string{v}})
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { srv.Shutdown(); <-done })
	return &resolver.Stub{Servers: []string{pc.LocalAddr().String()}, Timeout: time.Second}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
