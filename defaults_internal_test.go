package smtptls

import (
	"testing"

	"github.com/smtptls/smtptls/resolver"
)

// TestZeroEvaluatorCacheDefaults: the zero Evaluator's caches keep every
// bound at its default (the memory bounds sized for 100,000 domains and
// more, no count bounds): a bound set where it builds them would shadow
// those defaults, as the resolver cache's 10,000 answers once did.
func TestZeroEvaluatorCacheDefaults(t *testing.T) {
	e := &Evaluator{}
	e.init()
	c, ok := e.res.(*resolver.Cache)
	if !ok {
		t.Fatalf("the default resolver is a %T, want a *resolver.Cache", e.res)
	}
	if c.MaxBytes != 0 || c.MaxEntries != 0 {
		t.Errorf("resolver.Cache bounds MaxBytes %d, MaxEntries %d; want the defaults (zero)", c.MaxBytes, c.MaxEntries)
	}
	v, ok := c.Resolver.(*resolver.Validating)
	if !ok {
		t.Fatalf("the default upstream is a %T, want a *resolver.Validating", c.Resolver)
	}
	if v.CacheBytes != 0 || v.CacheSize != 0 {
		t.Errorf("resolver.Validating bounds CacheBytes %d, CacheSize %d; want the defaults (zero)", v.CacheBytes, v.CacheSize)
	}
	if e.sts == nil || e.sts.Cache != nil || e.sts.DecodedBytes != 0 {
		t.Errorf("the default MTA-STS client sets a Cache or a DecodedBytes bound: %+v", e.sts)
	}
}
