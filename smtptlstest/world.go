package smtptlstest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
)

// A World is a self-contained Internet for tests: a signed DNS hierarchy
// from its own root, served by a recursive front on loopback; a test CA;
// an MTA-STS HTTPS server; STARTTLS SMTP servers; and an address map that
// makes the World's host names and addresses dialable.
//
// Every method is safe for concurrent use. Worlds are independent of each
// other: parallel tests may each run their own.
type World struct {
	// mu guards the World's configuration and data: zones and their
	// records, faults, delays, the address map, policies, servers.
	mu         sync.RWMutex
	zones      map[string]*Zone
	faults     map[faultKey]Fault
	delay      time.Duration
	faultDelay time.Duration
	addrs      map[netip.AddrPort]string
	nextAddr   uint32
	policies   map[string]*policyEntry
	certs      map[certKey]*tls.Certificate
	mxs        []*SMTPServer
	transport  *http.Transport
	transports []*http.Transport // of HTTPClientWith clients
	netDelay   time.Duration
	closed     bool

	queries atomic.Int64
	countMu sync.Mutex // guards counts
	counts  map[faultKey]int64

	ca      *CA
	done    chan struct{} // closed by Close: ends delays and slow writes
	once    sync.Once
	dnsUDP  *dns.Server
	dnsTCP  *dns.Server
	dnsAddr string
	refused *refuser

	httpsOnce sync.Once
	https     *httptest.Server
}

// NewWorld starts a World: its root zone (signed, NSEC, algorithm 13) and
// its DNS front on UDP and TCP 127.0.0.1, on a port the kernel chooses. It
// panics if it cannot listen, like httptest.NewServer. The caller must
// call Close; New does that for tests.
func NewWorld() *World {
	w, err := newWorld()
	if err != nil {
		panic(fmt.Sprintf("smtptlstest: NewWorld: %v", err))
	}
	return w
}

// New starts a World that is closed when the test ends.
func New(tb testing.TB) *World {
	tb.Helper()
	w := NewWorld()
	tb.Cleanup(w.Close)
	return w
}

// Zone configurations of the zones the World creates by itself: a root
// like the real one (NSEC) and TLDs like most real ones (NSEC3, opt-out,
// no extra iterations, no salt, as RFC 9276 recommends).
var (
	rootConfig = ZoneConfig{Signing: NSEC, Algorithm: dns.ECDSAP256SHA256}
	tldConfig  = ZoneConfig{Signing: NSEC3OptOut, Algorithm: dns.ECDSAP256SHA256}
)

func newWorld() (*World, error) {
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	w := &World{
		zones:    make(map[string]*Zone),
		faults:   make(map[faultKey]Fault),
		addrs:    make(map[netip.AddrPort]string),
		policies: make(map[string]*policyEntry),
		certs:    make(map[certKey]*tls.Certificate),
		counts:   make(map[faultKey]int64),
		ca:       ca,
		done:     make(chan struct{}),
	}
	root := &Zone{w: w, name: ".", nodes: make(map[string]map[uint16][]dns.RR)}
	if err := root.setup(rootConfig, true); err != nil {
		return nil, err
	}
	w.zones["."] = root
	if w.refused, err = newRefuser(); err != nil {
		return nil, err
	}
	if err := w.startDNS(); err != nil {
		w.refused.Close()
		return nil, err
	}
	return w, nil
}

// udpReadBuffer is the receive buffer size the DNS front asks for.
const udpReadBuffer = 4 << 20

func (w *World) startDNS() error {
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	// UDP and TCP on the same port: take a UDP port, then try its TCP
	// twin; another process may hold it, so retry a few times.
	for range 50 {
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		return fmt.Errorf("no UDP/TCP port pair on 127.0.0.1: %w", err)
	}
	// Queries that arrive faster than the front reads them wait in the
	// socket's buffer; the default (about 200 datagrams) overflows, and
	// queries are lost, when a load test keeps thousands in flight. A
	// recursive resolver sizes its buffer for its load too. The kernel
	// caps the size (net.core.rmem_max); failing to grow it is harmless.
	if uc, ok := pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(udpReadBuffer)
	}
	h := dns.HandlerFunc(w.serveDNS)
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	w.dnsUDP = &dns.Server{PacketConn: pc, Handler: h, UDPSize: dns.MaxMsgSize, NotifyStartedFunc: notify}
	w.dnsTCP = &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: notify}
	w.dnsAddr = pc.LocalAddr().String()
	errs := make(chan error, 2)
	for _, s := range []*dns.Server{w.dnsUDP, w.dnsTCP} {
		go func() { errs <- s.ActivateAndServe() }()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-errs:
			pc.Close()
			ln.Close()
			return err
		}
	}
	return nil
}

