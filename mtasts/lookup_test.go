package mtasts_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

const week = 7 * 24 * time.Hour

var bg = context.Background()

func lookup(t *testing.T, c *mtasts.Client, domain string) *mtasts.Result {
	t.Helper()
	res, err := c.Lookup(bg, domain)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", domain, err)
	}
	return res
}

// want checks the policy in effect: mode "" means none applies.
func want(t *testing.T, res *mtasts.Result, src mtasts.Source, mode mtasts.Mode, id string) {
	t.Helper()
	if res.Source != src || res.Mode != mode || res.ID != id {
		t.Fatalf("Result source %v mode %q id %q; want %v %q %q (record %v %v, fetch error %v)",
			res.Source, res.Mode, res.ID, src, mode, id, res.RecordStatus, res.RecordError, res.FetchError)
	}
	applies := mode == mtasts.Enforce || mode == mtasts.Testing
	if (res.Policy != nil) != applies || (applies && res.Policy.Mode != mode) {
		t.Fatalf("Result.Policy %+v for mode %q", res.Policy, mode)
	}
}

func wantFetchError(t *testing.T, res *mtasts.Result, rt tlsrpt.ResultType) {
	t.Helper()
	var e *mtasts.Error
	if !errors.As(res.FetchError, &e) || e.Result != rt {
		t.Fatalf("FetchError %v; want result type %q", res.FetchError, rt)
	}
}

// RFC 8461 5: the TXT record comes first; an unchanged id with an
// unexpired cached policy uses the cache.
func TestLookupUnchangedIDUsesCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	c := e.client(nil)

	res := lookup(t, c, "A.Example.")
	want(t, res, mtasts.SourceFetch, mtasts.Enforce, "1")
	if res.Domain != "a.example" || res.RecordStatus != mtasts.RecordFound || res.Record.ID != "1" {
		t.Fatalf("result %+v", res)
	}
	if !res.Policy.Match("mx.a.example") || !res.Expires.Equal(res.Fetched.Add(week)) {
		t.Errorf("policy %+v expires %v", res.Policy, res.Expires)
	}
	e.clk.Advance(24 * time.Hour)
	txtBefore := e.w.QueryCountFor("_mta-sts.a.example", dns.TypeTXT)
	res = lookup(t, c, "a.example")
	want(t, res, mtasts.SourceCache, mtasts.Enforce, "1")
	if n := e.w.PolicyFetches("a.example"); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	if e.w.QueryCountFor("_mta-sts.a.example", dns.TypeTXT) == txtBefore {
		t.Error("the TXT record was not looked up before using the cache")
	}
}

// RFC 8461 5 and 10.3: a new id triggers a fetch, and a valid new policy
// replaces the cached one.
func TestLookupNewIDReplaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Testing, week, "mx.a.example")})
	c := e.client(nil)
	want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Testing, "1")

	e.setID("a", "2")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx2.a.example")})
	res := lookup(t, c, "a.example")
	want(t, res, mtasts.SourceFetch, mtasts.Enforce, "2")
	if !res.Policy.Match("mx2.a.example") || res.Policy.Match("mx.a.example") {
		t.Errorf("old policy still in effect: %v", res.Policy.MX)
	}
	want(t, lookup(t, c, "a.example"), mtasts.SourceCache, mtasts.Enforce, "2")
}

