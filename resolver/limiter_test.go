package resolver_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// countingLimiter counts its Waits and refuses once refuse is set.
type countingLimiter struct {
	waits  atomic.Int64
	refuse atomic.Bool
}

var errRefused = errors.New("limiter refuses")

func (c *countingLimiter) Wait(ctx context.Context) error {
	if c.refuse.Load() {
		return errRefused
	}
	c.waits.Add(1)
	return ctx.Err()
}

// TestLimiterEveryUpstreamQuery checks that Stub and Validating wait on
// their Limiter once per query the World's DNS front receives, the
// validator's DS and DNSKEY queries included, and send nothing once the
// limiter refuses.
func TestLimiterEveryUpstreamQuery(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("limit.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("@ MX 10 mail", "mail A 192.0.2.1")
	ctx := context.Background()
	for _, c := range []struct {
		name string
		make func(resolver.Limiter) resolver.Resolver
	}{
		{"stub", func(l resolver.Limiter) resolver.Resolver {
			return &resolver.Stub{Servers: []string{w.DNSAddr()}, Limiter: l}
		}},
		{"validating", func(l resolver.Limiter) resolver.Resolver {
			return &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors(), Limiter: l}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lim := &countingLimiter{}
			r := c.make(lim)
			before := w.QueryCount()
			dsBefore := w.QueryCountFor("limit.test", dns.TypeDS)
			a, err := r.Lookup(ctx, "limit.test.", dns.TypeMX)
			if err != nil || a.Security != resolver.Secure {
				t.Fatalf("lookup: %v %+v", err, a)
			}
			sent := w.QueryCount() - before
			if got := lim.waits.Load(); got != sent || sent == 0 {
				t.Errorf("%d waits for %d queries", got, sent)
			}
			if c.name == "validating" && w.QueryCountFor("limit.test", dns.TypeDS) == dsBefore {
				t.Errorf("no DS query counted: the test does not cover the chain of trust")
			}
			lim.refuse.Store(true)
			before = w.QueryCount()
			if _, err := r.Lookup(ctx, "mail.limit.test.", dns.TypeA); !errors.Is(err, errRefused) {
				t.Errorf("refusing limiter: err %v, want it wrapped", err)
			}
			if n := w.QueryCount() - before; n != 0 {
				t.Errorf("%d queries sent past a refusing limiter", n)
			}
		})
	}
}
