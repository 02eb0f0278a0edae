package wire

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/internal/rawserver"
)

// The Pool over real loopback sockets: miekg/dns servers that record the
// source port and ID of every query. These tests are not parallel at the
// top level: leakcheck counts every goroutine of the process.

// testServer is a DNS server on one loopback port, UDP and TCP.
type testServer struct {
	addr   string
	handle func(w dns.ResponseWriter, q *dns.Msg)

	mu    sync.Mutex // guards the fields below
	udp   map[int]*seen
	tcp   map[int]*seen
	ids   []uint16
	udpQ  int
	tcpQ  int
	names map[string]int
}

// seen is what a server saw of one client port.
type seen struct {
	first, last time.Time
	queries     int
}

// newTestServer serves handle until the test ends; nil handle answers
// every question with one A record.
func newTestServer(t testing.TB, handle func(w dns.ResponseWriter, q *dns.Msg)) *testServer {
	t.Helper()
	if handle == nil {
		handle = func(w dns.ResponseWriter, q *dns.Msg) { w.WriteMsg(answer(q)) }
	}
	pc, ln := listenPair(t)
	s := &testServer{addr: pc.LocalAddr().String(), handle: handle,
		udp: map[int]*seen{}, tcp: map[int]*seen{}, names: map[string]int{}}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		now := time.Now()
		s.mu.Lock()
		ports, udp := s.udp, true
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			ports, udp = s.tcp, false
			s.tcpQ++
		} else {
			s.udpQ++
		}
		var port int
		switch a := w.RemoteAddr().(type) {
		case *net.UDPAddr:
			port = a.Port
		case *net.TCPAddr:
			port = a.Port
		}
		p := ports[port]
		if p == nil {
			p = &seen{first: now}
			ports[port] = p
		}
		p.last = now
		p.queries++
		if udp {
			s.ids = append(s.ids, q.Id)
		}
		if len(q.Question) == 1 {
			s.names[q.Question[0].Name]++
		}
		s.mu.Unlock()
		handle(w, q)
	})
	us := &dns.Server{PacketConn: pc, Handler: h}
	ts := &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	us.NotifyStartedFunc = func() { started <- struct{}{} }
	ts.NotifyStartedFunc = func() { started <- struct{}{} }
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	<-started
	<-started
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() })
	return s
}

// listenPair listens on one loopback port, UDP and TCP.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	return rawserver.ListenPair(t)
}

// counts returns the distinct UDP and TCP client ports seen so far.
func (s *testServer) counts() (udpPorts, tcpPorts, udpQ, tcpQ int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.udp), len(s.tcp), s.udpQ, s.tcpQ
}

// answer is the reply to q: one A record, 192.0.2.1.
func answer(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN A 192.0.2.1")
	r.Answer = append(r.Answer, rr)
	return r
}

func query(name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	return m
}

// wantAnswer checks that r is the server's answer for name.
func wantAnswer(t testing.TB, r *dns.Msg, err error, name string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(r.Question) != 1 || r.Question[0].Name != name || len(r.Answer) != 1 {
		t.Fatalf("%s: reply %v", name, r)
	}
	if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != "192.0.2.1" {
		t.Fatalf("%s: answer %v, want the server's 192.0.2.1", name, r.Answer[0])
	}
}

func wantKind(t testing.TB, r *dns.Msg, err error, kind Kind) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || r != nil {
		t.Fatalf("got %v, %v; want a *wire.Error", r, err)
	}
	if e.Kind != kind {
		t.Fatalf("kind %d (%v), want %d", e.Kind, err, kind)
	}
	return e
}