// RFC 8461 5: a failed fetch never evicts a valid cached policy; each
// failure is reported with its TLS-RPT result type.
func TestLookupFetchFailureKeepsCache(t *testing.T) {
	t.Parallel()
	failures := []struct {
		name string
		p    smtptlstest.Policy
		rt   tlsrpt.ResultType
	}{
		{"HTTP 500", smtptlstest.Policy{Status: 500}, tlsrpt.STSPolicyFetchError},
		{"HTTP 404", smtptlstest.Policy{Status: 404}, tlsrpt.STSPolicyFetchError},
		{"redirect", smtptlstest.Policy{Status: 301, Location: "https://mta-sts.b.example/.well-known/mta-sts.txt"}, tlsrpt.STSPolicyFetchError},
		{"text/html", smtptlstest.Policy{Body: policy(mtasts.None, week), ContentType: "text/html"}, tlsrpt.STSPolicyFetchError},
		{"invalid policy", smtptlstest.Policy{Body: "garbage"}, tlsrpt.STSPolicyInvalid},
		{"oversize", smtptlstest.Policy{Body: policy(mtasts.None, week), BodySize: 64 << 10}, tlsrpt.STSPolicyInvalid},
		{"wrong certificate name", smtptlstest.Policy{Body: policy(mtasts.None, week), Cert: smtptlstest.CertWrongName}, tlsrpt.STSWebPKIInvalid},
		{"expired certificate", smtptlstest.Policy{Body: policy(mtasts.None, week), Cert: smtptlstest.CertExpired}, tlsrpt.STSWebPKIInvalid},
		{"self-signed certificate", smtptlstest.Policy{Body: policy(mtasts.None, week), Cert: smtptlstest.CertSelfSigned}, tlsrpt.STSWebPKIInvalid},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.setID("a", "1")
			e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
			c := e.client(nil)
			want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")

			e.setID("a", "2")
			e.w.SetPolicy("a.example", f.p)
			res := lookup(t, c, "a.example")
			want(t, res, mtasts.SourceCache, mtasts.Enforce, "1")
			wantFetchError(t, res, f.rt)
			if res.Record == nil || res.Record.ID != "2" {
				t.Errorf("record %+v", res.Record)
			}
			if !strings.Contains(e.logs.String(), "policy fetch failed") {
				t.Error("fetch failure not logged")
			}
			// The first policy for a domain failing: no policy, not an
			// error (RFC 8461 5: deliver as if none).
			e.setID("fresh", "1")
			e.w.SetPolicy("fresh.example", f.p)
			res = lookup(t, c, "fresh.example")
			want(t, res, mtasts.SourceNone, "", "")
			wantFetchError(t, res, f.rt)
		})
	}
}

// RFC 8461 5: a removed, broken, duplicated or unresolvable TXT record
// does not delete the cached policy.
func TestLookupRecordTroubleKeepsCache(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		break_ func(e *env)
		status mtasts.RecordStatus
		kind   mtasts.Kind
	}{
		{"removed", func(e *env) { e.setTXT("a") }, mtasts.RecordAbsent, mtasts.KindNoRecord},
		{"replaced by other TXT", func(e *env) { e.setTXT("a", []string{"hello"}) }, mtasts.RecordAbsent, mtasts.KindNoRecord},
		{"syntax error", func(e *env) { e.setTXT("a", []string{"v=STSv1; id=bad-id"}) }, mtasts.RecordInvalid, mtasts.KindRecordSyntax},
		{"two records", func(e *env) { e.setTXT("a", []string{"v=STSv1; id=1"}, []string{"v=STSv1; id=2"}) }, mtasts.RecordInvalid, mtasts.KindMultipleRecords},
		{"SERVFAIL", func(e *env) { e.w.SetFault("_mta-sts.a.example", dns.TypeTXT, smtptlstest.FaultServFail) }, mtasts.RecordLookupFailed, mtasts.KindDNS},
		{"NXDOMAIN of the zone", func(e *env) { e.z.Remove("_mta-sts.a", 0) }, mtasts.RecordAbsent, mtasts.KindNoRecord},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.setID("a", "1")
			e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
			c := e.client(nil)
			want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
			tc.break_(e)
			e.clk.Advance(3 * 24 * time.Hour)
			res := lookup(t, c, "a.example")
			want(t, res, mtasts.SourceCache, mtasts.Enforce, "1")
			var re *mtasts.Error
			if res.RecordStatus != tc.status || !errors.As(res.RecordError, &re) || re.Kind != tc.kind {
				t.Errorf("record status %v error %v; want %v %v", res.RecordStatus, res.RecordError, tc.status, tc.kind)
			}
			if tc.kind == mtasts.KindDNS {
				var rerr *resolver.Error
				if !errors.As(res.RecordError, &rerr) {
					t.Errorf("DNS error %v does not wrap *resolver.Error", res.RecordError)
				}
			}
			if n := e.w.PolicyFetches("a.example"); n != 1 {
				t.Errorf("%d fetches", n)
			}
			// Without a cached policy the same trouble means no policy,
			// and still no error.
			res = lookup(t, e.client(nil), "a.example")
			want(t, res, mtasts.SourceNone, "", "")
			// Once the cached policy expires, it no longer applies.
			e.clk.Advance(week)
			want(t, lookup(t, c, "a.example"), mtasts.SourceNone, "", "")
		})
	}
}

