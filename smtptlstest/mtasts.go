package smtptlstest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// PolicyPath is the path of an MTA-STS policy (RFC 8461 section 3.2).
const PolicyPath = "/.well-known/mta-sts.txt"

// CertKind selects the certificate the MTA-STS server presents for a
// policy host.
type CertKind int

const (
	// CertValid is the zero value: a certificate for mta-sts.<domain>
	// issued by the World's CA.
	CertValid CertKind = iota
	// CertWrongName is issued by the World's CA for another name
	// ("wrong-name.<domain>").
	CertWrongName
	// CertExpired is issued by the World's CA for the right name but
	// expired a month ago.
	CertExpired
	// CertSelfSigned is a self-signed certificate for the right name.
	CertSelfSigned
)

// String returns "valid", "wrong-name", "expired" or "self-signed".
func (k CertKind) String() string {
	switch k {
	case CertValid:
		return "valid"
	case CertWrongName:
		return "wrong-name"
	case CertExpired:
		return "expired"
	case CertSelfSigned:
		return "self-signed"
	default:
		return fmt.Sprintf("certkind(%d)", int(k))
	}
}

// Policy is what the World's MTA-STS server answers for a domain: any
// request for https://mta-sts.<domain>/.well-known/mta-sts.txt. The zero
// value serves an empty 200 text/plain body with a valid certificate.
type Policy struct {
	// Body is the policy text, served as is (for example
	// "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n").
	Body string
	// Status is the HTTP status. Zero means 200, or 302 when Location is
	// set.
	Status int
	// ContentType is the Content-Type header. Empty means "text/plain";
	// RFC 8461 section 3.2 requires text/plain.
	ContentType string
	// Location, if set, is sent as the Location header (a redirect, which
	// RFC 8461 section 3.3 forbids clients to follow).
	Location string
	// Delay is how long the server waits before sending the headers.
	Delay time.Duration
	// BodyDelay, if set, makes the server send the body one byte at a
	// time with this pause between bytes (a slowloris server).
	BodyDelay time.Duration
	// BodySize, if positive, appends that many bytes of padding (newlines)
	// after Body: an oversize policy (RFC 8461 section 3.2 lets clients
	// stop at 64 KiB). The response then has no Content-Length.
	BodySize int64
	// Cert selects the certificate presented for mta-sts.<domain>.
	Cert CertKind
}

type policyEntry struct {
	p       Policy
	fetches atomic.Int64
}

type certKey struct {
	host string
	kind CertKind
}

// SetPolicy makes the World's HTTPS server answer p for domain (any case,
// with or without the trailing dot, U-labels). It makes mta-sts.<domain>
// resolve: if the name has no address, an A record with a fresh loopback
// address is added to the zone that answers for it; every address the
// name has at the time of the call is then mapped, port 443, to the HTTPS
// server. Add zones before setting policies for their domains. The _mta-sts TXT
// record is the test's to add. SetPolicy may be called again to change
// the policy; the fetch count is kept. It panics on an invalid domain.
func (w *World) SetPolicy(domain string, p Policy) {
	d, err := hostName(domain)
	if err != nil {
		panic(err)
	}
	target := w.httpsAddr()
	host := mustFQDN("mta-sts." + d)
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.policies[d]
	if e == nil {
		e = &policyEntry{}
		w.policies[d] = e
	}
	e.p = p
	for _, a := range w.ensureAddrs(host) {
		w.addrs[netip.AddrPortFrom(a, 443)] = target
	}
}

