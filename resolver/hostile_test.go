package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/internal/rawserver"
	"github.com/smtptls/smtptls/resolver/internal/wire"
)

// Hostile DNS peers: servers on real loopback sockets that send what no
// well-behaved server sends. Every lookup must end within its time bound,
// with an answer that holds only records of the chain it asked for, or
// with a *Error of a known Kind; never a panic, never a goroutine left
// behind (checked by leakcheck around each test, which is why these tests
// are not parallel at the top level).

// rawServer is a DNS server on one loopback port (UDP and TCP) whose
// handlers write raw bytes, so that tests can send malformed, mismatched
// or endless replies. Queries are parsed for the handlers' convenience.
type rawServer struct {
	addr    string
	pc      net.PacketConn
	ln      net.Listener
	udp     func(send func([]byte), q *dns.Msg)
	tcp     func(c net.Conn, q *dns.Msg)
	queries atomic.Int64
	tcpQ    atomic.Int64

	wg     sync.WaitGroup // the UDP goroutines
	tcpSrv *rawserver.Server
	done   chan struct{}
}

// newRawServer starts a server; tcp may be nil (TCP then answers what
// udp would, framed). It stops when the test ends, waiting for its
// goroutines.
func newRawServer(t testing.TB, udp func(send func([]byte), q *dns.Msg), tcp func(c net.Conn, q *dns.Msg)) *rawServer {
	t.Helper()
	s := newIdleRawServer(t)
	s.start(udp, tcp)
	return s
}

// newIdleRawServer listens but does not serve until start, so that
// handlers can refer to the server.
func newIdleRawServer(t testing.TB) *rawServer {
	t.Helper()
	pc, ln := rawserver.ListenPair(t)
	s := &rawServer{addr: pc.LocalAddr().String(), pc: pc, ln: ln, tcpSrv: rawserver.NewOn(t, ln), done: make(chan struct{})}
	t.Cleanup(s.close)
	return s
}

func (s *rawServer) start(udp func(send func([]byte), q *dns.Msg), tcp func(c net.Conn, q *dns.Msg)) {
	s.udp, s.tcp = udp, tcp
	if s.tcp == nil && udp != nil {
		s.tcp = func(c net.Conn, q *dns.Msg) {
			udp(func(b []byte) { writeFramed(c, b) }, q)
		}
	}
	s.wg.Add(1)
	go s.serveUDP()
	s.tcpSrv.Serve(s.serveTCP)
}

func (s *rawServer) close() {
	close(s.done)
	s.pc.Close()
	s.tcpSrv.Close()
	s.wg.Wait()
}

func (s *rawServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
			continue
		}
		s.queries.Add(1)
		if s.udp == nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.udp(func(b []byte) { s.pc.WriteTo(b, from) }, q)
		}()
	}
}

func (s *rawServer) serveTCP(c net.Conn) {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return
	}
	q := new(dns.Msg)
	if q.Unpack(b) != nil || len(q.Question) != 1 {
		return
	}
	s.queries.Add(1)
	s.tcpQ.Add(1)
	if s.tcp != nil {
		s.tcp(c, q)
	}
}

// sleep waits d or until the server stops.
func (s *rawServer) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-s.done:
		return false
	}
}

func writeFramed(c net.Conn, b []byte) {
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(len(b)))
	c.Write(append(l[:], b...))
}

func pack(m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// valid is the well-formed answer a.test. A 192.0.2.1 to q.
func valid(q *dns.Msg) []byte {
	return pack(reply(q, dns.RcodeSuccess, false, q.Question[0].Name+" 300 IN A 192.0.2.1"))
}

// hostileHeader builds a response header for q with the given section
// counts, and the question, as raw bytes: the start of a hand-crafted
// message.
func hostileHeader(q *dns.Msg, an, ns uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], q.Id)
	binary.BigEndian.PutUint16(b[2:], 0x8180) // QR, RD, RA, NOERROR
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint16(b[6:], an)
	binary.BigEndian.PutUint16(b[8:], ns)
	qname := make([]byte, 256)
	n, err := dns.PackDomainName(q.Question[0].Name, qname, 0, nil, false)
	if err != nil {
		panic(err)
	}
	b = append(b, qname[:n]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, q.Question[0].Qtype), dns.ClassINET)
}