// Close stops every server of the World and releases its sockets. It
// waits for the servers' goroutines to end. It is idempotent.
func (w *World) Close() {
	w.once.Do(func() {
		close(w.done)
		w.mu.Lock()
		w.closed = true
		mxs := slices.Clone(w.mxs)
		trs := slices.Clone(w.transports)
		if w.transport != nil {
			trs = append(trs, w.transport)
		}
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.dnsUDP.ShutdownContext(ctx)
		w.dnsTCP.ShutdownContext(ctx)
		for _, tr := range trs {
			tr.CloseIdleConnections()
		}
		w.httpsOnce.Do(func() {}) // no server may start from now on
		if w.https != nil {
			w.https.CloseClientConnections()
			w.https.Close()
		}
		for _, s := range mxs {
			s.close()
		}
		w.refused.Close()
	})
}

// DNSAddr returns the address ("127.0.0.1:port") of the World's recursive
// DNS front, on UDP and TCP.
func (w *World) DNSAddr() string { return w.dnsAddr }

// Resolver returns a stub resolver that asks the World's DNS front and
// trusts its AD bit (the front is on loopback).
func (w *World) Resolver() *resolver.Stub {
	return &resolver.Stub{Servers: []string{w.DNSAddr()}}
}

// Anchors returns the trust anchors of the World: the DS (SHA-256) of its
// root KSK, for a validator that starts at the World's root.
func (w *World) Anchors() []*dns.DS {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if ds := w.zones["."].ds(); ds != nil {
		return []*dns.DS{ds}
	}
	return nil
}

// CA returns the World's test CA, which issues the certificates of the
// MTA-STS and SMTP servers and whose root HTTPClient trusts.
func (w *World) CA() *CA { return w.ca }

