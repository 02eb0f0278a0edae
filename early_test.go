package smtptls_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// earlyWorld builds the domains of the early-lookup tests: every DANE
// scenario of the kit, and hosts placed where an early TLSA query is, or
// is not, allowed: in the recipient's signed zone, in an unsigned child
// zone of it (secure MX, insecure host: the early answer must be
// discarded, also when its query fails), in another signed zone, behind
// a CNAME, and the implicit MX.
func earlyWorld(t *testing.T) (*smtptlstest.World, []string) {
	w := smtptlstest.New(t)
	var domains []string
	for i, s := range []smtptlstest.Scenario{
		{DANE: smtptlstest.DANEEndEntity, MX: 2},
		{DANE: smtptlstest.DANETrustAnchor},
		{DANE: smtptlstest.DANEUnusable},
		{DANE: smtptlstest.DANEMismatch},
		{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, MX: 2},
		{DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisTLSAServFail},
		{DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisTLSABogus},
		{DANE: smtptlstest.DANEEndEntity, Unsigned: true},
		{STS: smtptlstest.STSEnforce, Unsigned: true},
		{STS: smtptlstest.STSTesting},
		{},
	} {
		d := fmt.Sprintf("scen%d.test", i)
		w.AddDomain(d, s)
		domains = append(domains, d)
	}
	signed := smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}
	tlsa := "TLSA 3 1 1 " + strings.Repeat("ab", 32)

	// A secure MX whose host lies in an unsigned child zone that fails
	// TLSA queries: the early query is asked (the host is at or below
	// the MX owner) and must change nothing.
	w.AddZone("child.test", signed).MustAdd("@ MX 10 mx.sub.child.test.", "@ MX 20 mx2.child.test.",
		"mx2 A 127.0.1.2", "_25._tcp.mx2 "+tlsa)
	w.AddZone("sub.child.test", smtptlstest.ZoneConfig{}).MustAdd("mx A 127.0.1.1", "_25._tcp.mx "+tlsa)
	w.SetFault("_25._tcp.mx.sub.child.test", dns.TypeTLSA, smtptlstest.FaultServFail)

	// MX hosts in another signed zone, one behind a CNAME.
	w.AddZone("hosting.test", signed).MustAdd("mx1 A 127.0.1.3", "_25._tcp.mx1 "+tlsa,
		"alias CNAME mx1", "mx3 A 127.0.1.4")
	w.AddZone("other.test", signed).MustAdd("@ MX 10 mx1.hosting.test.", "@ MX 20 alias.hosting.test.", "@ MX 30 mx3.hosting.test.")

	// A CNAME at the domain: the hosts lie in the expansion's zone.
	w.AddZone("cname.test", signed).MustAdd("mail CNAME target.hosting.test.")
	w.Zone("hosting.test").MustAdd("target MX 10 mx.target.hosting.test.", "mx.target A 127.0.1.5", "_25._tcp.mx.target "+tlsa)

	// No MX: the domain is its own host.
	w.AddZone("implicit.test", signed).MustAdd("@ A 127.0.1.6", "_25._tcp "+tlsa)

	// Secure addresses, failing TLSA.
	w.AddZone("fail.test", signed).MustAdd("@ MX 10 mx.fail.test.", "mx A 127.0.1.7", "_25._tcp.mx "+tlsa)
	w.SetFault("_25._tcp.mx.fail.test", dns.TypeTLSA, smtptlstest.FaultTimeout)

	return w, append(domains, "child.test", "other.test", "mail.cname.test", "implicit.test", "fail.test")
}

