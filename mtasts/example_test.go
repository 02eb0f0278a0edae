package mtasts_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// ExampleClient_Lookup looks up the policy of a domain in a test world
// (real DNS and HTTPS on loopback) and checks MX hosts against it.
func ExampleClient_Lookup() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	z := w.AddZone("example.com", smtptlstest.ZoneConfig{})
	z.MustAdd(`_mta-sts TXT "v=STSv1; id=20260301"`)
	w.SetPolicy("example.com", smtptlstest.Policy{
		Body: "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.backup.example.com\nmax_age: 604800\n",
	})

	c := &mtasts.Client{
		Resolver:   w.Resolver(),
		HTTPClient: w.HTTPClient(), // trusts the world's CA
		Cache:      mtasts.NewMemoryCache(1000),
	}
	ctx := context.Background()
	res, err := c.Lookup(ctx, "Example.COM.")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Domain, res.Source, res.ID, res.Policy.Mode, res.Policy.MaxAge)
	for _, mx := range []string{"mx1.example.com", "a.backup.example.com", "mx.attacker.example"} {
		fmt.Println(mx, res.Policy.Match(mx))
	}

	// The next lookup finds the same id in DNS and uses the cache.
	res, _ = c.Lookup(ctx, "example.com")
	fmt.Println(res.Source)
	// Output:
	// example.com fetch 20260301 enforce 168h0m0s
	// mx1.example.com true
	// a.backup.example.com true
	// mx.attacker.example false
	// cache
}

// BenchmarkLookupCacheHit measures a lookup whose TXT answer comes from a
// resolver cache and whose policy comes from the Client's decoded layer:
// the cost an MTA pays per message for a domain it knows.
func BenchmarkLookupCacheHit(b *testing.B) {
	w := smtptlstest.New(b)
	z := w.AddZone("example.com", smtptlstest.ZoneConfig{})
	z.MustAdd(`_mta-sts 86400 TXT "v=STSv1; id=1"`)
	w.SetPolicy("example.com", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.example.com")})
	c := &mtasts.Client{
		Resolver:   &resolver.Cache{Resolver: w.Resolver(), MaxTTL: time.Hour},
		HTTPClient: w.HTTPClient(),
		Logger:     slog.New(slog.DiscardHandler),
	}
	ctx := context.Background()
	if res, err := c.Lookup(ctx, "example.com"); err != nil || res.Source != mtasts.SourceFetch {
		b.Fatal(res, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Lookup(ctx, "example.com")
		if err != nil || res.Source != mtasts.SourceCache {
			b.Fatal(res, err)
		}
	}
}
