package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzJoinTXT builds a TXT record from arbitrary RDATA as a server could
// send it, lets miekg/dns decode it (into escaped presentation form) and
// checks that JoinTXT gives back exactly the bytes of its
// character-strings, concatenated (RFC 8461 3.1, RFC 8460 3).
func FuzzJoinTXT(f *testing.F) {
	f.Add([]byte("\x0dv=STSv1; id=1"))
	f.Add([]byte("\x08v=STSv1;\x06 id=1;"))
	f.Add([]byte("\x03a\tb\x02\"\\\x01\x00\x04\xff\xfe\x80\x7f"))
	f.Add([]byte("\x00"))
	f.Add([]byte("\x05\\0092"))
	f.Fuzz(func(t *testing.T, rdata []byte) {
		if len(rdata) > 65535-11 {
			return
		}
		var want []byte
		for off := 0; off < len(rdata); {
			n := int(rdata[off])
			if off+1+n > len(rdata) {
				return // not a sequence of character-strings
			}
			want = append(want, rdata[off+1:off+1+n]...)
			off += 1 + n
		}
		wire := []byte{0} // owner: the root
		wire = binary.BigEndian.AppendUint16(wire, dns.TypeTXT)
		wire = binary.BigEndian.AppendUint16(wire, dns.ClassINET)
		wire = binary.BigEndian.AppendUint32(wire, 300)
		wire = binary.BigEndian.AppendUint16(wire, uint16(len(rdata)))
		wire = append(wire, rdata...)
		rr, _, err := dns.UnpackRR(wire, 0)
		if err != nil {
			return
		}
		txt, ok := rr.(*dns.TXT)
		if !ok {
			t.Fatalf("TXT RDATA decoded as %T", rr)
		}
		if got := JoinTXT(txt.Txt); got != string(want) {
			t.Fatalf("JoinTXT(%q) = %q, want %q", txt.Txt, got, want)
		}
	})
}

// fuzzServer answers every query, over UDP and TCP, with the current fuzz
// input spliced around the query's own ID and question (so that inputs
// reach the answer walk instead of the mismatch checks, which
// TestHostileMismatched covers), then, over UDP, with a valid SERVFAIL:
// an input the Stub rightly ignores ends the exchange at once instead of
// at its timeout.
type fuzzServer struct {
	addr  string
	reply atomic.Pointer[[]byte]
	pc    net.PacketConn
	ln    net.Listener
	wg    sync.WaitGroup
}

func newFuzzServer(f *testing.F) *fuzzServer {
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for range 20 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			f.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		f.Fatal(err)
	}
	s := &fuzzServer{addr: pc.LocalAddr().String(), pc: pc, ln: ln}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			pc.WriteTo(s.splice(q), from)
			var m dns.Msg
			if m.Unpack(q) == nil {
				r := new(dns.Msg)
				r.SetRcode(&m, dns.RcodeServerFailure)
				if b, err := r.Pack(); err == nil {
					pc.WriteTo(b, from)
				}
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var l [2]byte
			if _, err := io.ReadFull(c, l[:]); err == nil {
				q := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, q); err == nil {
					r := s.splice(q)
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(min(len(r), 65535))), r[:min(len(r), 65535)]...))
				}
			}
			c.Close()
		}
	}()
	f.Cleanup(func() { pc.Close(); ln.Close(); s.wg.Wait() })
	return s
}

// splice returns the fuzz reply with the query's ID, QDCOUNT 1 and the
// query's question section in place of the input's first 12 bytes.
func (s *fuzzServer) splice(q []byte) []byte {
	in := *s.reply.Load()
	if len(in) < 12 || len(q) < 12 {
		return in
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5 // the root label, QTYPE, QCLASS
	if end > len(q) {
		return in
	}
	out := append([]byte(nil), in[:12]...)
	copy(out[0:2], q[0:2])
	binary.BigEndian.PutUint16(out[4:], 1)
	out = append(out, q[12:end]...)
	return append(out, in[12:]...)
}

// FuzzStubReply sends arbitrary replies over real UDP and TCP sockets to
// Stub.Lookup: every lookup ends in bounded time with either an Answer
// holding only records of the asked type owned by the end of a chain of
// at most MaxCNAMEs links, or a *Error of a known Kind; never a panic.
func FuzzStubReply(f *testing.F) {
	seed := func(qtype uint16, rcode int, tc bool, rrs ...string) {
		q := new(dns.Msg)
		q.SetQuestion("a.test.", qtype)
		r := reply(q, rcode, true, rrs...)
		r.Truncated = tc
		b, err := r.Pack()
		if err != nil {
			f.Fatal(err)
		}
		// The server splices the question back in: seed without it.
		f.Add(append(b[:12:12], b[12+len("a.test.")+1+4:]...), qtype)
	}
	seed(dns.TypeA, dns.RcodeSuccess, false, "a.test. 300 IN A 192.0.2.1")
	seed(dns.TypeA, dns.RcodeSuccess, false, "a.test. 300 IN CNAME b.test.", "b.test. 300 IN A 192.0.2.1", "c.test. 300 IN A 192.0.2.2")
	seed(dns.TypeTLSA, dns.RcodeNameError, false, "a.test. 300 IN CNAME b.test.", "test. 300 IN SOA ns.test. h.test. 1 2 3 4 5")
	seed(dns.TypeTXT, dns.RcodeSuccess, false, "a.test. 300 IN TXT \"v=STSv1; id=1\"")
	seed(dns.TypeMX, dns.RcodeSuccess, false, "a.test. 300 IN MX 10 mx.test.")
	seed(dns.TypeA, dns.RcodeSuccess, true)
	seed(dns.TypeA, dns.RcodeServerFailure, false)
	srv := newFuzzServer(f)
	s := &Stub{Servers: []string{srv.addr}, Timeout: 2 * time.Second}
	f.Fuzz(func(t *testing.T, reply []byte, qtype uint16) {
		srv.reply.Store(&reply)
		start := time.Now()
		a, err := s.Lookup(context.Background(), "a.test", qtype)
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("lookup took %v", d)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind == KindUnknown || int(e.Kind) >= len(kindNames) || a != nil {
				t.Fatalf("error %v (%T), answer %v", err, err, a)
			}
			return
		}
		if a.Security != Secure && a.Security != Insecure {
			t.Fatalf("security %v", a.Security)
		}
		if len(a.CNAMEs) > MaxCNAMEs || a.TTL < 0 {
			t.Fatalf("CNAMEs %v, TTL %v", a.CNAMEs, a.TTL)
		}
		if a.NXDomain && len(a.Records) > 0 {
			// Records win over the rcode; NXDomain is never set with them.
			t.Fatalf("NXDOMAIN with records")
		}
		for _, rr := range a.Records {
			h := rr.Header()
			if h.Rrtype != qtype || h.Class != dns.ClassINET || h.Name != a.Target() {
				t.Fatalf("stray record %v for %s/%d", rr, a.Target(), qtype)
			}
		}
		if a.Name != "a.test." {
			t.Fatalf("answer for %q", a.Name)
		}
	})
}
