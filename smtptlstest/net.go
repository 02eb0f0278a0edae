package smtptlstest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
)

// Register maps the World address (addr, port) to target, a real
// "host:port" that DialContext dials instead. An empty target removes the
// mapping. The World does not own target.
func (w *World) Register(addr netip.Addr, port int, target string) {
	k := netip.AddrPortFrom(addr.Unmap(), uint16(port))
	w.mu.Lock()
	defer w.mu.Unlock()
	if target == "" {
		delete(w.addrs, k)
		return
	}
	w.addrs[k] = target
}

// Listen maps the World address (addr, port) to the listener l, so that a
// test can plug its own server into the World. The World does not close l.
func (w *World) Listen(addr netip.Addr, port int, l net.Listener) {
	w.Register(addr, port, l.Addr().String())
}

// DialContext connects to address ("host:port") in the World, with the
// signature of net.Dialer.DialContext so that it plugs into
// http.Transport, SMTP clients and the project's delivery code. A host
// name is resolved through the World's zone data (A, then AAAA, following
// CNAMEs; faults and the DNS delay do not apply, and no query is counted:
// use DialContextWith for a dialer whose lookups go over the wire); an IP
// address is taken as is. The first address registered for the port
// (AddMX, SetPolicy, Register, Listen) is dialled, after the network delay
// (SetNetDelay). An address nothing is registered for gives a real
// "connection refused" error, and a name without addresses a
// *net.DNSError with IsNotFound set. Only TCP networks are supported.
func (w *World) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return w.dial(ctx, network, address, nil)
}

// DialContextWith returns a dial function like DialContext that resolves
// host names with r instead of reading the zone data: with w.Resolver()
// (or a resolver.Cache in front of it) each lookup is a real query to the
// DNS front, which costs its delay (SetDelay), counts in QueryCount and
// meets its faults, as an MTA's own dialer does. Names are resolved with
// resolver.LookupAddrs: A and AAAA concurrently, as net.Dialer does. A
// failed lookup gives a *net.DNSError that unwraps to the resolver's
// error, and a name without addresses one with IsNotFound set. A nil r
// means w.Resolver().
func (w *World) DialContextWith(r resolver.Resolver) func(ctx context.Context, network, address string) (net.Conn, error) {
	if r == nil {
		r = w.Resolver()
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		return w.dial(ctx, network, address, r)
	}
}

