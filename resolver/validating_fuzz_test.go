package resolver

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzValidatingResponse feeds arbitrary responses, as the upstream's
// answer to one question, to a validator whose chain of trust is genuine.
// Whatever the bytes, Lookup must return without panicking, within its
// limits, and a Secure answer must be the truth: nobody without the
// zone's keys can forge one.
func FuzzValidatingResponse(f *testing.F) {
	w := twNewWorld(f)
	w.zone("test.", twCfg{signing: twNSEC3OptOut})
	w.zone("example.test.", twCfg{signing: twNSEC3}, twLeaf...)
	w.zone("nsec.test.", twCfg{signing: twNSEC}, twLeaf...)
	w.seal()
	var (
		mu   sync.Mutex // guards next
		next *dns.Msg
	)
	q := dns.Question{Name: "mail.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	s := w.serve(f, func(in, r *dns.Msg) {
		if in.Question[0] != q {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if next != nil {
			*r = *next.Copy()
			r.Id, r.Response, r.Question = in.Id, true, in.Question
		}
	})
	// Seeds: genuine answers to other questions, replayed for this one.
	for _, seed := range []struct {
		name  string
		qtype uint16
	}{
		{"mail.example.test.", dns.TypeA}, {"mail.nsec.test.", dns.TypeA}, {"nosuch.example.test.", dns.TypeA},
		{"x.wild.example.test.", dns.TypeA}, {"www.example.test.", dns.TypeA}, {"mail.example.test.", dns.TypeTXT},
		{"nosuch.nsec.test.", dns.TypeA}, {"nosuch.test.", dns.TypeA},
	} {
		m := w.resolve(seed.name, seed.qtype)
		m.Response = true
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	v := w.validator(s)
	v.Timeout, v.LookupTimeout = time.Second, 3*time.Second
	// Warm the keys once so that each input costs one round trip.
	if _, err := v.Lookup(context.Background(), "example.test", dns.TypeMX); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil || len(b) > dns.MaxMsgSize {
			return
		}
		if _, err := m.Pack(); err != nil {
			return // the server could not send it
		}
		mu.Lock()
		next = m
		mu.Unlock()
		a, err := v.Lookup(context.Background(), q.Name, q.Qtype)
		if err != nil || a.Security != Secure {
			return
		}
		if a.NXDomain || len(a.CNAMEs) != 0 || len(a.Records) != 1 {
			t.Fatalf("forged secure answer: %+v", a)
		}
		if rr, ok := a.Records[0].(*dns.A); !ok || !rr.A.Equal(net.IPv4(192, 0, 2, 1)) || rr.Hdr.Name != q.Name {
			t.Fatalf("forged secure record: %v", a.Records[0])
		}
	})
}