// A TXT lookup that times out (Snawoot's blackhole.loc) is a failed
// lookup, not an error.
func TestLookupDNSTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetFault("_mta-sts.a.example", dns.TypeTXT, smtptlstest.FaultTimeout)
	c := e.client(nil)
	c.Resolver = &resolver.Stub{Servers: []string{e.w.DNSAddr()}, Timeout: 200 * time.Millisecond}
	res := lookup(t, c, "a.example")
	want(t, res, mtasts.SourceNone, "", "")
	if res.RecordStatus != mtasts.RecordLookupFailed {
		t.Errorf("record status %v (%v)", res.RecordStatus, res.RecordError)
	}
}

// RFC 8461 3.3: after a failed fetch, wait at least five minutes before
// fetching the same id again; a new id is fetched at once.
func TestLookupBackoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Status: 503})
	c := e.client(nil)

	res := lookup(t, c, "a.example")
	want(t, res, mtasts.SourceNone, "", "")
	wantFetchError(t, res, tlsrpt.STSPolicyFetchError)
	for _, step := range []time.Duration{time.Second, time.Minute, 3 * time.Minute} {
		e.clk.Advance(step)
		res = lookup(t, c, "a.example")
		if n := e.w.PolicyFetches("a.example"); n != 1 {
			t.Fatalf("fetched %d times within the back-off", n)
		}
		wantFetchError(t, res, tlsrpt.STSPolicyFetchError)
		if res.BackoffUntil.IsZero() {
			t.Error("BackoffUntil not set")
		}
	}
	e.setID("a", "2")
	lookup(t, c, "a.example")
	if n := e.w.PolicyFetches("a.example"); n != 2 {
		t.Fatalf("a new id was not fetched at once (%d fetches)", n)
	}
	e.clk.Advance(5*time.Minute + time.Second)
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	res = lookup(t, c, "a.example")
	want(t, res, mtasts.SourceFetch, mtasts.Enforce, "2")
	if res.FetchError != nil || !res.BackoffUntil.IsZero() {
		t.Errorf("stale failure in result: %v", res.FetchError)
	}
}

// The back-off survives a restart when a cached policy holds it.
func TestLookupBackoffPersists(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := mtasts.DirCache(t.TempDir())
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	want(t, lookup(t, e.client(dir), "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
	e.setID("a", "2")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Status: 502})
	res := lookup(t, e.client(dir), "a.example")
	wantFetchError(t, res, tlsrpt.STSPolicyFetchError)
	if n := e.w.PolicyFetches("a.example"); n != 2 {
		t.Fatalf("%d fetches", n)
	}

	e.clk.Advance(time.Minute)
	restarted := e.client(dir)
	res = lookup(t, restarted, "a.example")
	want(t, res, mtasts.SourceCache, mtasts.Enforce, "1")
	if n := e.w.PolicyFetches("a.example"); n != 2 {
		t.Errorf("%d fetches: the back-off did not survive the restart", n)
	}
	wantFetchError(t, res, tlsrpt.STSPolicyFetchError)
	var me *mtasts.Error
	if errors.As(res.FetchError, &me); me.Kind != mtasts.KindHTTPStatus {
		t.Errorf("remembered failure %v", res.FetchError)
	}
	e.clk.Advance(5 * time.Minute)
	lookup(t, restarted, "a.example")
	if n := e.w.PolicyFetches("a.example"); n != 3 {
		t.Errorf("%d fetches after the back-off", n)
	}
}

