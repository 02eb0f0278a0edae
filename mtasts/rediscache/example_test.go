package rediscache_test

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/mtasts/rediscache"
)

// Every MTA of the fleet shares one store and runs one Refresher; the
// delivery Client does not run its own RefreshLoop.
func Example() {
	ctx := context.Background()
	store := &rediscache.Cache{
		Client: redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}),
		Prefix: "mail-fleet:mtasts:",
	}
	sts := &mtasts.Client{Cache: store} // the delivery client
	refresher := &rediscache.Refresher{
		Cache: store,
		NewClient: func(c mtasts.Cache) *mtasts.Client {
			// Configured like sts (Resolver, HTTPClient, Logger...).
			return &mtasts.Client{Cache: c}
		},
	}
	go refresher.Loop(ctx, 24*time.Hour)

	if res, err := sts.Lookup(ctx, "example.org"); err == nil && res.Policy != nil {
		_ = res.Policy.Match("mx1.example.org")
	}
}
