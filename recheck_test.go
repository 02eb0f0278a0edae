package smtptls_test

import (
	"context"
	"testing"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
)

// TestEvaluatorRecheck: RFC 8461 5 asks a sender to look for an updated
// policy before an enforce failure becomes permanent. Recheck finds a
// policy fixed under the same id, which Evaluate does not (the cached
// policy is fresh), and asks the policy host only where Evaluate would
// consult MTA-STS at all (issue 13 point 9).
func TestEvaluatorRecheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	z := w.zone("recheck.test", false)
	w.mx("mx.recheck.test")
	z.MustAdd("@ MX 10 mx.recheck.test.")
	// The policy lists the wrong host: under enforce the MX is excluded.
	w.sts(z, "recheck.test", "enforce", "mx.old.recheck.test")
	newEv := func(mod func(*smtptls.Evaluator)) *smtptls.Evaluator {
		ev := &smtptls.Evaluator{
			Resolver: w.Resolver(),
			STS:      &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: discard},
			Roots:    w.CA().Pool(),
			Logger:   discard,
		}
		if mod != nil {
			mod(ev)
		}
		return ev
	}
	fetches := func() int { return w.PolicyFetches("recheck.test") }

	t.Run("finds the fixed policy", func(t *testing.T) {
		ev := newEv(nil)
		d, err := ev.Evaluate(ctx, "recheck.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Deliverable()) != 0 || !d.Hosts[0].Excluded {
			t.Fatalf("host not excluded: %+v", d.Hosts[0])
		}
		// The publisher fixes the policy without changing the id.
		w.sts(z, "recheck.test", "enforce", "mx.recheck.test")
		if d, err = ev.Evaluate(ctx, "recheck.test"); err != nil || !d.Hosts[0].Excluded {
			t.Fatalf("Evaluate bypassed the cached policy: %+v, %v", d, err)
		}
		before := fetches()
		d, err = ev.Recheck(ctx, "recheck.test")
		if err != nil {
			t.Fatal(err)
		}
		if fetches() != before+1 {
			t.Errorf("Recheck made %d fetches, want 1", fetches()-before)
		}
		if hs := d.Deliverable(); len(hs) != 1 || hs[0].Level != smtptls.STSEnforce {
			t.Errorf("after Recheck: %+v", d.Hosts[0])
		}
		// Evaluate now applies the rechecked policy from the cache.
		if d, err = ev.Evaluate(ctx, "recheck.test"); err != nil || len(d.Deliverable()) != 1 {
			t.Errorf("the rechecked policy was not cached: %+v, %v", d, err)
		}
	})

	for _, c := range []struct {
		name string
		mod  func(*smtptls.Evaluator)
	}{
		{"DisableSTS", func(ev *smtptls.Evaluator) { ev.DisableSTS = true }},
		{"override", func(ev *smtptls.Evaluator) {
			ev.Overrides = map[string]smtptls.Override{"ReCheck.Test.": {Mode: smtptls.OverrideMay}}
		}},
	} {
		t.Run("no fetch with "+c.name, func(t *testing.T) {
			ev := newEv(c.mod)
			before := fetches()
			d, err := ev.Recheck(ctx, "recheck.test")
			if err != nil {
				t.Fatal(err)
			}
			if n := fetches() - before; n != 0 {
				t.Errorf("Recheck fetched the policy %d times where MTA-STS does not apply", n)
			}
			if d.STS != nil {
				t.Errorf("decision has an MTA-STS result: %+v", d.STS)
			}
		})
	}
}