// RFC 8461 5 and 8.3: a mode-none policy is cached and applied as no
// policy; it is replaced only when the id changes.
func TestLookupModeNone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.None, week)})
	c := e.client(nil)
	want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.None, "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	want(t, lookup(t, c, "a.example"), mtasts.SourceCache, mtasts.None, "1")
	if n := e.w.PolicyFetches("a.example"); n != 1 {
		t.Errorf("%d fetches", n)
	}
	e.setID("a", "2")
	want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "2")
}

// RFC 8461 3.2: max_age bounds the cache. An expired policy is fetched
// again and no longer applies on its own.
func TestLookupMaxAgeExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, time.Hour, "mx.a.example")})
	c := e.client(nil)
	want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
	e.clk.Advance(time.Hour - time.Second)
	want(t, lookup(t, c, "a.example"), mtasts.SourceCache, mtasts.Enforce, "1")
	e.clk.Advance(time.Second)
	want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
	if n := e.w.PolicyFetches("a.example"); n != 2 {
		t.Errorf("%d fetches", n)
	}
	// Expired and the refetch fails: no policy.
	e.clk.Advance(time.Hour)
	e.w.SetPolicy("a.example", smtptlstest.Policy{Status: 500})
	res := lookup(t, c, "a.example")
	want(t, res, mtasts.SourceNone, "", "")
	wantFetchError(t, res, tlsrpt.STSPolicyFetchError)

	// max_age 0 applies to the lookup that fetched it, and only to it.
	e.setID("zero", "1")
	e.w.SetPolicy("zero.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, 0, "mx.zero.example")})
	want(t, lookup(t, c, "zero.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
	want(t, lookup(t, c, "zero.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
	if n := e.w.PolicyFetches("zero.example"); n != 2 {
		t.Errorf("%d fetches of a max_age 0 policy", n)
	}
}

// Concurrent lookups of one domain share one fetch (singleflight).
func TestLookupOneFetchInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example"), Delay: 300 * time.Millisecond})
	c := e.client(nil)
	var wg sync.WaitGroup
	results := make([]*mtasts.Result, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Lookup(bg, "a.example")
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res
		}()
	}
	wg.Wait()
	for _, res := range results {
		if res == nil || res.Policy == nil || res.Policy.Mode != mtasts.Enforce {
			t.Fatalf("result %+v", res)
		}
	}
	if n := e.w.PolicyFetches("a.example"); n != 1 {
		t.Errorf("%d fetches for %d concurrent lookups", n, len(results))
	}
	// A caller that gives up does not fail the shared fetch.
	e.setID("a", "2")
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	_, err := c.Lookup(ctx, "a.example")
	var me *mtasts.Error
	if !errors.As(err, &me) || me.Kind != mtasts.KindCanceled || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lookup with an expiring context: %v", err)
	}
	want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "2")
	if n := e.w.PolicyFetches("a.example"); n != 2 {
		t.Errorf("%d fetches", n)
	}
}

// RFC 8461 5: before failing a message permanently, check for an updated
// policy, bypassing the cache and the back-off.
func TestRecheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	c := e.client(nil)
	want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")

	// The publisher fixed the policy but forgot to change the id.
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example", "new-mx.a.example")})
	if lookup(t, c, "a.example").Policy.Match("new-mx.a.example") {
		t.Fatal("Lookup bypassed the cache")
	}
	res, err := c.Recheck(bg, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	want(t, res, mtasts.SourceFetch, mtasts.Enforce, "1")
	if !res.Policy.Match("new-mx.a.example") {
		t.Error("Recheck did not fetch the updated policy")
	}
	if !lookup(t, c, "a.example").Policy.Match("new-mx.a.example") {
		t.Error("the rechecked policy was not cached")
	}

	// Recheck ignores the back-off, and a failure keeps the cache.
	e.setID("a", "2")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Status: 500})
	lookup(t, c, "a.example")
	before := e.w.PolicyFetches("a.example")
	res, err = c.Recheck(bg, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	if e.w.PolicyFetches("a.example") != before+1 {
		t.Error("Recheck honoured the back-off")
	}
	want(t, res, mtasts.SourceCache, mtasts.Enforce, "1")
	wantFetchError(t, res, tlsrpt.STSPolicyFetchError)
}