// RemovePolicy stops serving a policy for domain: the server then answers
// 404 Not Found. The host's addresses stay. It panics on an invalid
// domain.
func (w *World) RemovePolicy(domain string) {
	d, err := hostName(domain)
	if err != nil {
		panic(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.policies[d]; e != nil {
		e.p = Policy{Status: http.StatusNotFound}
	}
}

// PolicyFetches returns how many HTTPS requests the server received for
// domain's policy host (every path, every outcome).
func (w *World) PolicyFetches(domain string) int {
	d, err := hostName(domain)
	if err != nil {
		return 0
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if e := w.policies[d]; e != nil {
		return int(e.fetches.Load())
	}
	return 0
}

// PolicyAddr returns the real address ("127.0.0.1:port") of the World's
// HTTPS server, starting it if needed.
func (w *World) PolicyAddr() string { return w.httpsAddr() }

// httpsAddr starts the MTA-STS server on first use and returns its
// listener's address.
func (w *World) httpsAddr() string {
	w.httpsOnce.Do(func() {
		s := httptest.NewUnstartedServer(http.HandlerFunc(w.servePolicy))
		s.EnableHTTP2 = true
		s.TLS = &tls.Config{
			GetCertificate: w.policyCert,
			NextProtos:     []string{"h2", "http/1.1"},
		}
		s.Config.ReadHeaderTimeout = 10 * time.Second
		s.Config.ErrorLog = discardLogger()
		s.StartTLS()
		w.https = s
	})
	if w.https == nil {
		// Closed before the server ever started: an address that
		// refuses connections.
		return w.refused.Addr()
	}
	return w.https.Listener.Addr().String()
}

func (w *World) servePolicy(rw http.ResponseWriter, r *http.Request) {
	// The request's round trip (SetNetDelay), for every answer.
	if !w.sleep(r.Context(), w.getNetDelay()) {
		panic(http.ErrAbortHandler)
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host, _ = hostName(host) // "" if not a name: no policy
	domain, ok := strings.CutPrefix(host, "mta-sts.")
	var p Policy
	w.mu.RLock()
	e := w.policies[domain]
	if ok && e != nil {
		e.fetches.Add(1)
		p = e.p
	}
	w.mu.RUnlock()
	if !ok || e == nil || r.URL.Path != PolicyPath {
		http.NotFound(rw, r)
		return
	}
	ctx := r.Context()
	if !w.sleep(ctx, p.Delay) {
		// The World closes (or the client left): abort rather than
		// send an empty 200.
		panic(http.ErrAbortHandler)
	}
	status := p.Status
	if status == 0 {
		status = http.StatusOK
		if p.Location != "" {
			status = http.StatusFound
		}
	}
	ct := p.ContentType
	if ct == "" {
		ct = "text/plain"
	}
	hdr := rw.Header()
	hdr.Set("Content-Type", ct)
	hdr.Set("Cache-Control", "no-store")
	if p.Location != "" {
		hdr.Set("Location", p.Location)
	}
	if p.BodySize <= 0 && p.BodyDelay <= 0 {
		hdr.Set("Content-Length", strconv.Itoa(len(p.Body)))
	}
	rw.WriteHeader(status)
	if p.BodyDelay > 0 {
		rc := http.NewResponseController(rw)
		body := p.Body
		for i := int64(0); i < int64(len(body))+max(p.BodySize, 0); i++ {
			b := byte('\n')
			if i < int64(len(body)) {
				b = body[i]
			}
			if _, err := rw.Write([]byte{b}); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			if !w.sleep(ctx, p.BodyDelay) {
				panic(http.ErrAbortHandler)
			}
		}
		return
	}
	if _, err := io.WriteString(rw, p.Body); err != nil || p.BodySize <= 0 {
		return
	}
	pad := make([]byte, 32<<10)
	for i := range pad {
		pad[i] = '\n'
	}
	for n := p.BodySize; n > 0; {
		k := min(n, int64(len(pad)))
		if _, err := rw.Write(pad[:k]); err != nil {
			return
		}
		n -= k
		select {
		case <-w.done:
			panic(http.ErrAbortHandler)
		default:
		}
	}
}

// policyCert chooses the certificate by SNI: the Cert kind of the
// domain's policy, a valid one for a host without policy. It runs once
// per full handshake, before the server's first flight: there it also
// waits the network delay (SetNetDelay), the handshake's round trip.
func (w *World) policyCert(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !w.sleep(hello.Context(), w.getNetDelay()) {
		return nil, errors.New("smtptlstest: MTA-STS server: closed")
	}
	host, _ := hostName(hello.ServerName)
	if host == "" {
		return nil, errors.New("smtptlstest: MTA-STS server: no SNI, or not a name")
	}
	domain, _ := strings.CutPrefix(host, "mta-sts.")
	kind := CertValid
	w.mu.RLock()
	if e := w.policies[domain]; e != nil {
		kind = e.p.Cert
	}
	k := certKey{host, kind}
	c := w.certs[k]
	w.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	// Issue without holding w.mu: key generation and signing would stall
	// every DNS answer and every other handshake of the World. Two
	// handshakes may race to issue; the first certificate stored wins.
	var err error
	switch kind {
	case CertWrongName:
		c, err = w.ca.Issue(CertOptions{}, "wrong-name."+domain)
	case CertExpired:
		now := time.Now()
		c, err = w.ca.Issue(CertOptions{NotBefore: now.Add(-90 * 24 * time.Hour), NotAfter: now.Add(-30 * 24 * time.Hour)}, host)
	case CertSelfSigned:
		c, err = SelfSigned(host)
	default:
		c, err = w.ca.Issue(CertOptions{}, host)
	}
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if have := w.certs[k]; have != nil {
		return have, nil
	}
	w.certs[k] = c
	return c, nil
}