// TestPoolReuse: sequential and concurrent queries use no more sockets
// than the pool holds, as the server sees them (distinct source ports).
func TestPoolReuse(t *testing.T) {
	leakcheck.Check(t)
	t.Run("sequential", func(t *testing.T) {
		srv := newTestServer(t, nil)
		p := &Pool{}
		defer p.CloseIdle()
		for i := range 50 {
			name := "q" + strconv.Itoa(i) + ".test."
			r, err := p.Exchange(context.Background(), srv.addr, query(name), time.Second)
			wantAnswer(t, r, err, name)
		}
		ports, _, n, _ := srv.counts()
		if ports != 1 || n != 50 {
			t.Errorf("50 queries from %d ports (%d seen), want 1", ports, n)
		}
		if s := p.Stats(); s.UDPOpened != 1 || s.Reused != 49 || s.IdleUDP != 1 {
			t.Errorf("stats %+v, want 1 socket opened, 49 reuses, 1 idle", s)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		const workers, each = 8, 40
		srv := newTestServer(t, nil)
		p := &Pool{MaxIdle: workers, MaxUses: 1 << 20, MaxAge: time.Hour}
		defer p.CloseIdle()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					name := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i) + ".test."
					r, err := p.Exchange(context.Background(), srv.addr, query(name), 2*time.Second)
					wantAnswer(t, r, err, name)
				}
			})
		}
		wg.Wait()
		ports, _, n, _ := srv.counts()
		if ports > workers || n != workers*each {
			t.Errorf("%d queries from %d ports, want at most %d", n, ports, workers)
		}
		if s := p.Stats(); s.UDPOpened > workers {
			t.Errorf("%d sockets opened, want at most %d", s.UDPOpened, workers)
		}
	})
}