// rrHead appends a resource record's type, class, TTL and RDLENGTH to b
// (after an owner name the caller wrote).
func rrHead(b []byte, rrtype uint16, rdlen uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, rrtype)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	b = binary.BigEndian.AppendUint32(b, 300)
	return binary.BigEndian.AppendUint16(b, rdlen)
}

// wantErr checks that err is a *Error of one of kinds.
func wantErr(t *testing.T, a *Answer, err error, kinds ...Kind) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got answer %+v, error %v (%T); want a *resolver.Error of kind %v", a, err, err, kinds)
	}
	if a != nil {
		t.Errorf("an answer came with the error")
	}
	for _, k := range kinds {
		if e.Kind == k {
			return e
		}
	}
	t.Fatalf("kind %v (%v), want one of %v", e.Kind, err, kinds)
	return nil
}

// wantA checks that a holds exactly the A records want, owned by
// a.Target(), and nothing else.
func wantA(t *testing.T, a *Answer, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("lookup failed: %v", err)
	}
	var got []string
	for _, rr := range a.Records {
		ar, ok := rr.(*dns.A)
		if !ok || ar.Hdr.Name != a.Target() || ar.Hdr.Class != dns.ClassINET {
			t.Fatalf("stray record %v in the answer for %s", rr, a.Target())
		}
		got = append(got, ar.A.String())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("records %v, want %v", got, want)
	}
}

// bounded runs f and fails when it takes longer than limit.
func bounded(t *testing.T, limit time.Duration, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if d := time.Since(start); d > limit {
		t.Errorf("took %v, bound %v", d, limit)
	}
}

const hostileTimeout = 300 * time.Millisecond