// TestEarlyLookupsSameDecision: the Evaluator's early lookups (TLSA with
// the addresses, the policy host's address with the TXT record) never
// change a decision. Every domain of earlyWorld is evaluated by an
// Evaluator with them and one without (SetSequential), each with its own
// cold resolver stack, through the Stub and through the in-process
// validator (which asks for the chain's keys with the answer in both).
func TestEarlyLookupsSameDecision(t *testing.T) {
	t.Parallel()
	w, domains := earlyWorld(t)
	stacks := map[string]func() resolver.Resolver{
		"stub": func() resolver.Resolver {
			s := w.Resolver()
			s.Timeout = 500 * time.Millisecond // fail.test
			return &resolver.Cache{Resolver: s}
		},
		"validating": func() resolver.Resolver {
			return &resolver.Cache{Resolver: &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors(), Timeout: 500 * time.Millisecond}}
		},
	}
	for sname, stack := range stacks {
		for _, d := range domains {
			t.Run(sname+"/"+d, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				newEv := func() *smtptls.Evaluator {
					return &smtptls.Evaluator{Resolver: stack(), Roots: w.CA().Pool(), DialContext: w.DialContext, Logger: discard}
				}
				seq := newEv()
				seq.SetSequential()
				want := decisionSummary(seq.Evaluate(ctx, d))
				got := decisionSummary(newEv().Evaluate(ctx, d))
				if got != want {
					t.Errorf("with early lookups:\n%s\nin order:\n%s", got, want)
				}
			})
		}
	}
}

