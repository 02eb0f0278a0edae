package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/smtptls/smtptls/tlsverify"
)

// probeTimeout bounds one STARTTLS probe: connection, dialogue and
// handshake.
const probeTimeout = 30 * time.Second

// maxDialogue bounds what a probe reads from a server before the TLS
// handshake (greeting, EHLO and STARTTLS replies): a hostile server
// cannot make it buffer more.
const maxDialogue = 64 << 10

// probeHello is the name the probes give in EHLO: a name under .invalid
// (RFC 2606), which says that no mail is coming.
const probeHello = "survey.smtptls.invalid"

// probe is the outcome of the probe of one (host, address).
type probe struct {
	done     chan struct{} // closed when status and cs are set
	status   string        // a value of MXHost.STARTTLS
	cs       tls.ConnectionState
	reachErr error // why the address was unreachable, for the tests
}

// prober probes each (host, address) at most once per run, and each
// address with one connection at a time, however many domains and host
// names share it: a survey of a million domains must not hammer the few
// hosts of a large provider.
type prober struct {
	ctx  context.Context // the run's: a probe outlives the domain that started it
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex // guards probes and addrs
	probes map[string]*probe
	addrs  map[netip.Addr]chan struct{} // a token per destination address
}

func newProber(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error)) *prober {
	return &prober{ctx: ctx, dial: dial, probes: map[string]*probe{}, addrs: map[netip.Addr]chan struct{}{}}
}

// get returns the probe of host (with sni as the TLS server name) at
// addr, starting it on the first ask, or nil when ctx ends first.
func (pr *prober) get(ctx context.Context, host, sni string, addr netip.Addr) *probe {
	key := host + " " + sni + " " + addr.String()
	pr.mu.Lock()
	p, ok := pr.probes[key]
	if !ok {
		p = &probe{done: make(chan struct{})}
		pr.probes[key] = p
	}
	tok := pr.addrs[addr]
	if tok == nil {
		tok = make(chan struct{}, 1)
		pr.addrs[addr] = tok
	}
	pr.mu.Unlock()
	if !ok {
		// The probe runs on the run's context, not the domain's: the
		// domains that wait for it must not see it cut short by the
		// deadline of the first one.
		go func() {
			defer close(p.done)
			select {
			case tok <- struct{}{}:
			case <-pr.ctx.Done():
				p.status, p.reachErr = probeUnreachable, pr.ctx.Err()
				return
			}
			defer func() { <-tok }()
			pctx, cancel := context.WithTimeout(pr.ctx, probeTimeout)
			defer cancel()
			p.status, p.cs, p.reachErr = runProbe(pctx, pr.dial, sni, netip.AddrPortFrom(addr, 25))
		}()
	}
	select {
	case <-p.done:
		return p
	case <-ctx.Done():
		return nil
	}
}

// runProbe speaks SMTP to ap on one connection: greeting, EHLO, and when
// STARTTLS is offered, STARTTLS and a TLS handshake (TLS 1.2 at least)
// that accepts whatever certificate is presented: it is judged afterwards
// against the policy of each domain the host serves. Every read and
// write is bounded by ctx, whose end also closes the connection, and the
// cleartext dialogue by maxDialogue bytes.
func runProbe(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), sni string, ap netip.AddrPort) (string, tls.ConnectionState, error) {
	var cs tls.ConnectionState
	conn, err := dial(ctx, "tcp", ap.String())
	if err != nil {
		return probeUnreachable, cs, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	r := textproto.NewReader(bufio.NewReader(&io.LimitedReader{R: conn, N: maxDialogue}))
	cmd := func(line string, want int) (string, error) {
		if _, err := io.WriteString(conn, line+"\r\n"); err != nil {
			return "", err
		}
		_, msg, err := r.ReadResponse(want)
		return msg, err
	}
	if _, _, err := r.ReadResponse(220); err != nil {
		return probeUnreachable, cs, err
	}
	ehlo, err := cmd("EHLO "+probeHello, 250)
	var te *textproto.Error
	switch {
	case errors.As(err, &te) && te.Code >= 500:
		// EHLO refused: a HELO-only server, which offers no STARTTLS.
		cmd("QUIT", 221)
		return probeNotOffered, cs, nil
	case err != nil:
		return probeUnreachable, cs, err
	case !offersSTARTTLS(ehlo):
		cmd("QUIT", 221)
		return probeNotOffered, cs, nil
	}
	if _, err := cmd("STARTTLS", 220); err != nil {
		return probeFailed, cs, nil
	}
	// Whatever the server sent after its 220 is discarded unread: the
	// TLS client reads from the connection itself (RFC 3207 4.2: nothing
	// from before the handshake is kept).
	var got tls.ConnectionState
	tc := tls.Client(conn, tlsverify.Config(nil, sni, captureVerifier{&got}))
	if err := tc.HandshakeContext(ctx); err != nil {
		return probeFailed, cs, nil
	}
	io.WriteString(tc, "QUIT\r\n")
	// Only what a verdict needs is kept: a run keeps one probe per host.
	cs = tls.ConnectionState{Version: got.Version, HandshakeComplete: got.HandshakeComplete,
		ServerName: got.ServerName, PeerCertificates: got.PeerCertificates}
	return probeOK, cs, nil
}

// offersSTARTTLS reports whether an EHLO reply (its lines joined by
// "\n", the first being the greeting) lists the STARTTLS keyword (RFC
// 3207 4).
func offersSTARTTLS(ehlo string) bool {
	lines := strings.Split(ehlo, "\n")
	for _, l := range lines[1:] {
		if kw, _, _ := strings.Cut(strings.TrimSpace(l), " "); strings.EqualFold(kw, "STARTTLS") {
			return true
		}
	}
	return false
}

// captureVerifier records the connection state of a handshake and
// accepts it: the probe judges the certificate later, per domain.
type captureVerifier struct{ cs *tls.ConnectionState }

func (c captureVerifier) Verify(cs tls.ConnectionState) error { *c.cs = cs; return nil }