// TestRecheckDoesNotJoinLookup: a Recheck that starts while an ordinary
// lookup's fetch is in flight must not share it (issue 13 point 9): that
// fetch was asked for before the publisher's update and may answer from
// the cache or the back-off without reaching the network at all.
func TestRecheckDoesNotJoinLookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	// The old policy is served slowly, so that the ordinary lookup's fetch
	// is still in flight when the Recheck starts.
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example"), Delay: 3 * time.Second})
	c := e.client(nil)
	done := make(chan *mtasts.Result, 1)
	go func() {
		res, err := c.Lookup(bg, "a.example")
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// The server counts a request when it arrives, before its delay.
	for deadline := time.Now().Add(10 * time.Second); e.w.PolicyFetches("a.example") == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the lookup's fetch never reached the server")
		}
		time.Sleep(time.Millisecond)
	}
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example", "new-mx.a.example")})
	start := time.Now()
	res, err := c.Recheck(bg, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	if n := e.w.PolicyFetches("a.example"); n != 2 {
		t.Errorf("%d fetches, want 2: the Recheck did not reach the policy host", n)
	}
	if res.Policy == nil || !res.Policy.Match("new-mx.a.example") {
		t.Errorf("Recheck returned %+v, not the updated policy", res.Policy)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Recheck took %v: it waited for the lookup's fetch", d)
	}
	if res := <-done; res == nil || res.Policy == nil || res.Policy.Match("new-mx.a.example") {
		t.Errorf("the ordinary lookup got %+v, want the old policy it fetched", res)
	}
}

// TestRechecksShareAFetch: concurrent Rechecks of one domain may share
// one forced fetch; each still gets an answer from the network.
func TestRechecksShareAFetch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	c := e.client(nil)
	want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			res, err := c.Recheck(bg, "a.example")
			if err != nil {
				t.Error(err)
				return
			}
			if res.Source != mtasts.SourceFetch {
				t.Errorf("Recheck answered from %v", res.Source)
			}
		})
	}
	wg.Wait()
	if n := e.w.PolicyFetches("a.example"); n < 2 || n > 5 {
		t.Errorf("%d fetches", n)
	}
}

func TestLookupMisuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(nil)
	// Invalid UTF-8 used to become the A-label of U+FFFD (xn--zn7ca) and
	// be looked up; an all-numeric top-level label is an address.
	for _, d := range []string{"", ".", "[192.0.2.1]", "192.0.2.1", ".good.example", "a..example", "a.example..",
		"\xff\xfe.example", "b\xfccher.example", "x.1.2.3.4", "a b.example", "a\r\nb.example"} {
		_, err := c.Lookup(bg, d)
		var me *mtasts.Error
		if !errors.As(err, &me) || me.Kind != mtasts.KindInvalidDomain {
			t.Errorf("Lookup(%q): %v; want KindInvalidDomain", d, err)
		}
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err := c.Lookup(ctx, "a.example")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Lookup with a cancelled context: %v", err)
	}
	// No record, no cache: no policy and no error.
	res := lookup(t, c, "absent.example")
	want(t, res, mtasts.SourceNone, "", "")
	if res.RecordStatus != mtasts.RecordAbsent {
		t.Errorf("record status %v", res.RecordStatus)
	}
}

// U-label and mixed-case domains are one policy domain.
func TestLookupIDN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("xn--bcher-kva", "1")
	e.w.SetPolicy("xn--bcher-kva.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.xn--bcher-kva.example")})
	c := e.client(nil)
	res := lookup(t, c, "BÜCHER.example.")
	want(t, res, mtasts.SourceFetch, mtasts.Enforce, "1")
	if res.Domain != "xn--bcher-kva.example" || !res.Policy.Match("mx.bücher.example") {
		t.Errorf("result %+v", res)
	}
	want(t, lookup(t, c, "xn--bcher-kva.example"), mtasts.SourceCache, mtasts.Enforce, "1")
}

