package smtptls_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// decisionSummary is what a delivery depends on in a Decision, for
// comparing the warm and cold paths.
func decisionSummary(dec *smtptls.Decision, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s secure=%v cname=%q implicit=%v\n", dec.Domain, dec.MXSecure, dec.MXCNAME, dec.ImplicitMX)
	if p := dec.STSPolicy(); p != nil {
		fmt.Fprintf(&b, "sts %s %v\n", p.Mode, p.MX)
	}
	hosts := slices.Clone(dec.Hosts)
	slices.SortFunc(hosts, func(a, b *smtptls.Host) int { return strings.Compare(a.Name, b.Name) })
	for _, h := range hosts {
		fmt.Fprintf(&b, "%s pref=%d addrs=%v sec=%v level=%v excluded=%v", h.Name, h.Preference,
			slices.SortedFunc(slices.Values(h.Addrs), netip.Addr.Compare), h.AddrSecurity, h.Level, h.Excluded)
		if h.Err != nil {
			var e *smtptls.Error
			errors.As(h.Err, &e)
			fmt.Fprintf(&b, " err=%v/%s", e.Kind, e.Result)
		}
		if h.DANE != nil {
			fmt.Fprintf(&b, " dane=%v base=%s records=%d", h.DANE.Level, h.DANE.Base, len(h.DANE.Records))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestWarmPath checks that a warm Evaluate (every MX and DANE answer
// cached, decided on the calling goroutine) decides exactly as the cold
// path does, failures included, and that a missing answer sends it back
// to the cold path.
func TestWarmPath(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	scenarios := map[string]smtptlstest.Scenario{
		"dane-ee":        {DANE: smtptlstest.DANEEndEntity, MX: 2},
		"dane-ta-sts":    {DANE: smtptlstest.DANETrustAnchor, STS: smtptlstest.STSEnforce, MX: 2},
		"unusable":       {DANE: smtptlstest.DANEUnusable, STS: smtptlstest.STSTesting},
		"sts-unsigned":   {STS: smtptlstest.STSEnforce, MX: 2, Unsigned: true},
		"sts-mismatch":   {STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSTSMXMismatch},
		"tlsa-servfail":  {DANE: smtptlstest.DANEEndEntity, MX: 2, Misconfig: smtptlstest.MisTLSAServFail},
		"tlsa-bogus":     {DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisTLSABogus},
		"policy-404":     {STS: smtptlstest.STSEnforce, Misconfig: smtptlstest.MisPolicyNotFound},
		"opportunistic":  {},
		"sts-none-dane":  {DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSNone},
		"dane-mismatch":  {DANE: smtptlstest.DANEMismatch, STS: smtptlstest.STSEnforce},
		"unsigned-dane":  {DANE: smtptlstest.DANEEndEntity, Unsigned: true},
		"testing-no-mx2": {STS: smtptlstest.STSTesting, MX: 3},
	}
	for name, s := range scenarios {
		w.AddDomain(name+".test", s)
	}
	ctx := context.Background()
	// A clock that stands still: cached answers, cached failures
	// included, cannot expire between the two evaluations.
	now := time.Now()
	clock := func() time.Time { return now }
	for name := range scenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := &resolver.Cache{Resolver: w.Resolver(), Now: clock}
			ev := &smtptls.Evaluator{
				Resolver: r,
				STS:      &mtasts.Client{Resolver: r, HTTPClient: w.HTTPClient(), Logger: discard},
				Roots:    w.CA().Pool(),
				Logger:   discard,
			}
			d := name + ".test"
			if _, err := ev.EvaluateCached(ctx, d); !errors.Is(err, smtptls.ErrNotCached) {
				t.Fatalf("warm path with nothing cached: %v", err)
			}
			cold := decisionSummary(ev.Evaluate(ctx, d))
			warm := decisionSummary(ev.EvaluateCached(ctx, d))
			if warm != cold {
				t.Errorf("warm path decided\n%s\ncold path\n%s", warm, cold)
			}
			if again := decisionSummary(ev.Evaluate(ctx, d)); again != cold {
				t.Errorf("second Evaluate decided\n%s\nfirst\n%s", again, cold)
			}
		})
	}
}

// TestWarmPathMiss: with the MX RRset cached and the hosts' addresses
// expired, the warm path gives up and Evaluate asks again.
func TestWarmPathMiss(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("miss.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	z.MustAdd("@ 3600 MX 10 mx", "mx 60 A 192.0.2.1")
	now := time.Now()
	r := &resolver.Cache{Resolver: w.Resolver(), Now: func() time.Time { return now }}
	ev := &smtptls.Evaluator{Resolver: r, DisableSTS: true, Logger: discard}
	ctx := context.Background()
	if dec, err := ev.Evaluate(ctx, "miss.test"); err != nil || len(dec.Deliverable()) != 1 {
		t.Fatalf("%v %v", dec, err)
	}
	if _, err := ev.EvaluateCached(ctx, "miss.test"); err != nil {
		t.Fatalf("warm path after a cold Evaluate: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := ev.EvaluateCached(ctx, "miss.test"); !errors.Is(err, smtptls.ErrNotCached) {
		t.Fatalf("warm path with the address expired: %v", err)
	}
	before := w.QueryCountFor("mx.miss.test", 0)
	if dec, err := ev.Evaluate(ctx, "miss.test"); err != nil || len(dec.Deliverable()) != 1 {
		t.Fatalf("%v %v", dec, err)
	}
	if w.QueryCountFor("mx.miss.test", 0) == before {
		t.Error("Evaluate did not look the expired addresses up again")
	}
}
