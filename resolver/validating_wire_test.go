package resolver

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/resolver/internal/wire"
)

// The validator's queries go through the one exchange the Stub uses
// (resolver/internal/wire). These tests show where that made the
// validator stricter or more patient than its own exchange was: it used
// to give up, as malformed, after 32 stray datagrams (an off-path
// spoofer could end its exchanges that way), and to call a deadline
// passed after only bad datagrams a timeout.

// spoofingFront starts a raw server in front of the world's server s:
// for each UDP query it first sends what stray(q) returns, then relays
// the real reply; TCP queries are relayed.
func spoofingFront(t *testing.T, s *twServer, stray func(q *dns.Msg) [][]byte) *rawServer {
	t.Helper()
	relay := func(network string, q *dns.Msg) []byte {
		c := &dns.Client{Net: network, UDPSize: dns.MaxMsgSize, Timeout: 2 * time.Second}
		r, _, err := c.Exchange(q, s.addr)
		if err != nil {
			return nil
		}
		return pack(r)
	}
	return newRawServer(t, func(send func([]byte), q *dns.Msg) {
		for _, b := range stray(q) {
			send(b)
		}
		if b := relay("udp", q); b != nil {
			send(b)
		}
	}, func(c net.Conn, q *dns.Msg) {
		if b := relay("tcp", q); b != nil {
			writeFramed(c, b)
		}
	})
}

// strayReply returns a reply to q altered by edit, packed.
func strayReply(q *dns.Msg, edit func(r *dns.Msg)) []byte {
	r := new(dns.Msg)
	r.SetReply(q)
	edit(r)
	return pack(r)
}

// TestValidatingStrayDatagrams: 40 stray datagrams of each kind before
// every real reply (more than the 32 the validator used to tolerate) do
// not end the exchange: the answer is still Secure.
func TestValidatingStrayDatagrams(t *testing.T) {
	leakcheck.Check(t)
	w := twNewWorld(t)
	w.zone("test.", twCfg{signing: twNSEC3})
	w.zone("example.test.", twCfg{signing: twNSEC}, twLeaf...)
	w.seal()
	s := w.serve(t, nil)
	oversized := func(q *dns.Msg) []byte {
		// The right ID and question, but longer than wire.MaxUDPSize.
		r := new(dns.Msg)
		r.SetReply(q)
		for i := range 300 {
			rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN TXT \"" + strconv.Itoa(i) + " padding padding\"")
			r.Answer = append(r.Answer, rr)
		}
		b := pack(r)
		if len(b) <= wire.MaxUDPSize {
			panic(len(b))
		}
		return b
	}
	for _, tc := range []struct {
		name string
		one  func(q *dns.Msg) []byte
	}{
		{"wrong id", func(q *dns.Msg) []byte { return strayReply(q, func(r *dns.Msg) { r.Id ^= 0x5a5a }) }},
		{"wrong question", func(q *dns.Msg) []byte {
			return strayReply(q, func(r *dns.Msg) { r.Question[0].Name = "evil.test." })
		}},
		{"wrong opcode", func(q *dns.Msg) []byte { return strayReply(q, func(r *dns.Msg) { r.Opcode = dns.OpcodeNotify }) }},
		{"not a response", func(q *dns.Msg) []byte { return strayReply(q, func(r *dns.Msg) { r.Response = false }) }},
		{"garbage", func(*dns.Msg) []byte { return []byte{0, 1, 2} }},
		{"longer than wire.MaxUDPSize", oversized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			front := spoofingFront(t, s, func(q *dns.Msg) [][]byte {
				b := tc.one(q)
				out := make([][]byte, 40)
				for i := range out {
					out[i] = b
				}
				return out
			})
			v := &Validating{Servers: []string{front.addr}, Anchors: w.anchors, Timeout: 2 * time.Second}
			a, err := v.Lookup(context.Background(), "mail.example.test", dns.TypeA)
			if got, _ := twVerdict(a, err); got != "secure" {
				t.Fatalf("verdict %s (%v), want secure", got, err)
			}
		})
	}
}

// TestValidatingOnlyStrayDatagrams: an upstream from which only stray
// datagrams come before the deadline fails the lookup as KindMalformed
// ("no valid reply"), as the Stub's lookups do; the validator used to
// report a timeout.
func TestValidatingOnlyStrayDatagrams(t *testing.T) {
	leakcheck.Check(t)
	srv := newRawServer(t, func(send func([]byte), q *dns.Msg) {
		send(strayReply(q, func(r *dns.Msg) { r.Question[0].Name = "evil.test." }))
	}, nil)
	v := &Validating{Servers: []string{srv.addr}, Timeout: 300 * time.Millisecond, LookupTimeout: 2 * time.Second}
	bounded(t, 3*time.Second, func() {
		a, err := v.Lookup(context.Background(), "mail.example.test", dns.TypeA)
		wantErr(t, a, err, KindMalformed)
	})
}
