package smtptls_test

import (
	"context"
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
