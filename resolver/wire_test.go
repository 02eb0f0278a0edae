package resolver

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/smtptls/smtptls/internal/rawserver"
)

// wireServer is a programmable DNS server on real loopback sockets (UDP and
// TCP on one port) for tests of the wire behaviour of Stub and Cache that
// need replies no well-behaved server would send.
type wireServer struct {
	Addr    string
	queries atomic.Int64
	udp     atomic.Int64
	mu      sync.Mutex
	handle  func(w dns.ResponseWriter, q *dns.Msg)
}

func newWireServer(t testing.TB, handle func(w dns.ResponseWriter, q *dns.Msg)) *wireServer {
	t.Helper()
	pc, l := rawserver.ListenPair(t)
	s := &wireServer{Addr: pc.LocalAddr().String(), handle: handle}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		s.queries.Add(1)
		if w.LocalAddr().Network() == "udp" {
			s.udp.Add(1)
		}
		s.mu.Lock()
		f := s.handle
		s.mu.Unlock()
		f(w, q)
	})
	us := &dns.Server{PacketConn: pc, Handler: h}
	ts := &dns.Server{Listener: l, Handler: h}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() })
	return s
}

// reply builds a response to q with the given records in the answer
// section.
func reply(q *dns.Msg, rcode int, ad bool, rrs ...string) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	m.RecursionAvailable = true
	m.AuthenticatedData = ad
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		if _, ok := rr.(*dns.SOA); ok {
			m.Ns = append(m.Ns, rr)
			continue
		}
		m.Answer = append(m.Answer, rr)
	}
	return m
}

// zone answers from a map of "name type" -> records, NXDOMAIN for names
// absent from names, NODATA (with an SOA) otherwise.
func zone(ad bool, data map[string][]string) func(w dns.ResponseWriter, q *dns.Msg) {
	return func(w dns.ResponseWriter, q *dns.Msg) {
		qq := q.Question[0]
		key := qq.Name + " " + dns.TypeToString[qq.Qtype]
		if rrs, ok := data[key]; ok {
			w.WriteMsg(reply(q, dns.RcodeSuccess, ad, rrs...))
			return
		}
		soa := "test. 300 IN SOA ns.test. h.test. 1 3600 600 86400 60"
		for k := range data {
			if len(k) > len(qq.Name) && k[:len(qq.Name)+1] == qq.Name+" " {
				w.WriteMsg(reply(q, dns.RcodeSuccess, ad, soa))
				return
			}
		}
		w.WriteMsg(reply(q, dns.RcodeNameError, ad, soa))
	}
}

// deadAddr returns a loopback UDP address nothing listens on: queries to it
// fail at once with "connection refused".
func deadAddr(t testing.TB) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := pc.LocalAddr().String()
	pc.Close()
	return a
}

// TestCloseIdleConnections: a Stub and a Validating reuse their UDP
// socket between queries (the server sees the same source port) until
// CloseIdleConnections, after which they open a new one and still work.
func TestCloseIdleConnections(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var ports []string
	srv := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		mu.Lock()
		ports = append(ports, w.RemoteAddr().String())
		mu.Unlock()
		w.WriteMsg(reply(q, dns.RcodeSuccess, true, "a.test. 300 IN A 192.0.2.1"))
	})
	for _, c := range []struct {
		name string
		r    interface {
			Resolver
			CloseIdleConnections()
		}
	}{
		{"Stub", &Stub{Servers: []string{srv.Addr}}},
		// The only anchor is for another zone: a.test. is under no
		// anchor, so Insecure with one query per lookup and no
		// speculative key fetches (a prefetch still running after
		// Lookup returned could put its socket back after
		// CloseIdleConnections and be counted as a socket of before).
		{"Validating", &Validating{Servers: []string{srv.Addr}, Anchors: []*dns.DS{{
			Hdr:    dns.RR_Header{Name: "elsewhere.example.", Rrtype: dns.TypeDS, Class: dns.ClassINET, Ttl: 3600},
			KeyTag: 1, Algorithm: dns.ECDSAP256SHA256, DigestType: dns.SHA256,
			Digest: "0000000000000000000000000000000000000000000000000000000000000000"}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// query returns the source addresses of a lookup's queries (a
			// Validating sends several, some at once).
			query := func() map[string]bool {
				mu.Lock()
				ports = nil
				mu.Unlock()
				c.r.Lookup(context.Background(), "a.test.", dns.TypeA)
				mu.Lock()
				defer mu.Unlock()
				if len(ports) == 0 {
					t.Fatal("no query reached the server")
				}
				set := map[string]bool{}
				for _, p := range ports {
					set[p] = true
				}
				return set
			}
			first, second := query(), query()
			reused := false
			for p := range second {
				reused = reused || first[p]
			}
			if !reused {
				t.Fatalf("second lookup from %v, first from %v: no socket was reused", second, first)
			}
			c.r.CloseIdleConnections()
			// Hold the closed sockets' ports so that the kernel cannot
			// give one of them to the new socket by chance; a port still
			// held by an unclosed socket fails to bind and is caught by
			// the check below.
			for p := range first {
				if pc, err := net.ListenPacket("udp", p); err == nil {
					defer pc.Close()
				}
			}
			for p := range second {
				if pc, err := net.ListenPacket("udp", p); err == nil {
					defer pc.Close()
				}
			}
			for p := range query() {
				if first[p] || second[p] {
					t.Errorf("a query after CloseIdleConnections came from %s, a socket of before", p)
				}
			}
		})
	}
}
