package resolver

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/internal/rawserver"
)

// The Stub and the validator each reuse their sockets (the Pool of
// resolver/internal/wire, tested there): a server sees their queries come
// from a few source ports, not one per query.

// portRecorder is a DNS front on loopback (UDP and TCP on one port) that
// relays every query to upstream over the same transport and records the
// client's source address.
type portRecorder struct {
	addr string
	mu   sync.Mutex // guards seen and queries
	seen map[string]bool
	n    int
}

func newPortRecorder(t *testing.T, upstream string) *portRecorder {
	t.Helper()
	pc, ln := rawserver.ListenPair(t)
	p := &portRecorder{addr: pc.LocalAddr().String(), seen: map[string]bool{}}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		network := w.RemoteAddr().Network()
		p.mu.Lock()
		p.seen[network+" "+w.RemoteAddr().String()] = true
		p.n++
		p.mu.Unlock()
		c := &dns.Client{Net: network, UDPSize: dns.MaxMsgSize, Timeout: 2 * time.Second}
		if r, _, err := c.Exchange(q, upstream); err == nil {
			w.WriteMsg(r)
		}
	})
	us := &dns.Server{PacketConn: pc, Handler: h}
	ts := &dns.Server{Listener: ln, Handler: h}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() })
	return p
}

// count returns the distinct client addresses and the queries seen.
func (p *portRecorder) count() (addrs, queries int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen), p.n
}

// TestStubReusesSockets: twenty lookups, one socket.
func TestStubReusesSockets(t *testing.T) {
	leakcheck.Check(t)
	srv := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		w.WriteMsg(reply(q, dns.RcodeSuccess, true, q.Question[0].Name+" 300 IN A 192.0.2.1"))
	})
	front := newPortRecorder(t, srv.Addr)
	s := &Stub{Servers: []string{front.addr}}
	for i := range 20 {
		a, err := s.Lookup(context.Background(), "h"+strconv.Itoa(i)+".test", dns.TypeA)
		wantA(t, a, err, "192.0.2.1")
	}
	if addrs, n := front.count(); addrs != 1 || n != 20 {
		t.Errorf("%d queries from %d source addresses, want 20 from 1", n, addrs)
	}
}

// TestValidatingReusesSockets: after a cold lookup, warm lookups (one
// query each) go out from the sockets the cold one opened.
func TestValidatingReusesSockets(t *testing.T) {
	leakcheck.Check(t)
	w := twNewWorld(t)
	w.zone("test.", twCfg{signing: twNSEC3})
	w.zone("example.test.", twCfg{signing: twNSEC}, twLeaf...)
	w.seal()
	front := newPortRecorder(t, w.serve(t, nil).addr)
	v := &Validating{Servers: []string{front.addr}, Anchors: w.anchors}
	lookup := func() {
		t.Helper()
		a, err := v.Lookup(context.Background(), "mail.example.test", dns.TypeA)
		if got, _ := twVerdict(a, err); got != "secure" {
			t.Fatalf("verdict %s (%v), want secure", got, err)
		}
	}
	lookup()
	cold, coldQ := front.count()
	for range 10 {
		lookup()
	}
	warm, warmQ := front.count()
	if warmQ != coldQ+10 || warm != cold {
		t.Errorf("cold: %d queries from %d addresses; then %d warm queries from %d new ones, want 10 from none",
			coldQ, cold, warmQ-coldQ, warm-cold)
	}
}