// earlyTLSAAsked evaluates domain with ev (or, with relay, the relay
// host) while the DNS front holds back every answer about host, and
// reports whether the TLSA query of host arrived meanwhile: before its
// addresses were known. For a false answer it waits until both address
// queries have arrived and then a while longer (an early query leaves
// with them).
func earlyTLSAAsked(t *testing.T, w *smtptlstest.World, ev *smtptls.Evaluator, domain, host string, relay bool) bool {
	t.Helper()
	tlsa := "_25._tcp." + host
	before := w.QueryCountFor(tlsa, dns.TypeTLSA)
	w.SetFault(host, 0, smtptlstest.FaultDelay)
	defer w.SetFault(host, 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if relay {
			ev.EvaluateRelay(ctx, domain, 25)
		} else {
			ev.Evaluate(ctx, domain)
		}
	}()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(5 * time.Second)
	var addrsAt time.Time
	for time.Now().Before(deadline) {
		if w.QueryCountFor(tlsa, dns.TypeTLSA) > before {
			return true
		}
		if addrsAt.IsZero() && w.QueryCountFor(host, dns.TypeA) > 0 && w.QueryCountFor(host, dns.TypeAAAA) > 0 {
			addrsAt = time.Now()
		}
		if !addrsAt.IsZero() && time.Since(addrsAt) > 300*time.Millisecond {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s: neither a TLSA query nor both address queries of %s", domain, host)
	return false
}

// TestEarlyTLSAOnlyForKnownSignedZones: the TLSA query of an MX host
// leaves with its address queries only when the host's zone is known to
// be signed (RFC 7672 2.2.2: no TLSA lookup for a host whose addresses
// are insecure): a host in the zone of a secure MX RRset, or a sibling
// of a host whose secure addresses are cached. A host of another zone,
// of an insecure MX RRset, or a relay waits for its addresses.
func TestEarlyTLSAOnlyForKnownSignedZones(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.SetFaultDelay(time.Minute)
	signed := smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}
	tlsa := "TLSA 3 1 1 " + strings.Repeat("ab", 32)
	w.AddZone("in.test", signed).MustAdd("@ MX 10 mx.in.test.", "mx A 127.0.2.1", "_25._tcp.mx "+tlsa)
	w.AddZone("deep.test", signed).MustAdd("@ MX 10 mx.eu.deep.test.", "mx.eu A 127.0.2.2", "_25._tcp.mx.eu "+tlsa)
	w.AddZone("provider.test", signed).MustAdd(
		"a.mx A 127.0.2.3", "_25._tcp.a.mx "+tlsa,
		"b.mx A 127.0.2.4", "_25._tcp.b.mx "+tlsa,
		"relay A 127.0.2.5", "_25._tcp.relay "+tlsa)
	w.AddZone("cust-a.test", signed).MustAdd("@ MX 10 a.mx.provider.test.")
	w.AddZone("cust-b.test", signed).MustAdd("@ MX 10 b.mx.provider.test.")
	w.AddZone("unsigned.test", smtptlstest.ZoneConfig{}).MustAdd("@ MX 10 mx.in.test.")

	// Each check has an Evaluator of its own: the held-back answers
	// fail its cache's lookups once the check cancels its Evaluate.
	newEv := func() *smtptls.Evaluator {
		return &smtptls.Evaluator{Resolver: &resolver.Cache{Resolver: w.Resolver()}, Roots: w.CA().Pool(), Logger: discard}
	}
	for _, c := range []struct {
		name, domain, host string
		relay, early       bool
	}{
		{"host in the secure MX's zone", "in.test", "mx.in.test", false, true},
		{"host deeper in the secure MX's zone", "deep.test", "mx.eu.deep.test", false, true},
		{"host of an unknown zone", "cust-a.test", "a.mx.provider.test", false, false},
		{"relay host of an unknown zone", "relay.provider.test", "relay.provider.test", true, false},
		{"host of a signed zone, insecure MX", "unsigned.test", "mx.in.test", false, false},
	} {
		if got := earlyTLSAAsked(t, w, newEv(), c.domain, c.host, c.relay); got != c.early {
			t.Errorf("%s: TLSA asked before the addresses: %v, want %v", c.name, got, c.early)
		}
	}

	// Once a.mx.provider.test's secure addresses are cached, its
	// sibling b.mx.provider.test is known to lie in a signed zone.
	ev := newEv()
	if d, err := ev.Evaluate(context.Background(), "cust-a.test"); err != nil || d.Hosts[0].Level != smtptls.DANE {
		t.Fatalf("cust-a.test: %+v %v", d.Hosts[0], err)
	}
	if !earlyTLSAAsked(t, w, ev, "cust-b.test", "b.mx.provider.test", false) {
		t.Error("sibling of a host with cached secure addresses: TLSA not asked with the addresses")
	}
	// A sequential Evaluator never asks early.
	seq := newEv()
	seq.SetSequential()
	if earlyTLSAAsked(t, w, seq, "in.test", "mx.in.test", false) {
		t.Error("sequential Evaluator: TLSA asked before the addresses")
	}
}

// TestDefaultSTSClientDialsPrefetchedAddrs: the default MTA-STS client
// looks the policy host up with the TXT record, and its dialer dials
// those addresses instead of looking the host up again: one A and one
// AAAA query through a resolver without a cache. A domain without a TXT
// record is never dialled.
func TestDefaultSTSClientDialsPrefetchedAddrs(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddDomain("enforce.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
	w.AddDomain("plain.test", smtptlstest.Scenario{Unsigned: true})
	var dialled atomic.Int64
	ev := &smtptls.Evaluator{
		Resolver: w.Resolver(),
		Roots:    w.CA().Pool(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialled.Add(1)
			return w.DialContext(ctx, network, addr)
		},
		Logger: discard,
	}
	ctx := context.Background()
	d, err := ev.Evaluate(ctx, "enforce.test")
	if err != nil || d.STSPolicy() == nil || d.STS.Source != mtasts.SourceFetch {
		t.Fatalf("enforce.test: %+v, %v", d, err)
	}
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if n := w.QueryCountFor("mta-sts.enforce.test", qt); n != 1 {
			t.Errorf("mta-sts.enforce.test %s asked %d times, want once", dns.TypeToString[qt], n)
		}
	}
	if dialled.Load() != 1 {
		t.Errorf("%d dials, want 1", dialled.Load())
	}
	if _, err := ev.Evaluate(ctx, "plain.test"); err != nil {
		t.Fatal(err)
	}
	if dialled.Load() != 1 {
		t.Errorf("plain.test (no TXT record) was dialled")
	}
}
