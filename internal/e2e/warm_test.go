package e2e_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

var warmDomainsFlag = flag.Int("warm-domains", 100000, "distinct domains of BenchmarkEvaluateWarmRotation")

// The warm world: n mail domains, each with two MX hosts, in a zone that
// a small DNS server of this file synthesizes (warmDNS) rather than the
// kit's World: building and signing a World of 100,000 domains, and
// answering a million queries through its validating front, takes many
// minutes, and the warm path never asks the DNS anyway. The server sets
// AD on every answer, as a validating resolver on the same host does for
// a signed zone, so that the Stub reports them Secure and Evaluate looks
// up TLSA records; every answer still crosses a loopback socket and goes
// through the Evaluator's resolver.Cache. Policies are served by a kit
// World's HTTPS server, which the World's dialler reaches for the policy
// hosts' address.
//
// The mix has a period of warmPeriod domains: domain i is DANE with
// MTA-STS enforce when i%warmPeriod is 0, DANE for 1 to 3, and neither
// (secure, no TLSA records: opportunistic) for 4 to 7. One domain in
// eight fetches a policy, which keeps the cold fill of 100,000 domains
// to about a minute of CPU.
const (
	warmZone   = "warm.test."
	warmPeriod = 8
	warmTTL    = 3600
	// warmPolicyAddr is the address of every policy host; the World maps
	// it, port 443, to its MTA-STS server.
	warmPolicyAddr = "127.0.0.54"
)

func warmDomain(i int) string { return fmt.Sprintf("d%07d.warm.test", i) }

func warmDANE(i int) bool { return i%warmPeriod < 4 }
func warmSTS(i int) bool  { return i%warmPeriod == 0 }

// warmLevel is the level every host of warmDomain(i) must get.
func warmLevel(i int) smtptls.Level {
	if warmDANE(i) {
		return smtptls.DANE
	}
	return smtptls.Opportunistic
}

// warmDNS is a DNS server on a loopback UDP socket that answers for the
// warm zone from the names alone, and counts the queries it serves.
type warmDNS struct {
	n       int
	addr    string
	queries atomic.Int64
	soa     dns.RR
	tlsa    string
}

func newWarmDNS(tb testing.TB, n int) *warmDNS {
	tb.Helper()
	s := &warmDNS{n: n, tlsa: strings.Repeat("5a", 32)}
	s.soa = &dns.SOA{Hdr: dns.RR_Header{Name: warmZone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: warmTTL},
		Ns: "ns." + warmZone, Mbox: "hostmaster." + warmZone, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: warmTTL}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20) // thousands of queries in flight during the fill
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: func() { close(started) }}
	errs := make(chan error, 1)
	go func() { errs <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-errs:
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Shutdown() })
	s.addr = pc.LocalAddr().String()
	return s
}

// ServeDNS answers one question: records, NODATA or NXDOMAIN (both with
// the zone's SOA, so that they are cached), AD set.
func (s *warmDNS) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	m.AuthenticatedData = true
	qq := q.Question[0]
	name := strings.ToLower(qq.Name)
	rrs, exists := s.answer(name, qq.Qtype)
	m.Answer = rrs
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	if len(rrs) == 0 {
		m.Ns = []dns.RR{s.soa}
	}
	w.WriteMsg(m)
}

// answer returns the records of (name, qtype) and whether name exists.
func (s *warmDNS) answer(name string, qtype uint16) ([]dns.RR, bool) {
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: warmTTL}
	}
	rest, ok := strings.CutSuffix(name, "."+warmZone)
	if !ok {
		return nil, name == warmZone
	}
	labels := strings.Split(rest, ".")
	d := labels[len(labels)-1]
	i, err := strconv.Atoi(strings.TrimPrefix(d, "d"))
	if !strings.HasPrefix(d, "d") || err != nil || i < 0 || i >= s.n {
		return nil, false
	}
	domain := d + "." + warmZone
	switch host := labels[:len(labels)-1]; {
	case len(host) == 0: // the mail domain
		if qtype == dns.TypeMX {
			return []dns.RR{
				&dns.MX{Hdr: hdr(dns.TypeMX), Preference: 10, Mx: "mx1." + domain},
				&dns.MX{Hdr: hdr(dns.TypeMX), Preference: 20, Mx: "mx2." + domain},
			}, true
		}
		return nil, true
	case len(host) == 1 && (host[0] == "mx1" || host[0] == "mx2"):
		if qtype == dns.TypeA {
			return []dns.RR{&dns.A{Hdr: hdr(dns.TypeA), A: net.IPv4(192, 0, 2, host[0][2]-'0').To4()}}, true
		}
		return nil, true
	case len(host) == 3 && host[0] == "_25" && host[1] == "_tcp" && (host[2] == "mx1" || host[2] == "mx2") && warmDANE(i):
		if qtype == dns.TypeTLSA {
			return []dns.RR{&dns.TLSA{Hdr: hdr(dns.TypeTLSA), Usage: 3, Selector: 1, MatchingType: 1, Certificate: s.tlsa}}, true
		}
		return nil, true
	case len(host) == 2 && host[0] == "_tcp" && (host[1] == "mx1" || host[1] == "mx2") && warmDANE(i):
		return nil, true // an empty non-terminal
	case len(host) == 1 && host[0] == "_mta-sts" && warmSTS(i):
		if qtype == dns.TypeTXT {
			return []dns.RR{&dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{"v=STSv1; id=1"}}}, true
		}
		return nil, true
	case len(host) == 1 && host[0] == "mta-sts" && warmSTS(i):
		if qtype == dns.TypeA {
			ip := netip.MustParseAddr(warmPolicyAddr).AsSlice()
			return []dns.RR{&dns.A{Hdr: hdr(dns.TypeA), A: ip}}, true
		}
		return nil, true
	}
	return nil, false
}