// TestPoolRotation: a socket serves MaxUses queries, and none after
// MaxAge; the next query goes out from a new port.
func TestPoolRotation(t *testing.T) {
	leakcheck.Check(t)
	t.Run("uses", func(t *testing.T) {
		srv := newTestServer(t, nil)
		p := &Pool{MaxUses: 10}
		defer p.CloseIdle()
		for i := range 100 {
			name := "q" + strconv.Itoa(i) + ".test."
			r, err := p.Exchange(context.Background(), srv.addr, query(name), time.Second)
			wantAnswer(t, r, err, name)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		// Ten sockets of ten queries each. The kernel may give a new
		// socket the port of one closed before it (rarely, but seen):
		// a port then carries a multiple of ten queries.
		total := 0
		for port, s := range srv.udp {
			total += s.queries
			if s.queries%10 != 0 {
				t.Errorf("port %d sent %d queries, want a multiple of 10", port, s.queries)
			}
		}
		if total != 100 || len(srv.udp) < 8 {
			t.Errorf("%d queries from %d ports, want 100 from 10", total, len(srv.udp))
		}
	})
	t.Run("age", func(t *testing.T) {
		const age = 200 * time.Millisecond
		srv := newTestServer(t, nil)
		p := &Pool{MaxAge: age}
		defer p.CloseIdle()
		start := time.Now()
		for i := 0; time.Since(start) < 5*age; i++ {
			name := "q" + strconv.Itoa(i) + ".test."
			r, err := p.Exchange(context.Background(), srv.addr, query(name), time.Second)
			wantAnswer(t, r, err, name)
			time.Sleep(age / 10)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.udp) < 3 {
			t.Errorf("%d ports over %v with MaxAge %v", len(srv.udp), time.Since(start), age)
		}
		for port, s := range srv.udp {
			// The server's clock: the socket was opened before its
			// first query arrived, and none is sent from it after age
			// (give or take the scheduling of the sender and server).
			if d := s.last.Sub(s.first); d >= age+age/2 {
				t.Errorf("port %d used for %v, MaxAge %v", port, d, age)
			}
		}
	})
}

// TestPoolIDs: every query has a new ID, unpredictable over 16 bits: a
// thousand queries over one socket repeat few IDs and follow no sequence.
func TestPoolIDs(t *testing.T) {
	leakcheck.Check(t)
	srv := newTestServer(t, nil)
	p := &Pool{MaxUses: 1 << 20, MaxAge: time.Hour}
	defer p.CloseIdle()
	m := query("a.test.")
	for range 1000 {
		r, err := p.Exchange(context.Background(), srv.addr, m, time.Second)
		wantAnswer(t, r, err, "a.test.")
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	distinct := map[uint16]bool{}
	steps := map[uint16]bool{}
	for i, id := range srv.ids {
		distinct[id] = true
		if i > 0 {
			steps[id-srv.ids[i-1]] = true
		}
	}
	// 1,000 draws of 16 bits: about 8 collisions expected.
	if len(distinct) < 970 || len(steps) < 970 {
		t.Errorf("%d distinct IDs and %d distinct steps in %d queries", len(distinct), len(steps), len(srv.ids))
	}
	if len(srv.udp) != 1 {
		t.Errorf("%d ports", len(srv.udp))
	}
}

// TestPoolSpoofed: forged answers are ignored, whether they come from
// another source (the connected socket never sees them) or from the
// server's address with a wrong ID or question; a socket that saw one is
// not reused, and a flood of them sends the query over TCP (RFC 5452
// 9.3) instead of giving a forger unbounded guesses.
func TestPoolSpoofed(t *testing.T) {
	leakcheck.Check(t)
	forged := func(q *dns.Msg, edit func(r *dns.Msg)) []byte {
		r := new(dns.Msg)
		r.SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN A 198.51.100.66")
		r.Answer = append(r.Answer, rr)
		edit(r)
		b, err := r.Pack()
		if err != nil {
			panic(err)
		}
		return b
	}
	same := func(*dns.Msg) {}
	wrongID := func(r *dns.Msg) { r.Id ^= 0x0101 }
	wrongName := func(r *dns.Msg) { r.Question[0].Name = "evil.test." }
	wrongType := func(r *dns.Msg) { r.Question[0].Qtype = dns.TypeAAAA }

	t.Run("from another source", func(t *testing.T) {
		// Right ID and question, sent to the client's port from another
		// port of the same host, before the real reply.
		spoofer, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer spoofer.Close()
		srv := newTestServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
			for _, edit := range []func(*dns.Msg){same, wrongID, wrongName} {
				for range 50 {
					spoofer.WriteTo(forged(q, edit), w.RemoteAddr())
				}
			}
			time.Sleep(20 * time.Millisecond) // the forgeries arrive first
			w.WriteMsg(answer(q))
		})
		p := &Pool{}
		defer p.CloseIdle()
		for i := range 3 {
			name := "q" + strconv.Itoa(i) + ".test."
			r, err := p.Exchange(context.Background(), srv.addr, query(name), 2*time.Second)
			wantAnswer(t, r, err, name)
		}
		if s := p.Stats(); s.Strays != 0 || s.UDPOpened != 1 {
			t.Errorf("stats %+v: the kernel should have dropped every forgery, and the socket been reused", s)
		}
	})
	t.Run("from the server's address", func(t *testing.T) {
		srv := newTestServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
			for _, edit := range []func(*dns.Msg){wrongID, wrongName, wrongType} {
				for range 20 {
					w.Write(forged(q, edit))
				}
			}
			w.WriteMsg(answer(q))
		})
		p := &Pool{}
		defer p.CloseIdle()
		for i := range 3 {
			name := "q" + strconv.Itoa(i) + ".test."
			r, err := p.Exchange(context.Background(), srv.addr, query(name), 2*time.Second)
			wantAnswer(t, r, err, name)
		}
		s := p.Stats()
		if s.Strays != 3*60 {
			t.Errorf("%d strays counted, want %d", s.Strays, 3*60)
		}
		// Each socket saw strays: none was reused.
		if ports, _, _, _ := srv.counts(); ports != 3 || s.UDPOpened != 3 || s.Reused != 0 || s.IdleUDP != 0 {
			t.Errorf("stats %+v, %d ports: a socket that saw strays was kept", s, ports)
		}
	})
	t.Run("flood then TCP", func(t *testing.T) {
		// More strays than maxStrays, every one a forgery, and no real
		// reply over UDP: the query is asked again over TCP.
		var overTCP atomic.Bool
		srv := newTestServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
			if _, udp := w.RemoteAddr().(*net.UDPAddr); !udp {
				overTCP.Store(true)
				w.WriteMsg(answer(q))
				return
			}
			// Until the query comes over TCP, paced so that the
			// client's receive buffer does not overflow.
			for i, start := 0, time.Now(); !overTCP.Load() && time.Since(start) < 5*time.Second; i++ {
				edit := wrongName
				if i%2 == 0 {
					edit = func(r *dns.Msg) { r.Id += uint16(i) + 1 } // every ID but the right one
				}
				w.Write(forged(q, edit))
				if i%32 == 31 {
					time.Sleep(time.Millisecond)
				}
			}
		})
		p := &Pool{}
		defer p.CloseIdle()
		r, err := p.Exchange(context.Background(), srv.addr, query("a.test."), 5*time.Second)
		wantAnswer(t, r, err, "a.test.")
		s := p.Stats()
		if _, _, _, tcpQ := srv.counts(); tcpQ != 1 || s.Abandoned != 1 || s.Strays != maxStrays {
			t.Errorf("stats %+v, %d TCP queries: want the UDP leg abandoned after %d strays", s, tcpQ, maxStrays)
		}
	})
	t.Run("only forgeries until the deadline", func(t *testing.T) {
		srv := newTestServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
			for range 10 {
				w.Write(forged(q, wrongName))
			}
		})
		p := &Pool{}
		defer p.CloseIdle()
		start := time.Now()
		r, err := p.Exchange(context.Background(), srv.addr, query("a.test."), 200*time.Millisecond)
		e := wantKind(t, r, err, KindMalformed)
		if !errors.Is(e, errMismatch) {
			t.Errorf("%v does not wrap the last mismatch", err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
			t.Errorf("ended after %v, want the deadline (200ms)", d)
		}
	})
}