// TestHostileMalformed: replies that do not parse or break the protocol.
// Over UDP a bad datagram is ignored (it may be an off-path spoofer's) and
// the exchange waits for the real reply until its deadline; over TCP the
// stream is ours and a bad reply ends the exchange at once.
func TestHostileMalformed(t *testing.T) {
	leakcheck.Check(t)
	half := func(b []byte) []byte { return b[:len(b)/2] }
	selfPointer := func(q *dns.Msg) []byte {
		// The answer's owner name is a compression pointer to itself.
		b := hostileHeader(q, 1, 0)
		off := len(b)
		b = append(b, 0xC0|byte(off>>8), byte(off))
		return append(rrHead(b, dns.TypeA, 4), 192, 0, 2, 66)
	}
	pointerPair := func(q *dns.Msg) []byte {
		// Two pointers pointing at each other: a loop of length two.
		b := hostileHeader(q, 1, 0)
		off := len(b)
		b = append(b, 0xC0|byte((off+2)>>8), byte(off+2), 0xC0|byte(off>>8), byte(off))
		return append(rrHead(b, dns.TypeA, 4), 192, 0, 2, 66)
	}
	forwardPointer := func(q *dns.Msg) []byte {
		// A pointer beyond the end of the message.
		b := hostileHeader(q, 1, 0)
		b = append(b, 0xFF, 0xFF)
		return append(rrHead(b, dns.TypeA, 4), 192, 0, 2, 66)
	}
	longChain := func(q *dns.Msg) []byte {
		// 200 one-label names, each pointing to the previous one, hidden
		// in the opaque RDATA of a first record; the second record's
		// owner points at the last: more pointers and octets than any
		// name may have (RFC 1035 2.3.4).
		b := hostileHeader(q, 2, 0)
		b = append(b, 0xC0, 12)
		var chain []byte
		base := len(b) + 10
		prev := -1
		for range 200 {
			at := base + len(chain)
			if prev < 0 {
				chain = append(chain, 1, 'x', 0)
			} else {
				chain = append(chain, 1, 'x', 0xC0|byte(prev>>8), byte(prev))
			}
			prev = at
		}
		b = append(rrHead(b, 65280, uint16(len(chain))), chain...)
		b = append(b, 0xC0|byte(prev>>8), byte(prev))
		return append(rrHead(b, dns.TypeA, 4), 192, 0, 2, 66)
	}
	rdlenOverrun := func(q *dns.Msg) []byte {
		b := hostileHeader(q, 1, 0)
		b = append(b, 0xC0, 12)
		return append(rrHead(b, dns.TypeA, 60000), 192, 0, 2, 66)
	}
	countsLie := func(q *dns.Msg) []byte {
		b := pack(reply(q, dns.RcodeSuccess, false, "a.test. 300 IN A 192.0.2.66"))
		binary.BigEndian.PutUint16(b[6:], 65535) // ANCOUNT
		return b
	}
	headerOnly := func(q *dns.Msg) []byte { return valid(q)[:12] }

	bad := []struct {
		name string
		msg  func(q *dns.Msg) []byte
	}{
		{"half a message", func(q *dns.Msg) []byte { return half(valid(q)) }},
		{"header only", headerOnly},
		{"one byte", func(*dns.Msg) []byte { return []byte{0} }},
		{"compression pointer to itself", selfPointer},
		{"compression pointer loop of two", pointerPair},
		{"compression pointer past the end", forwardPointer},
		{"200 chained compression pointers", longChain},
		{"rdlength past the end", rdlenOverrun},
	}
	t.Run("section counts larger than the message", func(t *testing.T) {
		// miekg/dns stops at the end of the message when the counts lie,
		// which is harmless: whatever it keeps was in the reply.
		t.Parallel()
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) { send(countsLie(q)) }, nil)
		a, err := (&Stub{Servers: []string{srv.addr}, Timeout: hostileTimeout}).Lookup(context.Background(), "a.test", dns.TypeA)
		if err != nil {
			wantErr(t, a, err, KindMalformed)
			return
		}
		wantA(t, a, err, "192.0.2.66")
	})
	for _, tc := range bad {
		t.Run("udp/"+tc.name+" then silence", func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(send func([]byte), q *dns.Msg) { send(tc.msg(q)) }, nil)
			s := &Stub{Servers: []string{srv.addr}, Timeout: hostileTimeout}
			bounded(t, 3*time.Second, func() {
				a, err := s.Lookup(context.Background(), "a.test", dns.TypeA)
				wantErr(t, a, err, KindMalformed)
			})
		})
		t.Run("udp/"+tc.name+" then a valid reply", func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(send func([]byte), q *dns.Msg) {
				send(tc.msg(q))
				send(valid(q))
			}, nil)
			a, err := (&Stub{Servers: []string{srv.addr}, Timeout: 5 * time.Second}).Lookup(context.Background(), "a.test", dns.TypeA)
			wantA(t, a, err, "192.0.2.1")
		})
		t.Run("tcp/"+tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(send func([]byte), q *dns.Msg) { send(truncatedReply(q)) },
				func(c net.Conn, q *dns.Msg) { writeFramed(c, tc.msg(q)) })
			s := &Stub{Servers: []string{srv.addr}, Timeout: 5 * time.Second}
			bounded(t, 3*time.Second, func() {
				a, err := s.Lookup(context.Background(), "a.test", dns.TypeA)
				wantErr(t, a, err, KindMalformed, KindNetwork)
			})
		})
	}
}

func truncatedReply(q *dns.Msg) []byte {
	m := reply(q, dns.RcodeSuccess, false)
	m.Truncated = true
	return pack(m)
}