// warmWorld is the warm DNS server and, for the policies, a kit World
// whose HTTPS server answers for every policy host of the mix.
type warmWorld struct {
	dns *warmDNS
	w   *smtptlstest.World
	n   int
}

func newWarmWorld(tb testing.TB, n int) *warmWorld {
	tb.Helper()
	ww := &warmWorld{dns: newWarmDNS(tb, n), w: smtptlstest.New(tb), n: n}
	// The World's own zone only makes SetPolicy map the policy hosts'
	// address to its HTTPS server; the Evaluator never asks it.
	z := ww.w.AddZone(strings.TrimSuffix(warmZone, "."), smtptlstest.ZoneConfig{})
	var b strings.Builder
	for i := 0; i < n; i += warmPeriod {
		fmt.Fprintf(&b, "mta-sts.d%07d A %s\n", i, warmPolicyAddr)
	}
	z.MustAdd(b.String())
	for i := 0; i < n; i += warmPeriod {
		d := warmDomain(i)
		ww.w.SetPolicy(d, smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmx: mx1." + d + "\nmx: mx2." + d + "\nmax_age: 604800\n"})
	}
	return ww
}

// policyFetches is the number of policy requests the World has served.
func (ww *warmWorld) policyFetches() int {
	total := 0
	for i := 0; i < ww.n; i += warmPeriod {
		total += ww.w.PolicyFetches(warmDomain(i))
	}
	return total
}

// stsGets counts the Cache reads of the MTA-STS domains' policies: each
// is a miss of the Client's decoded layer (a domain without a record is
// read from the Cache at most once a minute by design, and not counted).
type stsGets struct {
	mtasts.Cache
	n atomic.Int64
}

func (c *stsGets) Get(ctx context.Context, key string) ([]byte, error) {
	if i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(key, "d"), ".warm.test")); err == nil && warmSTS(i) {
		c.n.Add(1)
	}
	return c.Cache.Get(ctx, key)
}

// warmEvaluator is an Evaluator with the default caches of the zero
// Evaluator — a resolver.Cache, an MTA-STS client with its MemoryCache
// and decoded layer, every bound at its default — over a Stub instead of
// the default Validating (the warm world is not signed). The policy host
// is resolved through the same cache, as the zero Evaluator does.
func warmEvaluator(ww *warmWorld) (*smtptls.Evaluator, *resolver.Cache, *stsGets) {
	stub := &resolver.Stub{Servers: []string{ww.dns.addr}, Timeout: loadQueryTimeout}
	r := &resolver.Cache{Resolver: stub}
	cache := &stsGets{Cache: mtasts.NewMemoryCache(0)}
	ev := &smtptls.Evaluator{
		Resolver: r,
		STS:      &mtasts.Client{Resolver: r, Cache: cache, HTTPClient: ww.w.HTTPClientWith(r), Logger: discard},
		Roots:    ww.w.CA().Pool(),
		Logger:   discard,
	}
	return ev, r, cache
}

// checkWarmDecision checks the decision for warmDomain(i).
func checkWarmDecision(dec *smtptls.Decision, i int) error {
	hosts := dec.Deliverable()
	if len(hosts) != 2 {
		return fmt.Errorf("%s: %d deliverable hosts of %d", dec.Domain, len(hosts), len(dec.Hosts))
	}
	for _, h := range hosts {
		if h.Level != warmLevel(i) {
			return fmt.Errorf("%s: %s level %v, want %v", dec.Domain, h.Name, h.Level, warmLevel(i))
		}
	}
	if p := dec.STSPolicy(); (p != nil && p.Mode == mtasts.Enforce) != warmSTS(i) {
		return fmt.Errorf("%s: MTA-STS policy %v", dec.Domain, p)
	}
	return nil
}