// TestPoolConcurrent: many goroutines share a Pool (run under -race);
// every reply is the one to its own question, though the server answers
// out of order, and cancelled queries leave no socket in a bad state.
func TestPoolConcurrent(t *testing.T) {
	leakcheck.Check(t)
	var n atomic.Int64
	srv := newTestServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		if n.Add(1)%3 == 0 {
			time.Sleep(time.Duration(n.Load()%7) * time.Millisecond)
		}
		if q.Question[0].Name[0] == 'm' {
			return // mute: the query times out or is cancelled
		}
		w.WriteMsg(answer(q))
	})
	p := &Pool{MaxIdle: 4, MaxUses: 16}
	defer p.CloseIdle()
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 30 {
				name := "q" + strconv.Itoa(g) + "-" + strconv.Itoa(i) + ".test."
				ctx := context.Background()
				if i%10 == 9 {
					name = "m" + name
					c, cancel := context.WithCancel(ctx)
					time.AfterFunc(time.Duration(i)*time.Millisecond, cancel)
					ctx = c
				}
				r, err := p.Exchange(ctx, srv.addr, query(name), 2*time.Second)
				if name[0] == 'm' {
					wantKind(t, r, err, KindTimeout)
					continue
				}
				wantAnswer(t, r, err, name)
			}
		})
	}
	wg.Wait()
	if s := p.Stats(); s.IdleUDP > 4 || s.Reused == 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestPoolCancel: the end of the context aborts an exchange at once, over
