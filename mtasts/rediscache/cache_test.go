package rediscache_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/mtasts/rediscache"
	"github.com/smtptls/smtptls/smtptlstest"
)

var discard = slog.New(slog.DiscardHandler)

func TestCache(t *testing.T) {
	t.Parallel()
	rc := newRedisClient(t)
	ctx := context.Background()
	errKind := func(err error) rediscache.Kind {
		var e *rediscache.Error
		if errors.As(err, &e) {
			return e.Kind
		}
		return 0
	}
	tests := []struct {
		name string
		run  func(t *testing.T, c *rediscache.Cache)
	}{
		{"miss", func(t *testing.T, c *rediscache.Cache) {
			if _, err := c.Get(ctx, "example.org"); !errors.Is(err, mtasts.ErrCacheMiss) {
				t.Errorf("Get of a missing key: %v, want ErrCacheMiss", err)
			}
		}},
		{"put get overwrite delete", func(t *testing.T, c *rediscache.Cache) {
			for _, v := range []string{"first", "second"} {
				if err := c.Put(ctx, "example.org", []byte(v)); err != nil {
					t.Fatal(err)
				}
				if got, err := c.Get(ctx, "example.org"); err != nil || string(got) != v {
					t.Fatalf("Get = %q, %v; want %q", got, err, v)
				}
			}
			if err := c.Delete(ctx, "example.org"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(ctx, "example.org"); !errors.Is(err, mtasts.ErrCacheMiss) {
				t.Errorf("Get after Delete: %v", err)
			}
			if err := c.Delete(ctx, "example.org"); err != nil {
				t.Errorf("Delete of a missing key: %v", err)
			}
		}},
		{"largest entry", func(t *testing.T, c *rediscache.Cache) {
			big := bytes.Repeat([]byte{'x'}, rediscache.MaxEntrySize)
			if err := c.Put(ctx, "big.example", big); err != nil {
				t.Fatal(err)
			}
			if got, err := c.Get(ctx, "big.example"); err != nil || !bytes.Equal(got, big) {
				t.Fatalf("Get of a %d-byte entry: %d bytes, %v", len(big), len(got), err)
			}
		}},
		{"entry too large to put", func(t *testing.T, c *rediscache.Cache) {
			if err := c.Put(ctx, "big.example", make([]byte, rediscache.MaxEntrySize+1)); errKind(err) != rediscache.KindTooLarge {
				t.Errorf("Put: %v, want KindTooLarge", err)
			}
		}},
		{"entry too large to get", func(t *testing.T, c *rediscache.Cache) {
			// Written by something other than a Client: refused, not
			// truncated.
			rc.Set(ctx, c.Prefix+"policy:huge.example", strings.Repeat("x", 1<<20), time.Minute)
			if got, err := c.Get(ctx, "huge.example"); errKind(err) != rediscache.KindTooLarge || got != nil {
				t.Errorf("Get: %d bytes, %v; want KindTooLarge", len(got), err)
			}
		}},
		{"wrong type", func(t *testing.T, c *rediscache.Cache) {
			rc.RPush(ctx, c.Prefix+"policy:list.example", "a")
			if _, err := c.Get(ctx, "list.example"); errKind(err) != rediscache.KindRedis {
				t.Errorf("Get of a list: %v, want KindRedis", err)
			}
		}},
		{"bad keys", func(t *testing.T, c *rediscache.Cache) {
			for _, k := range []string{"", strings.Repeat("a", rediscache.MaxKeySize+1)} {
				if _, err := c.Get(ctx, k); errKind(err) != rediscache.KindBadKey {
					t.Errorf("Get(%d bytes): %v", len(k), err)
				}
				if err := c.Put(ctx, k, []byte("x")); errKind(err) != rediscache.KindBadKey {
					t.Errorf("Put(%d bytes): %v", len(k), err)
				}
			}
		}},
		{"default TTL", func(t *testing.T, c *rediscache.Cache) {
			c.Put(ctx, "ttl.example", []byte("x"))
			ttl := rc.PTTL(ctx, c.Prefix+"policy:ttl.example").Val()
			if ttl > rediscache.DefaultTTL || ttl < rediscache.DefaultTTL-time.Minute {
				t.Errorf("PTTL %v, want about %v", ttl, rediscache.DefaultTTL)
			}
		}},
		{"no expiry", func(t *testing.T, c *rediscache.Cache) {
			c.TTL = -1
			c.Put(ctx, "forever.example", []byte("x"))
			if ttl := rc.TTL(ctx, c.Prefix+"policy:forever.example").Val(); ttl != -1 {
				t.Errorf("TTL %v, want none (-1)", ttl)
			}
		}},
		{"keys", func(t *testing.T, c *rediscache.Cache) {
			want := []string{"a.example", "b.example", "xn--bcher-kva.example"}
			for _, k := range want {
				c.Put(ctx, k, []byte("x"))
			}
			// Neither a claim nor another prefix's entry is a key.
			rc.Set(ctx, c.Prefix+"refresh:a.example", "mta1", time.Minute)
			other := &rediscache.Cache{Client: rc, Prefix: c.Prefix + "other:"}
			other.Put(ctx, "c.example", []byte("x"))
			got, err := c.Keys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("Keys = %q, want %q", got, want)
			}
		}},
		{"glob characters in the prefix", func(t *testing.T, c *rediscache.Cache) {
			c.Prefix += `we*ird?[x]\:`
			c.Put(ctx, "a.example", []byte("x"))
			// A key that the unescaped pattern would match.
			rc.Set(ctx, strings.TrimSuffix(c.Prefix, `we*ird?[x]\:`)+"weXirdYx:policy:b.example", "x", time.Minute)
			got, err := c.Keys(ctx)
			if err != nil || !slices.Equal(got, []string{"a.example"}) {
				t.Errorf("Keys = %q, %v", got, err)
			}
		}},
		{"redis down", func(t *testing.T, c *rediscache.Cache) {
			c.Client = newDeadClient(t)
			c.Timeout = 200 * time.Millisecond
			if _, err := c.Get(ctx, "a.example"); errKind(err) != rediscache.KindRedis || errors.Is(err, mtasts.ErrCacheMiss) {
				t.Errorf("Get: %v, want KindRedis", err)
			}
			if err := c.Put(ctx, "a.example", []byte("x")); errKind(err) != rediscache.KindRedis {
				t.Errorf("Put: %v", err)
			}
			if _, err := c.Keys(ctx); errKind(err) != rediscache.KindRedis {
				t.Errorf("Keys: %v", err)
			}
		}},
		{"no client", func(t *testing.T, c *rediscache.Cache) {
			c.Client = nil
			if _, err := c.Get(ctx, "a.example"); errKind(err) != rediscache.KindConfig {
				t.Errorf("Get: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, &rediscache.Cache{Client: rc, Prefix: testPrefix(t)})
		})
	}
}

// TestSharedStore: MTAs sharing the store share policies. A second MTA,
// starting with an empty memory, applies the policy the first one
// fetched, without fetching it, even while the TXT lookup fails and the
// policy host is gone (RFC 8461 5).
func TestSharedStore(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddDomain("sts.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
	prefix := testPrefix(t)
	newMTA := func() *mtasts.Client {
		return &mtasts.Client{
			Resolver:   w.Resolver(),
			HTTPClient: w.HTTPClient(),
			Cache:      &rediscache.Cache{Client: newRedisClient(t), Prefix: prefix},
			Logger:     discard,
		}
	}
	ctx := context.Background()
	r1, err := newMTA().Lookup(ctx, "sts.test")
	if err != nil || r1.Policy == nil || r1.Source != mtasts.SourceFetch {
		t.Fatalf("first MTA: %+v, %v", r1, err)
	}
	if n := w.PolicyFetches("sts.test"); n != 1 {
		t.Fatalf("%d fetches after the first MTA", n)
	}
	r2, err := newMTA().Lookup(ctx, "sts.test")
	if err != nil || r2.Policy == nil || r2.Source != mtasts.SourceCache {
		t.Fatalf("second MTA: %+v, %v; want the shared policy", r2, err)
	}
	w.SetFault("_mta-sts.sts.test", dns.TypeTXT, smtptlstest.FaultServFail)
	w.RemovePolicy("sts.test")
	r3, err := newMTA().Lookup(ctx, "sts.test")
	if err != nil || r3.Policy == nil || r3.Policy.Mode != mtasts.Enforce {
		t.Fatalf("third MTA with TXT SERVFAIL: %+v, %v; want the stored enforce policy", r3, err)
	}
	if n := w.PolicyFetches("sts.test"); n != 1 {
		t.Errorf("%d fetches in all, want 1", n)
	}
}
