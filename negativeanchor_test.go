package smtptls_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestNegativeTrustAnchorLetsMailOut: when a recipient's zone turns bogus
// (here its signatures expired), every lookup fails and its mail defers.
// A negative trust anchor (RFC 7646) on that zone, set while the MTA
// runs, makes its answers Insecure: the mail goes out with opportunistic
// TLS, or under the domain's MTA-STS policy, instead of deferring for
// days; DANE of other domains is untouched; lifting the NTA (and
// flushing the cache above the validator) makes the zone bogus again.
func TestNegativeTrustAnchorLetsMailOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, d := range []string{"broken.test", "brokensts.test", "fine.test"} {
		z := w.zone(d, true)
		z.MustAdd("@ MX 10 mx." + d + ".")
		_, cert := w.mx("mx." + d)
		z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx."+d+".", cert.Leaf, 3, 1, 1))
		if d == "brokensts.test" {
			w.sts(z, d, "enforce", "mx."+d)
		}
		if d != "fine.test" {
			z.SetFault(smtptlstest.FaultExpiredSigs)
		}
	}
	v := &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors(), Logger: discard}
	cache := &resolver.Cache{Resolver: v}
	ev := &smtptls.Evaluator{
		Resolver: cache,
		STS:      &mtasts.Client{Resolver: cache, HTTPClient: w.HTTPClient()},
		Roots:    w.CA().Pool(),
		Logger:   discard,
	}
	ctx := context.Background()
	levels := func(domain string) (string, error) {
		d, err := ev.Evaluate(ctx, domain)
		if err != nil {
			return "", err
		}
		hs := d.Deliverable()
		if len(hs) != 1 {
			return "", nil
		}
		return hs[0].Level.String(), nil
	}
	for _, d := range []string{"broken.test", "brokensts.test"} {
		if lvl, err := levels(d); err == nil {
			t.Fatalf("%s without an NTA: level %q, want a lookup error (defer)", d, lvl)
		}
	}
	ntas := []resolver.NegativeAnchor{
		{Zone: "broken.test", Expires: time.Now().Add(time.Hour)},
		{Zone: "brokensts.test", Expires: time.Now().Add(time.Hour)},
	}
	if err := v.SetNegativeAnchors(ntas); err != nil {
		t.Fatal(err)
	}
	for _, n := range ntas {
		cache.Flush(n.Zone)
	}
	for d, want := range map[string]string{
		"broken.test":    smtptls.Opportunistic.String(),
		"brokensts.test": smtptls.STSEnforce.String(),
		"fine.test":      smtptls.DANE.String(),
	} {
		if lvl, err := levels(d); err != nil || lvl != want {
			t.Errorf("%s under the NTA: level %q (%v), want %q", d, lvl, err, want)
		}
	}
	if err := v.SetNegativeAnchors(nil); err != nil {
		t.Fatal(err)
	}
	cache.Flush("broken.test")
	if lvl, err := levels("broken.test"); err == nil {
		t.Errorf("broken.test after the NTA is lifted: level %q, want a lookup error", lvl)
	}
}

// TestEvaluatorNegativeAnchors: the same lever on an Evaluator left at
// its defaults (Resolver nil). SetNegativeAnchors reaches the default
// validator and flushes the default cache for the zones of the NTAs set
// before and now, so that setting and lifting apply at the next Evaluate
// with no flush by the caller; an unusable NTA changes nothing; an
// Evaluator with its own Resolver refuses with ErrCustomResolver.
func TestEvaluatorNegativeAnchors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, d := range []string{"broken.test", "fine.test"} {
		z := w.zone(d, true)
		z.MustAdd("@ MX 10 mx." + d + ".")
		_, cert := w.mx("mx." + d)
		z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx."+d+".", cert.Leaf, 3, 1, 1))
		if d == "broken.test" {
			z.SetFault(smtptlstest.FaultExpiredSigs)
		}
	}
	ev := &smtptls.Evaluator{Roots: w.CA().Pool(), Logger: discard, DisableSTS: true}
	ev.PointDefaults([]string{w.DNSAddr()}, w.Anchors(), nil)
	ctx := context.Background()
	level := func(domain string) string {
		d, err := ev.Evaluate(ctx, domain)
		if err != nil {
			return "error"
		}
		if hs := d.Deliverable(); len(hs) == 1 {
			return hs[0].Level.String()
		}
		return "no host"
	}
	check := func(when string, want map[string]string) {
		t.Helper()
		for d, lvl := range want {
			if got := level(d); got != lvl {
				t.Errorf("%s: %s is %s, want %s", when, d, got, lvl)
			}
		}
	}
	dane, opp := smtptls.DANE.String(), smtptls.Opportunistic.String()
	check("no NTA", map[string]string{"broken.test": "error", "fine.test": dane})
	nta := []resolver.NegativeAnchor{{Zone: "Broken.Test.", Expires: time.Now().Add(time.Hour)}}
	if err := ev.SetNegativeAnchors(nta); err != nil {
		t.Fatal(err)
	}
	check("under the NTA", map[string]string{"broken.test": opp, "fine.test": dane})
	// An unusable entry changes nothing: the NTA in force stays.
	bad := []resolver.NegativeAnchor{{Zone: "fine.test"}, {Zone: "."}}
	err := ev.SetNegativeAnchors(bad)
	var ne *resolver.NegativeAnchorError
	if !errors.As(err, &ne) {
		t.Fatalf("unusable NTAs: %v, want a *resolver.NegativeAnchorError", err)
	}
	check("after a refused change", map[string]string{"broken.test": opp, "fine.test": dane})
	// Lifting it flushes the answers cached under it: no Flush here.
	if err := ev.SetNegativeAnchors(nil); err != nil {
		t.Fatal(err)
	}
	check("lifted", map[string]string{"broken.test": "error", "fine.test": dane})

	own := &smtptls.Evaluator{Resolver: w.Resolver(), Logger: discard}
	if err := own.SetNegativeAnchors(nta); !errors.Is(err, smtptls.ErrCustomResolver) {
		t.Errorf("an Evaluator with its own Resolver: %v, want ErrCustomResolver", err)
	}
}