// UDP and over TCP, and its socket is not reused.
func TestPoolCancel(t *testing.T) {
	leakcheck.Check(t)
	for _, tcp := range []bool{false, true} {
		t.Run("tcp="+strconv.FormatBool(tcp), func(t *testing.T) {
			srv := newTestServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
				if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && tcp {
					r := new(dns.Msg)
					r.SetReply(q)
					r.Truncated = true
					w.WriteMsg(r)
				}
				// otherwise silent
			})
			p := &Pool{}
			defer p.CloseIdle()
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			start := time.Now()
			r, err := p.Exchange(ctx, srv.addr, query("a.test."), time.Minute)
			d := time.Since(start)
			wantKind(t, r, err, KindTimeout)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%v does not wrap context.Canceled", err)
			}
			if d > time.Second {
				t.Errorf("cancellation took %v", d-50*time.Millisecond)
			}
			// Over TCP, the UDP socket that brought the TC answer
			// ended its query cleanly and is kept.
			if s := p.Stats(); s.IdleTCP != 0 || s.IdleUDP != 0 && !tcp {
				t.Errorf("stats %+v: the cancelled socket was kept", s)
			}
		})
	}
	t.Run("cancelled before", func(t *testing.T) {
		srv := newTestServer(t, nil)
		p := &Pool{}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r, err := p.Exchange(ctx, srv.addr, query("a.test."), time.Minute)
		wantKind(t, r, err, KindTimeout)
		if _, _, n, _ := srv.counts(); n != 0 || p.Stats().UDPOpened != 0 {
			t.Errorf("a query was sent")
		}
	})
	t.Run("a pooled socket after a cancelled query", func(t *testing.T) {
		// Cancel after a reply: the socket goes back and serves the next
		// query with its own deadline.
		srv := newTestServer(t, nil)
		p := &Pool{}
		defer p.CloseIdle()
		ctx, cancel := context.WithCancel(context.Background())
		r, err := p.Exchange(ctx, srv.addr, query("a.test."), time.Second)
		wantAnswer(t, r, err, "a.test.")
		cancel()
		r, err = p.Exchange(context.Background(), srv.addr, query("b.test."), time.Second)
		wantAnswer(t, r, err, "b.test.")
		if s := p.Stats(); s.UDPOpened != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

// truncating answers TC over UDP and in full over TCP.
func truncating(w dns.ResponseWriter, q *dns.Msg) {
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		r := new(dns.Msg)
		r.SetReply(q)
		r.Truncated = true
		w.WriteMsg(r)
		return
	}
	w.WriteMsg(answer(q))
}

// TestPoolTCPReuse: retries of truncated answers reuse one TCP
// connection (RFC 7766 6.2.1); a connection the server closed meanwhile
// is replaced without failing the query.
func TestPoolTCPReuse(t *testing.T) {
	leakcheck.Check(t)
	t.Run("kept open", func(t *testing.T) {
		srv := newTestServer(t, truncating)
		p := &Pool{}
		defer p.CloseIdle()
		for i := range 10 {
			name := "q" + strconv.Itoa(i) + ".test."
			r, err := p.Exchange(context.Background(), srv.addr, query(name), time.Second)
			wantAnswer(t, r, err, name)
		}
		_, tcpPorts, _, tcpQ := srv.counts()
		if s := p.Stats(); tcpPorts != 1 || tcpQ != 10 || s.TCPOpened != 1 || s.IdleTCP != 1 {
			t.Errorf("stats %+v; %d TCP queries from %d ports, want one connection", s, tcpQ, tcpPorts)
		}
	})
	t.Run("closed by the server", func(t *testing.T) {
		// One query per connection, then the server closes it.
		var accepted atomic.Int64
		addr := truncatingWithTCP(t, func(c net.Conn) {
			accepted.Add(1)
			co := &dns.Conn{Conn: c}
			if q, err := co.ReadMsg(); err == nil {
				co.WriteMsg(answer(q))
			}
		})
		p := &Pool{}
		defer p.CloseIdle()
		for i := range 10 {
			name := "q" + strconv.Itoa(i) + ".test."
			r, err := p.Exchange(context.Background(), addr, query(name), 2*time.Second)
			wantAnswer(t, r, err, name)
			time.Sleep(5 * time.Millisecond) // let the server's FIN arrive, or not
		}
		if s := p.Stats(); accepted.Load() != 10 || s.TCPOpened != 10 || s.Reused < 9 {
			t.Errorf("stats %+v, %d connections accepted; want every reused connection found closed and replaced", s, accepted.Load())
		}
	})
	t.Run("a message left on the connection", func(t *testing.T) {
		// After each reply the server sends another message, with
		// another ID: the next query on that connection must not take
		// it for its reply, nor fail because of it.
		var accepted atomic.Int64
		addr := truncatingWithTCP(t, func(c net.Conn) {
			accepted.Add(1)
			co := &dns.Conn{Conn: c}
			for {
				q, err := co.ReadMsg()
				if err != nil {
					return
				}
				co.WriteMsg(answer(q))
				extra := answer(q)
				extra.Id++
				co.WriteMsg(extra)
			}
		})
		p := &Pool{}
		defer p.CloseIdle()
		for i := range 5 {
			name := "q" + strconv.Itoa(i) + ".test."
			r, err := p.Exchange(context.Background(), addr, query(name), 2*time.Second)
			wantAnswer(t, r, err, name)
		}
		if s := p.Stats(); accepted.Load() != 5 || s.TCPOpened != 5 {
			t.Errorf("stats %+v, %d connections accepted; want a new connection after each stale one", s, accepted.Load())
		}
	})
}

// truncatingWithTCP starts a server that answers TC over UDP (a miekg
// server) and serves each TCP connection on the same port with serve;
// it returns the address. Everything stops when the test ends.
func truncatingWithTCP(t *testing.T, serve func(c net.Conn)) string {
	pc, ln := listenPair(t)
	us := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(truncating)}
	go us.ActivateAndServe()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		us.Shutdown()
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return pc.LocalAddr().String()
}