// AddZone creates the zone name with cfg, or reconfigures it if it exists
// (new keys when the algorithm or the signing changes; the parent's DS is
// updated). A new zone gets an SOA, an NS (ns1.<zone>, without address)
// and, when signed, its DNSKEYs. Missing ancestors are created: the TLD of
// name (NSEC3 opt-out, algorithm 13) when absent; the root always exists.
// The zone is delegated from its closest existing ancestor zone: NS, and
// DS unless the zone is unsigned or NoDS is set. Delegations of existing
// zones below the new one move into it.
//
// Configure TLDs (or any parent) before their children if their defaults
// do not suit; AddZone on an existing zone does that too. AddZone panics
// on an invalid name or configuration (a bug in the test).
func (w *World) AddZone(name string, cfg ZoneConfig) *Zone {
	name = mustFQDN(name)
	cfg, err := cfg.normalize()
	if err != nil {
		panic(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if z := w.zones[name]; z != nil {
		if err := z.setup(cfg, false); err != nil {
			panic(err)
		}
		w.delegate(z)
		return z
	}
	if dns.CountLabel(name) >= 2 {
		if tld := ancestorAt(name, 1); w.zones[tld] == nil {
			w.newZone(tld, tldConfig)
		}
	}
	return w.newZone(name, cfg)
}

// Zone returns the zone named name, or nil if the World has none.
func (w *World) Zone(name string) *Zone {
	n, err := fqdn(name)
	if err != nil {
		return nil
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.zones[n]
}

// Zones returns the World's zones in canonical order of their names.
func (w *World) Zones() []*Zone {
	w.mu.RLock()
	defer w.mu.RUnlock()
	zs := make([]*Zone, 0, len(w.zones))
	for _, z := range w.zones {
		zs = append(zs, z)
	}
	slices.SortFunc(zs, func(a, b *Zone) int { return canonicalCompare(a.name, b.name) })
	return zs
}

// newZone creates and delegates a zone. Callers hold w.mu for writing.
func (w *World) newZone(name string, cfg ZoneConfig) *Zone {
	z := &Zone{w: w, name: name, nodes: make(map[string]map[uint16][]dns.RR)}
	if err := z.setup(cfg, true); err != nil {
		panic(err)
	}
	parent := w.parentZone(name)
	w.zones[name] = z
	// Zones below the new one were delegated from parent: their NS and
	// DS (as the test may have altered them) move into the new zone.
	for _, c := range w.zones {
		if c == z || !dns.IsSubDomain(name, c.name) || w.parentZone(c.name) != z {
			continue
		}
		if node := parent.nodes[c.name]; node != nil {
			for _, t := range []uint16{dns.TypeNS, dns.TypeDS} {
				for _, rr := range node[t] {
					z.put(rr)
				}
				delete(node, t)
			}
			if len(node) == 0 {
				delete(parent.nodes, c.name)
			}
			parent.changed()
			z.changed()
		}
	}
	w.delegate(z)
	return z
}

// delegate writes the delegation of z in its parent: NS if there is none,
// and the DS RRset the configuration calls for. Callers hold w.mu.
func (w *World) delegate(z *Zone) {
	if z.name == "." {
		return
	}
	p := w.parentZone(z.name)
	node := p.nodes[z.name]
	if node == nil {
		node = make(map[uint16][]dns.RR)
		p.nodes[z.name] = node
	}
	if len(node[dns.TypeNS]) == 0 {
		node[dns.TypeNS] = []dns.RR{&dns.NS{
			Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: DefaultTTL},
			Ns:  nsName(z.name),
		}}
	}
	delete(node, dns.TypeDS)
	if ds := z.ds(); ds != nil && !z.cfg.NoDS {
		node[dns.TypeDS] = []dns.RR{ds}
	}
	p.changed()
}

// parentZone returns the closest zone strictly above name. Callers hold
// w.mu.
func (w *World) parentZone(name string) *Zone {
	for a := parentName(name); a != ""; a = parentName(a) {
		if z := w.zones[a]; z != nil {
			return z
		}
	}
	return w.zones["."]
}

// route returns the zone that answers (name, qtype), following the
// delegations from the root: a zone whose parent holds no NS for it is
// unreachable, and the parent side of a cut answers DS (RFC 4035 section
// 3.1.4.1). Callers hold w.mu.
func (w *World) route(name string, qtype uint16) *Zone {
	cur := w.zones["."]
	n := dns.CountLabel(name)
	for i := 1; i <= n; i++ {
		a := ancestorAt(name, i)
		c := w.zones[a]
		if c == nil {
			continue
		}
		if a == name && qtype == dns.TypeDS {
			break
		}
		if len(cur.nodes[a][dns.TypeNS]) == 0 {
			continue
		}
		cur = c
	}
	return cur
}

// QueryCount returns how many queries the DNS front has received (every
// transport, every fault; a client retrying over TCP counts twice).
func (w *World) QueryCount() int64 { return w.queries.Load() }

// QueryCountFor returns how many queries for (name, qtype) the DNS front
// has received; qtype 0 counts every type.
func (w *World) QueryCountFor(name string, qtype uint16) int64 {
	n, err := fqdn(name)
	if err != nil {
		return 0
	}
	w.countMu.Lock()
	defer w.countMu.Unlock()
	if qtype != 0 {
		return w.counts[faultKey{n, qtype}]
	}
	var sum int64
	for k, c := range w.counts {
		if k.name == n {
			sum += c
		}
	}
	return sum
}

func (w *World) countQuery(name string, qtype uint16) {
	w.queries.Add(1)
	w.countMu.Lock()
	defer w.countMu.Unlock()
	// Bounded: a misbehaving client must not grow a test's memory
	// without end.
	if len(w.counts) < 1<<16 {
		w.counts[faultKey{name, qtype}]++
	}
}

// sleep waits d or until the World closes; it reports whether d passed.
func (w *World) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.done:
		return false
	case <-ctx.Done():
		return false
	}
}