// TestHostileMismatched: replies for another query. RFC 5452 9.1: ID,
// question and source must match; QR must be set.
func TestHostileMismatched(t *testing.T) {
	leakcheck.Check(t)
	alter := []struct {
		name string
		edit func(q, r *dns.Msg)
	}{
		{"wrong id", func(q, r *dns.Msg) { r.Id = q.Id ^ 0x5a5a }},
		{"other name", func(q, r *dns.Msg) { r.Question[0].Name = "evil.test." }},
		{"other type", func(q, r *dns.Msg) { r.Question[0].Qtype = dns.TypeAAAA }},
		{"other class", func(q, r *dns.Msg) { r.Question[0].Qclass = dns.ClassCHAOS }},
		{"no question", func(q, r *dns.Msg) { r.Question = nil }},
		{"two questions", func(q, r *dns.Msg) { r.Question = append(r.Question, r.Question[0]) }},
		{"not a response", func(q, r *dns.Msg) { r.Response = false }},
		// The opcode check came with the one exchange (it was the
		// validator's): a NOTIFY or UPDATE reply answers no query of ours.
		{"other opcode", func(q, r *dns.Msg) { r.Opcode = dns.OpcodeNotify }},
	}
	spoof := func(q *dns.Msg, edit func(q, r *dns.Msg)) []byte {
		r := reply(q, dns.RcodeSuccess, true, q.Question[0].Name+" 300 IN A 198.51.100.66")
		edit(q, r)
		return pack(r)
	}
	for _, tc := range alter {
		t.Run("udp/"+tc.name+" flood then the real reply", func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(send func([]byte), q *dns.Msg) {
				for range 200 {
					send(spoof(q, tc.edit))
				}
				send(valid(q))
			}, nil)
			a, err := (&Stub{Servers: []string{srv.addr}, Timeout: 5 * time.Second}).Lookup(context.Background(), "a.test", dns.TypeA)
			wantA(t, a, err, "192.0.2.1")
		})
		t.Run("udp/"+tc.name+" endless flood", func(t *testing.T) {
			t.Parallel()
			srv := newIdleRawServer(t)
			srv.start(func(send func([]byte), q *dns.Msg) {
				b := spoof(q, tc.edit)
				for start := time.Now(); time.Since(start) < 2*time.Second && srv.sleep(100*time.Microsecond); {
					send(b)
				}
			}, nil)
			// The flood's 256 strays send the query to TCP (RFC 5452
			// 9.3), where the first spoof ends it: both legs share the
			// deadline, which must leave the TCP leg time on a loaded
			// machine (at 300 ms, a slow flood left it none).
			s := &Stub{Servers: []string{srv.addr}, Timeout: time.Second}
			bounded(t, 3*time.Second, func() {
				a, err := s.Lookup(context.Background(), "a.test", dns.TypeA)
				wantErr(t, a, err, KindMalformed)
			})
		})
		t.Run("tcp/"+tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(send func([]byte), q *dns.Msg) { send(truncatedReply(q)) },
				func(c net.Conn, q *dns.Msg) { writeFramed(c, spoof(q, tc.edit)) })
			a, err := (&Stub{Servers: []string{srv.addr}, Timeout: 5 * time.Second}).Lookup(context.Background(), "a.test", dns.TypeA)
			wantErr(t, a, err, KindMalformed)
		})
	}
	t.Run("0x20 case of the question is accepted", func(t *testing.T) {
		t.Parallel()
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) {
			r := reply(q, dns.RcodeSuccess, false, "A.TeSt. 300 IN A 192.0.2.1")
			r.Question[0].Name = "A.TeSt."
			send(pack(r))
		}, nil)
		a, err := (&Stub{Servers: []string{srv.addr}}).Lookup(context.Background(), "a.test", dns.TypeA)
		wantA(t, a, err, "192.0.2.1")
	})
}