// TestPoolIdleClose: sockets unused for IdleTimeout are closed by the
// Pool itself (the TCP server sees the connection end), leaving no
// goroutine and no socket behind.
func TestPoolIdleClose(t *testing.T) {
	leakcheck.Check(t)
	const idle = 100 * time.Millisecond
	srv := newTestServer(t, truncating)
	p := &Pool{IdleTimeout: idle}
	for i := range 3 {
		name := "q" + strconv.Itoa(i) + ".test."
		r, err := p.Exchange(context.Background(), srv.addr, query(name), time.Second)
		wantAnswer(t, r, err, name)
	}
	if s := p.Stats(); s.IdleUDP != 1 || s.IdleTCP != 1 {
		t.Fatalf("stats %+v, want one idle socket of each", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := p.Stats()
		if s.IdleUDP == 0 && s.IdleTCP == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v after %v, IdleTimeout %v", s, 5*time.Second, idle)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	armed := p.armed
	p.mu.Unlock()
	if armed {
		t.Errorf("the sweep is still armed with nothing idle")
	}
	// And the Pool works again afterwards.
	r, err := p.Exchange(context.Background(), srv.addr, query("again.test."), time.Second)
	wantAnswer(t, r, err, "again.test.")
	p.CloseIdle()
	if s := p.Stats(); s.IdleUDP != 0 || s.IdleTCP != 0 {
		t.Errorf("stats %+v after CloseIdle", s)
	}
}

// TestPoolRetransmit: a query whose datagram is lost is sent again on
// the same socket with the same ID, after a third of the timeout, and
// answered within it (RFC 1123 6.1.3.3); a silent server gets three
// copies and a timeout; a timeout too short to divide gets one copy; the
// socket of a retransmitted query is not reused (a late reply to another
// copy must not meet a later query); the end of the context still ends
// a retransmitting query at once.
func TestPoolRetransmit(t *testing.T) {
	leakcheck.Check(t)
	t.Run("first copy lost", func(t *testing.T) {
		var copies atomic.Int32
		srv := newTestServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
			if copies.Add(1) == 1 {
				return // lost
			}
			w.WriteMsg(answer(q))
		})
		p := &Pool{}
		defer p.CloseIdle()
		start := time.Now()
		r, err := p.Exchange(context.Background(), srv.addr, query("lost.test."), 900*time.Millisecond)
		wantAnswer(t, r, err, "lost.test.")
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("answered after %v: the copy was sent before a third of the timeout", d)
		}
		srv.mu.Lock()
		ids, ports := srv.ids, len(srv.udp)
		srv.mu.Unlock()
		if len(ids) != 2 || ids[0] != ids[1] || ports != 1 {
			t.Errorf("server saw IDs %v from %d ports, want two copies of one query from one socket", ids, ports)
		}
		if s := p.Stats(); s.Retransmits != 1 || s.IdleUDP != 0 {
			t.Errorf("stats %+v, want 1 retransmit and the socket closed", s)
		}
	})
	t.Run("silent server", func(t *testing.T) {
		srv := newTestServer(t, func(dns.ResponseWriter, *dns.Msg) {})
		p := &Pool{}
		defer p.CloseIdle()
		r, err := p.Exchange(context.Background(), srv.addr, query("silent.test."), 900*time.Millisecond)
		wantKind(t, r, err, KindTimeout)
		time.Sleep(50 * time.Millisecond) // the last copy's arrival
		if _, _, n, _ := srv.counts(); n != maxRetransmits+1 {
			t.Errorf("%d copies sent, want %d", n, maxRetransmits+1)
		}
	})
	t.Run("short timeout", func(t *testing.T) {
		srv := newTestServer(t, func(dns.ResponseWriter, *dns.Msg) {})
		p := &Pool{}
		defer p.CloseIdle()
		r, err := p.Exchange(context.Background(), srv.addr, query("short.test."), 3*minRetransmitInterval-time.Millisecond)
		wantKind(t, r, err, KindTimeout)
		time.Sleep(50 * time.Millisecond)
		if _, _, n, _ := srv.counts(); n != 1 {
			t.Errorf("%d copies sent with a timeout below 3 intervals, want 1", n)
		}
	})
	t.Run("cancelled while retransmitting", func(t *testing.T) {
		srv := newTestServer(t, func(dns.ResponseWriter, *dns.Msg) {})
		p := &Pool{}
		defer p.CloseIdle()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(1200*time.Millisecond, cancel) // after the first copy again
		start := time.Now()
		r, err := p.Exchange(ctx, srv.addr, query("cancel.test."), 3*time.Second)
		wantKind(t, r, err, KindTimeout)
		if d := time.Since(start); d > 1800*time.Millisecond {
			t.Errorf("the exchange ended %v after it started, %v after its context", d, d-1200*time.Millisecond)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want the context's", err)
		}
	})
}