// warmPass evaluates every domain of order with conc workers and checks
// each decision; it returns the first failure.
func warmPass(ctx context.Context, ev *smtptls.Evaluator, order []int, conc int) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(order) {
					return
				}
				i := order[k]
				dec, err := ev.Evaluate(ctx, warmDomain(i))
				if err == nil {
					err = checkWarmDecision(dec, i)
				}
				if err != nil {
					errOnce.Do(func() { first = err })
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// warmFill builds the warm world of n domains and an Evaluator with the
// default caches, evaluates every domain once (cold, concurrently), then
// once more in another order, and checks that the second pass reached
// neither the DNS server nor the policy server nor the MTA-STS Cache. It
// returns the Evaluator, the rotation order, and the live heap retained
// per domain.
func warmFill(tb testing.TB, n int) (ev *smtptls.Evaluator, order []int, heapPerDomain float64) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	ww := newWarmWorld(tb, n)
	tb.Logf("warm world of %d domains in %v", n, time.Since(start).Round(time.Millisecond))
	h0 := heapAfterGC()
	ev, r, gets := warmEvaluator(ww)
	order = rand.New(rand.NewPCG(1, 2)).Perm(n)
	start = time.Now()
	if err := warmPass(ctx, ev, order, 64); err != nil {
		tb.Fatalf("cold pass: %v", err)
	}
	tb.Logf("cold pass: %v, %d queries, %d policy fetches", time.Since(start).Round(time.Millisecond), ww.dns.queries.Load(), ww.policyFetches())
	heapPerDomain = float64(int64(heapAfterGC())-int64(h0)) / float64(n)
	q0, f0, g0 := ww.dns.queries.Load(), ww.policyFetches(), gets.n.Load()
	slices.Reverse(order)
	if err := warmPass(ctx, ev, order, 2); err != nil {
		tb.Fatalf("warm pass: %v", err)
	}
	q, f, g := ww.dns.queries.Load()-q0, ww.policyFetches()-f0, gets.n.Load()-g0
	tb.Logf("warm pass: %d queries, %d policy fetches, %d MTA-STS cache reads; resolver.Cache %d answers, %.0f B/domain; heap %.0f B/domain",
		q, f, g, r.Len(), float64(r.Bytes())/float64(n), heapPerDomain)
	if q != 0 || f != 0 || g != 0 {
		tb.Fatalf("the second pass over %d domains within their TTLs sent %d DNS queries and %d policy fetches and read %d policies from the MTA-STS Cache; want none: a cache is too small for them",
			n, q, f, g)
	}
	return ev, order, heapPerDomain
}

// TestEvaluateWarmRotation: with the default caches, an MTA that delivers
// round-robin to 20,000 domains (5,000 under the race detector, 2,000
// with -short) decides every domain of a second pass from its caches:
// no DNS query, no policy fetch, no MTA-STS policy read back from the
// Cache. The defaults used to hold 1,250 domains' DNS answers and 4,096
// decoded policies. BenchmarkEvaluateWarmRotation does 100,000.
func TestEvaluateWarmRotation(t *testing.T) {
	n := 20000
	switch {
	case testing.Short():
		n = 2000
	case raceEnabled:
		n = 5000
	}
	warmFill(t, n)
}

// BenchmarkEvaluateWarmRotation measures a warm Evaluate rotating over
// 100,000 domains (-warm-domains) against the warm Evaluate of one hot
// period of the mix (the first warmPeriod domains, in the same proportions
// of DANE, MTA-STS and neither, always in the CPU's caches), in the same
// process and Evaluator. warmFill first checks that a second pass is all
// cached. Each iteration evaluates warmBatch domains of the rotation,
// then warmBatch hot ones, and times each batch on the thread's CPU clock
// (Linux; the wall clock elsewhere), so that a shared machine's other
// processes do not count; the figures are the medians over the batches
// of the CPU time per Evaluate ("rotating-ns/op", "hot-ns/op"), and
// "x-hot" is their ratio (target: at most 2). The garbage collector's
// background work runs on other threads and is not counted in either.
func BenchmarkEvaluateWarmRotation(b *testing.B) {
	n := *warmDomainsFlag
	ev, order, heapPerDomain := warmFill(b, n)
	ctx := context.Background()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock := func() time.Duration {
		if d, ok := threadCPUTime(); ok {
			return d
		}
		return time.Duration(time.Now().UnixNano())
	}
	eval := func(i int) {
		dec, err := ev.Evaluate(ctx, warmDomain(i))
		if err != nil || len(dec.Hosts) != 2 {
			b.Fatal(dec, err)
		}
	}
	var rot, hot []time.Duration
	k := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c0 := clock()
		for range warmBatch {
			eval(order[k%n])
			k++
		}
		c1 := clock()
		for j := range warmBatch {
			eval(j % warmPeriod)
		}
		c2 := clock()
		rot = append(rot, (c1-c0)/warmBatch)
		hot = append(hot, (c2-c1)/warmBatch)
	}
	r, h := float64(median(rot)), float64(median(hot))
	b.ReportMetric(r, "rotating-ns/op")
	b.ReportMetric(h, "hot-ns/op")
	b.ReportMetric(r/h, "x-hot")
	b.ReportMetric(heapPerDomain, "heap-B/domain")
	runtime.KeepAlive(ev)
}

// warmBatch is the number of Evaluate calls timed together.
const warmBatch = 16
