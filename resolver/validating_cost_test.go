package resolver_test

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

// The cost of validation itself, for comparison with
// BenchmarkValidatingWarm (same world, same question): the same lookup
// without validation (a Stub, one round trip), and the one signature
// verification the warm validated answer needs. Validation CPU per answer
// = Warm - StubSameQuestion, to be set against RRSIGVerify.

func BenchmarkValidatingStubSameQuestion(b *testing.B) {
	w := kitBenchWorld(b)
	s := w.Resolver()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Lookup(ctx, "mail.example.test", dns.TypeA); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidatingRRSIGVerify(b *testing.B) {
	w := kitBenchWorld(b)
	z := w.Zone("example.test")
	q := new(dns.Msg)
	q.SetQuestion("mail.example.test.", dns.TypeA)
	q.SetEdns0(1232, true)
	q.CheckingDisabled = true
	r, err := dns.Exchange(q, w.DNSAddr())
	if err != nil {
		b.Fatal(err)
	}
	var rrset []dns.RR
	var sig *dns.RRSIG
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.RRSIG:
			sig = v
		case *dns.A:
			rrset = append(rrset, v)
		}
	}
	key := z.ZSK()
	if sig == nil || len(rrset) == 0 || key == nil {
		b.Fatal("no signed answer")
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := sig.Verify(key, rrset); err != nil {
			b.Fatal(err)
		}
	}
}
