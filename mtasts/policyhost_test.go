package mtasts_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// dialLog is an HTTP client for a World whose dialer takes the policy
// host's addresses from the fetch's context (mtasts.PolicyHostAddrs), as
// the Evaluator's default client does, or else resolves the name through
// the World's DNS front; it records which it did.
type dialLog struct {
	mu    sync.Mutex
	dials []string // "prefetched host" or "resolved host"
}

func (l *dialLog) client(w *smtptlstest.World) *http.Client {
	resolve := w.DialContextWith(nil)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		addrs, ok := mtasts.PolicyHostAddrs(ctx, host)
		l.mu.Lock()
		if ok {
			l.dials = append(l.dials, "prefetched "+host)
		} else {
			l.dials = append(l.dials, "resolved "+host)
		}
		l.mu.Unlock()
		if !ok {
			return resolve(ctx, network, addr)
		}
		p, _ := strconv.Atoi(port)
		return w.DialContext(ctx, network, netip.AddrPortFrom(addrs[0], uint16(p)).String())
	}
	tr := &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: w.CA().Pool(), MinVersion: tls.VersionTLS12}}
	return &http.Client{Transport: tr}
}

// take returns the dials recorded since the last call.
func (l *dialLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.dials
	l.dials = nil
	return d
}

// TestPrefetchPolicyHost: with PrefetchPolicyHost the policy host's
// addresses are looked up with the TXT record and the fetch dials them
// (one lookup, not two); they are not used without a TXT record or when
// a live policy is cached (nothing is even looked up then); a failed
// early lookup leaves the dialer to resolve the name itself; the Result
// is the one a Client without the prefetch returns; nothing keeps
// running (leakcheck).
func TestPrefetchPolicyHost(t *testing.T) {
	leakcheck.Check(t)
	w := smtptlstest.New(t)
	z := w.AddZone("example", smtptlstest.ZoneConfig{})
	body := "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 86400\n"
	for _, d := range []string{"with.example", "fail.example"} {
		z.MustAdd(`_mta-sts.` + d + `. TXT "v=STSv1; id=1"`)
		w.SetPolicy(d, smtptlstest.Policy{Body: body})
	}
	// A policy host without a TXT record: its address must go unused.
	w.SetPolicy("without.example", smtptlstest.Policy{Body: body})
	w.SetFault("mta-sts.fail.example", 0, smtptlstest.FaultServFail)
	ctx := context.Background()
	discard := slog.New(slog.DiscardHandler)

	var log dialLog
	hc := log.client(w)
	defer hc.CloseIdleConnections()
	pre := &mtasts.Client{Resolver: w.Resolver(), HTTPClient: hc, PrefetchPolicyHost: true, Logger: discard}
	var seqLog dialLog
	shc := seqLog.client(w)
	defer shc.CloseIdleConnections()
	seq := &mtasts.Client{Resolver: w.Resolver(), HTTPClient: shc, Logger: discard}

	same := func(name string, got, want *mtasts.Result) {
		t.Helper()
		gk, wk := kindOf(got.FetchError), kindOf(want.FetchError)
		if got.RecordStatus != want.RecordStatus || got.Source != want.Source || got.Mode != want.Mode ||
			(got.Policy == nil) != (want.Policy == nil) || gk != wk {
			t.Errorf("%s: with the prefetch %+v (fetch %v), without %+v (fetch %v)", name, got, gk, want, wk)
		}
	}
	lookup := func(c *mtasts.Client, d string) *mtasts.Result {
		t.Helper()
		r, err := c.Lookup(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	hostQueries := func(d string) int64 {
		return w.QueryCountFor("mta-sts."+d, dns.TypeA) + w.QueryCountFor("mta-sts."+d, dns.TypeAAAA)
	}

	// A TXT record: the fetch dials the prefetched addresses.
	got, want := lookup(pre, "with.example"), lookup(seq, "with.example")
	same("with.example", got, want)
	if got.Source != mtasts.SourceFetch {
		t.Fatalf("with.example: %+v", got)
	}
	if d := log.take(); len(d) != 1 || d[0] != "prefetched mta-sts.with.example" {
		t.Errorf("with.example: dials %q, want one of the prefetched addresses", d)
	}
	if d := seqLog.take(); len(d) != 1 || d[0] != "resolved mta-sts.with.example" {
		t.Errorf("with.example without the prefetch: dials %q", d)
	}
	// One A and one AAAA query per Client: the dialer did not resolve
	// the name again.
	if n := hostQueries("with.example"); n != 4 {
		t.Errorf("with.example: %d address queries for the policy host by both Clients, want 4", n)
	}

	// A live cached policy: no fetch will follow, nothing is looked up.
	before := hostQueries("with.example")
	same("with.example cached", lookup(pre, "with.example"), lookup(seq, "with.example"))
	if n := hostQueries("with.example") - before; n != 0 {
		t.Errorf("with.example cached: %d address queries for the policy host, want 0", n)
	}
	// Recheck fetches whenever a TXT record exists: it prefetches.
	if r, err := pre.Recheck(ctx, "with.example"); err != nil || r.Source != mtasts.SourceFetch {
		t.Fatalf("Recheck: %+v, %v", r, err)
	}
	if d := log.take(); len(d) != 1 || d[0] != "prefetched mta-sts.with.example" {
		t.Errorf("Recheck: dials %q, want one of the prefetched addresses", d)
	}

	// No TXT record: no fetch, the address is never used.
	same("without.example", lookup(pre, "without.example"), lookup(seq, "without.example"))
	if d := log.take(); len(d) != 0 {
		t.Errorf("without.example: dials %q, want none", d)
	}

	// The early lookup fails: the dialer resolves the name itself, and
	// fails as it does without the prefetch.
	got, want = lookup(pre, "fail.example"), lookup(seq, "fail.example")
	same("fail.example", got, want)
	if got.FetchError == nil {
		t.Errorf("fail.example: fetched although the policy host cannot be resolved: %+v", got)
	}
	if d := log.take(); len(d) != 1 || d[0] != "resolved mta-sts.fail.example" {
		t.Errorf("fail.example: dials %q, want the dialer's own lookup", d)
	}

	// With the TXT answer cached (a domain without MTA-STS on the warm
	// path of every message) nothing starts early: no goroutine, no
	// allocation but the cache's copy of the answer.
	res := func() *resolver.Cache { return &resolver.Cache{Resolver: w.Resolver()} }
	cpre := &mtasts.Client{Resolver: res(), HTTPClient: hc, PrefetchPolicyHost: true, Logger: discard}
	cseq := &mtasts.Client{Resolver: res(), HTTPClient: hc, Logger: discard}
	lookup(cpre, "without.example")
	lookup(cseq, "without.example")
	allocs := func(c *mtasts.Client) float64 {
		return testing.AllocsPerRun(20, func() { lookup(c, "without.example") })
	}
	if a, b := allocs(cpre), allocs(cseq); a > b+1 {
		t.Errorf("warm lookup without a TXT record: %v allocations with PrefetchPolicyHost, %v without", a, b)
	}

	// Only the fetch's own context carries the lookup.
	if a, ok := mtasts.PolicyHostAddrs(ctx, "mta-sts.with.example"); ok {
		t.Errorf("PolicyHostAddrs without a fetch: %v", a)
	}
}

// kindOf is the Kind of an *mtasts.Error, or 0.
func kindOf(err error) mtasts.Kind {
	var e *mtasts.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