// TestHostileTruncation: TC over UDP must lead to TCP, and TC over TCP,
// a TCP peer that closes, or a length prefix that lies must fail.
func TestHostileTruncation(t *testing.T) {
	leakcheck.Check(t)
	tc := func(send func([]byte), q *dns.Msg) { send(truncatedReply(q)) }
	cases := []struct {
		name  string
		tcp   func(c net.Conn, q *dns.Msg)
		kinds []Kind
	}{
		{"truncated over TCP too", func(c net.Conn, q *dns.Msg) { writeFramed(c, truncatedReply(q)) }, []Kind{KindMalformed}},
		{"TCP closed without a reply", func(c net.Conn, q *dns.Msg) {}, []Kind{KindNetwork, KindMalformed}},
		{"TCP length prefix longer than the message", func(c net.Conn, q *dns.Msg) {
			b := valid(q)
			c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(b)+100)))
			c.Write(b)
		}, []Kind{KindNetwork, KindMalformed}},
		{"TCP length prefix 65535 then nothing", func(c net.Conn, q *dns.Msg) {
			c.Write([]byte{0xff, 0xff, 0, 1, 2})
		}, []Kind{KindNetwork, KindMalformed}},
		{"TCP length prefix zero", func(c net.Conn, q *dns.Msg) { c.Write([]byte{0, 0}) }, []Kind{KindNetwork, KindMalformed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, tc, c.tcp)
			bounded(t, 3*time.Second, func() {
				a, err := (&Stub{Servers: []string{srv.addr}, Timeout: 2 * time.Second}).Lookup(context.Background(), "a.test", dns.TypeA)
				wantErr(t, a, err, c.kinds...)
			})
		})
	}
	t.Run("TCP retry shares the UDP deadline", func(t *testing.T) {
		// One Timeout bounds the whole exchange with a server, TCP retry
		// included (as the validator's did); the Stub used to give the
		// TCP retry a fresh Timeout of its own.
		t.Parallel()
		srv := newIdleRawServer(t)
		srv.start(func(send func([]byte), q *dns.Msg) {
			if srv.sleep(300 * time.Millisecond) {
				send(truncatedReply(q))
			}
		}, func(c net.Conn, q *dns.Msg) {
			if srv.sleep(300 * time.Millisecond) {
				writeFramed(c, valid(q))
			}
		})
		bounded(t, 3*time.Second, func() {
			a, err := (&Stub{Servers: []string{srv.addr}, Timeout: 450 * time.Millisecond}).Lookup(context.Background(), "a.test", dns.TypeA)
			wantErr(t, a, err, KindTimeout)
		})
	})
	t.Run("TCP refused", func(t *testing.T) {
		t.Parallel()
		// A UDP-only server: the TCP port is closed.
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 512)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				q := new(dns.Msg)
				if q.Unpack(buf[:n]) == nil {
					pc.WriteTo(truncatedReply(q), from)
				}
			}
		}()
		defer func() { pc.Close(); <-done }()
		a, err := (&Stub{Servers: []string{pc.LocalAddr().String()}, Timeout: 2 * time.Second}).Lookup(context.Background(), "a.test", dns.TypeA)
		wantErr(t, a, err, KindNetwork)
	})
}

// TestHostileSize: the bounds of the one exchange (resolver/internal/wire).
// The largest replies it accepts are read whole, in bounded time; a TCP
// reply with more than wire.MaxRecords records is refused, and a UDP
// datagram longer than wire.MaxUDPSize is ignored like any garbage (an
// exchange then waits for the real reply). Both bounds were the
// validator's; the Stub used to accept 65535-byte replies with any number
// of records on both transports.
func TestHostileSize(t *testing.T) {
	leakcheck.Check(t)
	// many returns a reply to q with n A records.
	many := func(q *dns.Msg, n int) *dns.Msg {
		r := reply(q, dns.RcodeSuccess, false)
		r.Compress = true
		for i := range n {
			r.Answer = append(r.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: "a.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A:   net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)),
			})
		}
		return r
	}
	t.Run("65535-byte reply of 4094 records over TCP is refused", func(t *testing.T) {
		t.Parallel()
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) { send(truncatedReply(q)) },
			func(c net.Conn, q *dns.Msg) {
				// 24 bytes of header and question, 16 per compressed A.
				b := pack(many(q, (65535-24)/16))
				if len(b) > 65535 {
					panic(len(b))
				}
				writeFramed(c, b)
			})
		bounded(t, 5*time.Second, func() {
			a, err := (&Stub{Servers: []string{srv.addr}}).Lookup(context.Background(), "a.test", dns.TypeA)
			wantErr(t, a, err, KindMalformed)
		})
	})
	t.Run("1024 records over TCP are read whole", func(t *testing.T) {
		t.Parallel()
		n := wire.MaxRecords - 1 // and the OPT record
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) { send(truncatedReply(q)) },
			func(c net.Conn, q *dns.Msg) {
				r := many(q, n)
				r.SetEdns0(wire.EDNSSize, false)
				writeFramed(c, pack(r))
			})
		var a *Answer
		var err error
		bounded(t, 5*time.Second, func() {
			a, err = (&Stub{Servers: []string{srv.addr}}).Lookup(context.Background(), "a.test", dns.TypeA)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Records) != n {
			t.Errorf("%d records of %d", len(a.Records), n)
		}
	})
	t.Run("60 KiB TXT RRset", func(t *testing.T) {
		t.Parallel()
		chunk := strings.Repeat("x", 255)
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) { send(truncatedReply(q)) },
			func(c net.Conn, q *dns.Msg) {
				r := reply(q, dns.RcodeSuccess, false)
				txt := &dns.TXT{Hdr: dns.RR_Header{Name: "a.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}}
				for range 235 {
					txt.Txt = append(txt.Txt, chunk)
				}
				r.Answer = append(r.Answer, txt)
				writeFramed(c, pack(r))
			})
		txts, _, err := LookupTXT(context.Background(), &Stub{Servers: []string{srv.addr}}, "a.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(txts) != 1 || len(txts[0]) != 235*255 {
			t.Errorf("TXT of %d records", len(txts))
		}
	})
	t.Run("4 KiB UDP reply to a 1232-byte buffer is parsed", func(t *testing.T) {
		t.Parallel()
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) {
			b := pack(many(q, 250))
			if len(b) > wire.MaxUDPSize {
				panic(len(b))
			}
			send(b)
		}, nil)
		a, err := (&Stub{Servers: []string{srv.addr}}).Lookup(context.Background(), "a.test", dns.TypeA)
		if err != nil || len(a.Records) != 250 {
			t.Fatalf("%v, %v", a, err)
		}
	})
	oversized := func(q *dns.Msg) []byte {
		r := reply(q, dns.RcodeSuccess, false)
		for i := range 500 {
			rr, _ := dns.NewRR("a.test. 300 IN A 10.0." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255))
			r.Answer = append(r.Answer, rr)
		}
		b := pack(r)
		if len(b) <= wire.MaxUDPSize {
			panic(len(b))
		}
		return b
	}
	t.Run("8 KiB UDP reply is ignored, then a valid reply", func(t *testing.T) {
		t.Parallel()
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) {
			send(oversized(q))
			send(valid(q))
		}, nil)
		a, err := (&Stub{Servers: []string{srv.addr}}).Lookup(context.Background(), "a.test", dns.TypeA)
		wantA(t, a, err, "192.0.2.1")
	})
	t.Run("8 KiB UDP reply then silence", func(t *testing.T) {
		t.Parallel()
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) { send(oversized(q)) }, nil)
		bounded(t, 3*time.Second, func() {
			a, err := (&Stub{Servers: []string{srv.addr}, Timeout: hostileTimeout}).Lookup(context.Background(), "a.test", dns.TypeA)
			wantErr(t, a, err, KindMalformed)
		})
	})
}

