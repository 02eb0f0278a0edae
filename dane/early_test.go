package dane_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// earlyHosts are the hosts of lookupWorld whose lookups complete or fail
// for a reason of the DNS (not of the name).
var earlyHosts = []string{
	"mx.a.test", "notlsa.a.test", "unusable.a.test", "alias.a.test", "alias2.a.test",
	"out.a.test", "host.unsigned.test", "back.unsigned.test", "broken.unsigned.test",
	"nosuch.a.test", "noaddr.a.test", "island.a.test", "servfail.a.test", "bogus.a.test",
	"aserv.a.test", "half.a.test", "mx.b.test", "plain.b.test",
}

// TestLookupEarlyTLSA: asking for the TLSA RRset with the addresses
// (Options.EarlyTLSA) gives the Policy, or the error, that the lookup in
// RFC 7672 2.2.2's order gives, for every kind of host: secure, insecure
// (the early answer is discarded, also when the early query fails),
// CNAMEs (the early answer is for the original name, asked second or
// never), failures of the addresses or of the TLSA RRset. Through a
// resolver.Cache and through a bare Stub.
func TestLookupEarlyTLSA(t *testing.T) {
	leakcheck.Check(t)
	w := lookupWorld(t)
	stacks := map[string]func() resolver.Resolver{
		"stub":  func() resolver.Resolver { return w.Resolver() },
		"cache": func() resolver.Resolver { return &resolver.Cache{Resolver: w.Resolver()} },
	}
	for sname, stack := range stacks {
		for _, host := range earlyHosts {
			t.Run(sname+"/"+host, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				want, wantErr := dane.LookupWith(ctx, stack(), host, 25, dane.Options{})
				got, err := dane.LookupWith(ctx, stack(), host, 25, dane.Options{EarlyTLSA: true})
				if (wantErr == nil) != (err == nil) {
					t.Fatalf("early: %v, %v; in order: %v, %v", got, err, want, wantErr)
				}
				if err != nil {
					var e, we *dane.Error
					if !errors.As(err, &e) || !errors.As(wantErr, &we) || e.Kind != we.Kind || e.Name != we.Name {
						t.Fatalf("early: %v; in order: %v", err, wantErr)
					}
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("early: %+v\nin order: %+v", got, want)
				}
			})
		}
	}
	// Whatever the early queries were doing, they end: leakcheck.
}

// TestLookupEarlyTLSAFailureAskedAgain: an early TLSA query that fails
// does not decide: the RRset is asked for again in its turn, after the
// addresses, and that answer decides (RFC 7672 2.1.2 makes a TLSA
// failure fatal to the host, so it must be the failure of the query the
// lookup asks in its turn). The early query is answered SERVFAIL while
// the addresses are held back; the fault is then lifted.
func TestLookupEarlyTLSAFailureAskedAgain(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("a.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd(
		"slow A 127.0.0.10",
		"_25._tcp.slow TLSA 3 1 1 "+hash,
	)
	tlsa := "_25._tcp.slow.a.test"
	w.SetFaultDelay(2 * time.Second)
	w.SetFault("slow.a.test", 0, smtptlstest.FaultDelay)
	w.SetFault(tlsa, dns.TypeTLSA, smtptlstest.FaultServFail)

	type outcome struct {
		p   *dane.Policy
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		p, err := dane.LookupWith(context.Background(), w.Resolver(), "slow.a.test", 25, dane.Options{EarlyTLSA: true})
		done <- outcome{p, err}
	}()
	deadline := time.Now().Add(time.Second)
	for w.QueryCountFor(tlsa, dns.TypeTLSA) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no early TLSA query while the addresses were held back")
		}
		time.Sleep(time.Millisecond)
	}
	// The SERVFAIL leaves at once (no delay on that question).
	time.Sleep(200 * time.Millisecond)
	w.SetFault(tlsa, dns.TypeTLSA, 0)
	o := <-done
	if o.err != nil || o.p.Level != dane.Authenticate {
		t.Fatalf("policy %+v, err %v: want Authenticate from the TLSA query asked in its turn", o.p, o.err)
	}
	if n := w.QueryCountFor(tlsa, dns.TypeTLSA); n != 2 {
		t.Errorf("%d TLSA queries, want 2 (early, then in turn)", n)
	}
}