// Policies survive a restart with a DirCache; a corrupt entry is a miss
// (logged), never a crash.
func TestLookupDirCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	want(t, lookup(t, e.client(mtasts.DirCache(dir)), "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")

	// A restart finds it, also when the TXT record is gone.
	e.setTXT("a")
	want(t, lookup(t, e.client(mtasts.DirCache(dir)), "a.example"), mtasts.SourceCache, mtasts.Enforce, "1")

	e.setID("a", "1")
	if err := os.WriteFile(filepath.Join(dir, "a.example"), []byte("smtptls-mtasts 1\ngarbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.client(mtasts.DirCache(dir))
	want(t, lookup(t, c, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
	if !strings.Contains(e.logs.String(), "corrupt cache entry") {
		t.Errorf("corrupt entry not logged: %s", e.logs)
	}
	want(t, lookup(t, e.client(mtasts.DirCache(dir)), "a.example"), mtasts.SourceCache, mtasts.Enforce, "1")
}

// A fleet sharing one cache: a policy another MTA fetched is used without
// a fetch of our own.
func TestLookupSharedCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shared := mtasts.NewMemoryCache(0)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	c1, c2 := e.client(shared), e.client(shared)
	want(t, lookup(t, c1, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
	want(t, lookup(t, c2, "a.example"), mtasts.SourceCache, mtasts.Enforce, "1")
	e.setID("a", "2")
	want(t, lookup(t, c1, "a.example"), mtasts.SourceFetch, mtasts.Enforce, "2")
	// c2 still holds id 1 in memory, sees id 2 in DNS, and finds it in the
	// shared cache.
	want(t, lookup(t, c2, "a.example"), mtasts.SourceCache, mtasts.Enforce, "2")
	if n := e.w.PolicyFetches("a.example"); n != 2 {
		t.Errorf("%d fetches", n)
	}
}

// Policy warnings are reported in the Result and logged, and change
// nothing (publicsuffix lints, never decides).
func TestLookupWarnings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "*.com")})
	c := e.client(nil)
	res := lookup(t, c, "a.example")
	if len(res.Warnings) != 1 || res.Warnings[0].Kind != mtasts.WarnWildcardPublicSuffix {
		t.Fatalf("warnings %v", res.Warnings)
	}
	if !res.Policy.Match("anything.com") {
		t.Error("the lint changed matching")
	}
	if !strings.Contains(e.logs.String(), "policy warning") {
		t.Error("warning not logged")
	}
	if res := lookup(t, c, "a.example"); len(res.Warnings) != 1 {
		t.Errorf("cached result warnings %v", res.Warnings)
	}
}

// countingCache counts the calls a Client makes to its Cache.
type countingCache struct {
	mtasts.Cache
	mu         sync.Mutex
	gets, puts int
}

func (c *countingCache) Get(ctx context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Cache.Get(ctx, key)
}

func (c *countingCache) Put(ctx context.Context, key string, data []byte) error {
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
	return c.Cache.Put(ctx, key, data)
}

func (c *countingCache) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets, c.puts
}

// A cache hit is served by the decoded layer: no Get, no parse, and no
// Put except the daily last-use stamp.
func TestLookupDecodedLayer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cc := &countingCache{Cache: mtasts.NewMemoryCache(10)}
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, 30*24*time.Hour, "mx.a.example")})
	c := e.client(cc)
	lookup(t, c, "a.example")
	gets, puts := cc.counts()
	for range 10 {
		want(t, lookup(t, c, "a.example"), mtasts.SourceCache, mtasts.Enforce, "1")
	}
	if g, p := cc.counts(); g != gets || p != puts {
		t.Errorf("cache hits cost %d Gets and %d Puts", g-gets, p-puts)
	}
	e.clk.Advance(25 * time.Hour)
	lookup(t, c, "a.example")
	lookup(t, c, "a.example")
	if _, p := cc.counts(); p != puts+1 {
		t.Errorf("%d Puts for the last-use stamp, want 1", p-puts)
	}
}