// TestHostileCNAME: loops and long chains, in one reply or spread over
// several, end with KindLoop after a bounded number of queries.
func TestHostileCNAME(t *testing.T) {
	leakcheck.Check(t)
	link := func(i int) string { return "c" + strconv.Itoa(i) + ".test." }
	// chain answers a question for c<i> with the links c<i> .. c<i+per-1>
	// (per links per reply), ending at c<n> with an A record.
	chain := func(n, per int) func(send func([]byte), q *dns.Msg) {
		return func(send func([]byte), q *dns.Msg) {
			name := q.Question[0].Name
			i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "c"), ".test."))
			if err != nil {
				send(pack(reply(q, dns.RcodeNameError, false)))
				return
			}
			var rrs []string
			for j := i; j < i+per && j < n; j++ {
				rrs = append(rrs, link(j)+" 300 IN CNAME "+link(j+1))
			}
			if i+per >= n {
				rrs = append(rrs, link(n)+" 300 IN A 192.0.2.1")
			}
			send(pack(reply(q, dns.RcodeSuccess, false, rrs...)))
		}
	}
	cases := []struct {
		name     string
		links    int
		per      int
		ok       bool
		maxQuery int64
	}{
		{"8 links in one reply", MaxCNAMEs, 100, true, 1},
		{"9 links in one reply", MaxCNAMEs + 1, 100, false, 1},
		{"8 links one per reply", MaxCNAMEs, 1, true, MaxCNAMEs + 1},
		{"1000 links one per reply", 1000, 1, false, MaxCNAMEs + 1},
		{"1000 links three per reply", 1000, 3, false, MaxCNAMEs + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, chain(tc.links, tc.per), nil)
			a, err := (&Stub{Servers: []string{srv.addr}}).Lookup(context.Background(), "c0.test", dns.TypeA)
			if tc.ok {
				wantA(t, a, err, "192.0.2.1")
				if len(a.CNAMEs) != tc.links {
					t.Errorf("CNAMEs %v", a.CNAMEs)
				}
			} else {
				wantErr(t, a, err, KindLoop)
			}
			if n := srv.queries.Load(); n > tc.maxQuery {
				t.Errorf("%d queries, want at most %d", n, tc.maxQuery)
			}
		})
	}
	t.Run("loop across replies", func(t *testing.T) {
		t.Parallel()
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) {
			// Each name points at the next, modulo 3: a -> b -> c -> a,
			// one link per reply.
			next := map[string]string{"a.test.": "b.test.", "b.test.": "c.test.", "c.test.": "a.test."}
			n := q.Question[0].Name
			send(pack(reply(q, dns.RcodeSuccess, false, n+" 300 IN CNAME "+next[n])))
		}, nil)
		a, err := (&Stub{Servers: []string{srv.addr}}).Lookup(context.Background(), "a.test", dns.TypeA)
		wantErr(t, a, err, KindLoop)
		if n := srv.queries.Load(); n > MaxCNAMEs+1 {
			t.Errorf("%d queries", n)
		}
	})
	t.Run("self loop", func(t *testing.T) {
		t.Parallel()
		srv := newRawServer(t, func(send func([]byte), q *dns.Msg) {
			send(pack(reply(q, dns.RcodeSuccess, false, "a.test. 300 IN CNAME A.TEST.")))
		}, nil)
		a, err := (&Stub{Servers: []string{srv.addr}}).Lookup(context.Background(), "a.test", dns.TypeA)
		wantErr(t, a, err, KindLoop)
	})
}