// dial is DialContext; a non-nil r resolves host names instead of the
// zone data.
func (w *World) dial(ctx context.Context, network, address string, r resolver.Resolver) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "invalid port", Addr: address}}
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip.WithZone("").Unmap()}
	} else {
		name, err := fqdn(host)
		if err != nil {
			return nil, &net.DNSError{Err: "invalid domain name", Name: host, IsNotFound: true}
		}
		if r != nil {
			as, _, err := resolver.LookupAddrs(ctx, r, name)
			if err != nil {
				return nil, &net.DNSError{Err: err.Error(), Name: host, IsTemporary: true, UnwrapErr: err}
			}
			for _, a := range as {
				addrs = append(addrs, a.Unmap())
			}
		} else {
			w.mu.RLock()
			addrs = w.addresses(name)
			w.mu.RUnlock()
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
	}
	var targets []string
	var first netip.Addr
	w.mu.RLock()
	delay := w.netDelay
	for _, a := range addrs {
		if (network == "tcp4" && !a.Is4()) || (network == "tcp6" && !a.Is6()) {
			continue
		}
		if !first.IsValid() {
			first = a
		}
		if t := w.addrs[netip.AddrPortFrom(a, uint16(port))]; t != "" {
			targets = append(targets, t)
		}
	}
	w.mu.RUnlock()
	// The TCP handshake's round trip (SetNetDelay).
	if !w.sleep(ctx, delay) {
		err := ctx.Err()
		if err == nil {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var d net.Dialer
	var lastErr error
	for _, t := range targets {
		c, err := d.DialContext(ctx, "tcp", t)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	if lastErr != nil {
		return nil, lastErr
	}
	// Nothing listens there: dial a port that is bound but not listening,
	// for the real error, then make it name the World address.
	c, err := d.DialContext(ctx, "tcp", w.refused.Addr())
	if err == nil {
		c.Close()
		err = errors.New("connection refused")
	}
	if oe, ok := err.(*net.OpError); ok && first.IsValid() {
		oe.Addr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(first, uint16(port)))
	}
	return nil, err
}

// SetNetDelay sets the simulated round trip time of the World's TCP and
// HTTPS traffic (SetDelay is the DNS front's). Zero, the default, adds
// nothing. The model is one delay per round trip of a TLS 1.3 fetch:
//
//   - DialContext and DialContextWith wait d before connecting (the TCP
//     handshake);
//   - the MTA-STS server waits d before its first handshake flight (the
//     TLS 1.3 handshake: ClientHello to ServerHello...Finished), whatever
//     TLS version is negotiated;
//   - the MTA-STS server waits d before it answers a request (the HTTP
//     request and response), on top of Policy.Delay.
//
// A fresh policy fetch through DialContextWith thus costs the address
// lookup (one DNS delay) plus three network delays. The SMTP servers'
// dialogues are not delayed beyond the connect.
func (w *World) SetNetDelay(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.netDelay = d
}

func (w *World) getNetDelay() time.Duration {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.netDelay
}

// addresses returns the A then AAAA addresses of name in the World's zone
// data, following CNAMEs. Callers hold w.mu.
func (w *World) addresses(name string) []netip.Addr {
	var out []netip.Addr
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		res := w.resolve(name, t, false)
		if res.servfail {
			continue
		}
		for _, p := range res.answer {
			for _, rr := range p.rrs {
				switch rr := rr.(type) {
				case *dns.A:
					if a, ok := netip.AddrFromSlice(rr.A); ok {
						out = append(out, a.Unmap())
					}
				case *dns.AAAA:
					if a, ok := netip.AddrFromSlice(rr.AAAA); ok {
						out = append(out, a)
					}
				}
			}
		}
	}
	return out
}

// allocAddr returns a loopback address (127.0.0.2 onwards) that no zone
// data of the World uses yet and nothing is registered at. Callers hold
// w.mu for writing.
func (w *World) allocAddr() netip.Addr {
	used := make(map[netip.Addr]bool)
	for k := range w.addrs {
		used[k.Addr()] = true
	}
	for _, z := range w.zones {
		for _, node := range z.nodes {
			for _, rr := range node[dns.TypeA] {
				if a, ok := netip.AddrFromSlice(rr.(*dns.A).A); ok {
					used[a.Unmap()] = true
				}
			}
		}
	}
	for {
		w.nextAddr++
		n := 127<<24 | (w.nextAddr+1)&0xffffff
		a := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		if a.As4()[3] == 0 || a.As4()[3] == 255 || used[a] {
			continue
		}
		return a
	}
}

// ensureAddrs makes host resolve in the World: if it has no A or AAAA
// records, an A record with a fresh loopback address is added to the zone
// that answers for it. It returns the host's addresses. Callers hold w.mu
// for writing.
func (w *World) ensureAddrs(host string) []netip.Addr {
	if addrs := w.addresses(host); len(addrs) > 0 {
		return addrs
	}
	a := w.allocAddr()
	z := w.route(host, dns.TypeA)
	z.put(&dns.A{
		Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: DefaultTTL},
		A:   a.AsSlice(),
	})
	z.changed()
	return []netip.Addr{a}
}

// HTTPClient returns an HTTP client for the World: it dials through
// DialContext, trusts only the World CA's root, may use HTTP/2, ignores
// proxy settings, and bounds its waits (10 s for TLS handshakes and
// response headers, 30 s in all). Each call returns a new Client, free
// to be modified; they share one Transport, closed with the World.
func (w *World) HTTPClient() *http.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.transport == nil {
		w.transport = w.newTransport(w.DialContext)
	}
	return &http.Client{Transport: w.transport, Timeout: 30 * time.Second}
}

// HTTPClientWith is HTTPClient with a Transport of its own that dials
// through DialContextWith(r): host names, mta-sts.<domain> included, are
// resolved with r (nil means w.Resolver()), so that a policy fetch pays
// for its address lookup as it does on the Internet. Its idle connections
// are closed with the World, which keeps every such Transport until then:
// create one client per test or benchmark, not one per request.
func (w *World) HTTPClientWith(r resolver.Resolver) *http.Client {
	dial := w.DialContextWith(r)
	w.mu.Lock()
	defer w.mu.Unlock()
	tr := w.newTransport(dial)
	// Bounded by what tests create; a Transport without idle
	// connections is small.
	w.transports = append(w.transports, tr)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// newTransport returns the World's HTTP transport configuration with
// dial. Callers hold w.mu.
func (w *World) newTransport(dial func(ctx context.Context, network, address string) (net.Conn, error)) *http.Transport {
	tr := &http.Transport{
		DialContext: dial,
		TLSClientConfig: &tls.Config{
			RootCAs:    w.ca.Pool(),
			MinVersion: tls.VersionTLS12,
		},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  10 * time.Second,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if w.closed {
		tr.DisableKeepAlives = true
	}
	return tr
}

// refuser holds a TCP port on 127.0.0.1 that refuses connections, so that
// dialling an unregistered World address fails as it does on the Internet.
type refuser struct {
	addr  string
	close func() error
}

func (r *refuser) Addr() string { return r.addr }

func (r *refuser) Close() {
	if r.close != nil {
		r.close()
	}
}

func refusedFallback() (*refuser, error) {
	// Without a socket bound but not listening, use a port that was
	// just released: as good as it gets portably.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("reserving a refused port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return &refuser{addr: addr}, nil
}