// TestHostileBailiwick: records for names outside the question's CNAME
// chain, of other types or classes, and records in the authority and
// additional sections never reach the answer.
func TestHostileBailiwick(t *testing.T) {
	leakcheck.Check(t)
	cases := []struct {
		name   string
		answer []string
		ns     []string
		extra  []string
		want   []string
		cnames []string
	}{
		{
			name:   "records of other names around a chain",
			answer: []string{"b.test. 300 IN A 198.51.100.1", "a.test. 300 IN CNAME c.test.", "evil.test. 300 IN A 198.51.100.2", "c.test. 300 IN A 192.0.2.1", "d.test. 300 IN A 198.51.100.3"},
			want:   []string{"192.0.2.1"},
			cnames: []string{"c.test."},
		},
		{
			name:   "CNAME of an unrelated name pointing into the chain",
			answer: []string{"x.test. 300 IN CNAME a.test.", "a.test. 300 IN A 192.0.2.1", "x.test. 300 IN A 198.51.100.1"},
			want:   []string{"192.0.2.1"},
		},
		{
			name:   "only the first CNAME of the owner is followed",
			answer: []string{"a.test. 300 IN CNAME c.test.", "a.test. 300 IN CNAME evil.test.", "c.test. 300 IN A 192.0.2.1", "evil.test. 300 IN A 198.51.100.1"},
			want:   []string{"192.0.2.1"},
			cnames: []string{"c.test."},
		},
		{
			name:  "the answer only in the additional and authority sections",
			ns:    []string{"a.test. 300 IN A 198.51.100.1", "test. 300 IN SOA ns.test. h.test. 1 2 3 4 60"},
			extra: []string{"a.test. 300 IN A 198.51.100.2"},
		},
		{
			name:   "other types and classes at the name",
			answer: []string{"a.test. 300 IN AAAA 2001:db8::66", "a.test. 300 CH A 198.51.100.1", "a.test. 300 IN TXT \"x\"", "a.test. 300 IN A 192.0.2.1"},
			want:   []string{"192.0.2.1"},
		},
		{
			name:   "a name that only differs by a suffix",
			answer: []string{"a.test.evil. 300 IN A 198.51.100.1", "xa.test. 300 IN A 198.51.100.2", "test. 300 IN A 198.51.100.3"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(send func([]byte), q *dns.Msg) {
				r := reply(q, dns.RcodeSuccess, false, tc.answer...)
				for _, s := range tc.ns {
					rr, _ := dns.NewRR(s)
					r.Ns = append(r.Ns, rr)
				}
				for _, s := range tc.extra {
					rr, _ := dns.NewRR(s)
					r.Extra = append(r.Extra, rr)
				}
				send(pack(r))
			}, nil)
			a, err := (&Stub{Servers: []string{srv.addr}, Timeout: time.Second}).Lookup(context.Background(), "a.test", dns.TypeA)
			if err != nil {
				// A re-query for an unanswered chain target may fail;
				// what matters is that no stray record came back.
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("untyped error %v", err)
				}
				if len(tc.want) > 0 {
					t.Fatalf("lookup failed: %v", err)
				}
				return
			}
			wantA(t, a, nil, tc.want...)
			if strings.Join(a.CNAMEs, ",") != strings.Join(tc.cnames, ",") {
				t.Errorf("CNAMEs %v, want %v", a.CNAMEs, tc.cnames)
			}
		})
	}
}

// TestHostileSlow: silent and slow servers, over UDP and TCP, alone and
// several in a row, against the per-server Timeout and the caller's
// context.
func TestHostileSlow(t *testing.T) {
	leakcheck.Check(t)
	silent := newRawServer(t, func(func([]byte), *dns.Msg) {}, nil)
	slow := newIdleRawServer(t)
	slow.start(func(send func([]byte), q *dns.Msg) {
		if slow.sleep(2 * time.Second) {
			send(valid(q))
		}
	}, nil)
	silentTCP := newRawServer(t, func(send func([]byte), q *dns.Msg) { send(truncatedReply(q)) },
		func(c net.Conn, q *dns.Msg) { silentTCPHold(c) })
	trickle := newIdleRawServer(t)
	trickle.start(func(send func([]byte), q *dns.Msg) { send(truncatedReply(q)) },
		func(c net.Conn, q *dns.Msg) {
			// Slowloris: the reply one byte every 50 ms.
			b := valid(q)
			b = append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
			for _, x := range b {
				if _, err := c.Write([]byte{x}); err != nil || !trickle.sleep(50*time.Millisecond) {
					return
				}
			}
		})

	cases := []struct {
		name    string
		servers []string
		timeout time.Duration
		ctx     time.Duration // 0: no deadline
		bound   time.Duration
		kind    Kind
	}{
		{"silent, per-server timeout", []string{silent.addr}, hostileTimeout, 0, 2 * time.Second, KindTimeout},
		{"slow, per-server timeout", []string{slow.addr}, hostileTimeout, 0, 2 * time.Second, KindTimeout},
		{"silent TCP after TC", []string{silentTCP.addr}, hostileTimeout, 0, 2 * time.Second, KindTimeout},
		{"TCP slowloris", []string{trickle.addr}, hostileTimeout, 0, 2 * time.Second, KindTimeout},
		{"five silent servers, context shorter than their sum", []string{silent.addr, silent.addr, slow.addr, silentTCP.addr, trickle.addr}, hostileTimeout, 500 * time.Millisecond, 2 * time.Second, KindTimeout},
		{"silent, context shorter than the timeout", []string{silent.addr}, time.Minute, 200 * time.Millisecond, 2 * time.Second, KindTimeout},
		{"TCP slowloris, context shorter than the timeout", []string{trickle.addr}, time.Minute, 200 * time.Millisecond, 2 * time.Second, KindTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			s := &Stub{Servers: tc.servers, Timeout: tc.timeout}
			bounded(t, tc.bound, func() {
				a, err := s.Lookup(ctx, "a.test", dns.TypeA)
				wantErr(t, a, err, tc.kind)
				if tc.ctx > 0 && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%v does not wrap context.DeadlineExceeded", err)
				}
			})
		})
	}
	t.Run("cancelled during the query", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		s := &Stub{Servers: []string{silent.addr}, Timeout: time.Minute}
		bounded(t, 2*time.Second, func() {
			a, err := s.Lookup(ctx, "a.test", dns.TypeA)
			wantErr(t, a, err, KindTimeout)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%v does not wrap context.Canceled", err)
			}
		})
	})
	t.Run("cancelled before the query", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		a, err := (&Stub{Servers: []string{silent.addr}}).Lookup(ctx, "a.test", dns.TypeA)
		wantErr(t, a, err, KindTimeout)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v does not wrap context.Canceled", err)
		}
	})
}

// silentTCPHold reads (and discards) until the peer closes: a TCP server
// that accepted the query and will never answer.
func silentTCPHold(c net.Conn) {
	io.Copy(io.Discard, c)
}
