package rediscache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/smtptls/smtptls/mtasts"
)

const (
	// DefaultPrefix is the key prefix of a Cache whose Prefix is empty.
	DefaultPrefix = "smtptls:mtasts:"
	// DefaultTTL is the Redis expiry of a Cache whose TTL is zero: the
	// largest max_age a policy may carry (RFC 8461 3.2). An entry's policy
	// expires at most max_age after its fetch, and every fetch is followed
	// by a Put, which sets the expiry again; so Redis never drops an entry
	// whose policy is still live, and drops it at most a year after its
	// last write.
	DefaultTTL = mtasts.MaxMaxAge
	// DefaultTimeout bounds each Redis command of a Cache whose Timeout is
	// zero.
	DefaultTimeout = 2 * time.Second
	// MaxEntrySize bounds what a Cache stores and reads back: a policy
	// body (at most mtasts.MaxPolicySize) and the Client's header.
	MaxEntrySize = mtasts.MaxPolicySize + 4096
	// MaxKeySize bounds keys: the Client's keys are domain names (at most
	// 253 bytes).
	MaxKeySize = 255
)

// Cache is an mtasts.Cache and mtasts.Lister in Redis, shared by every
// MTA that uses the same Redis and Prefix. Entries are opaque bytes
// written by mtasts.Client; each one is a Redis string at
// Prefix+"policy:"+key with an expiry (TTL). Prefix+"refresh:"+key holds
// the refresh claims of a Refresher.
//
// Set the fields before first use and do not change them afterwards. A
// Cache is safe for concurrent use.
//
// Configure Redis with "maxmemory-policy noeviction" (or no maxmemory): a
// Redis that evicts keys under memory pressure may evict a live enforce
// policy, and whoever can make the MTAs look up many domains of their own
// can cause that pressure. With noeviction, a full Redis fails writes
// (the Client logs them) and keeps every stored policy.
type Cache struct {
	// Client is the Redis client: a *redis.Client, *redis.ClusterClient,
	// *redis.Ring or failover client. Required.
	Client redis.UniversalClient

	// Prefix namespaces the keys. Empty means DefaultPrefix. MTAs that
	// should share policies use the same Prefix; separate fleets on one
	// Redis use separate ones.
	Prefix string

	// TTL is the expiry set on an entry at each Put. Zero means
	// DefaultTTL; a negative TTL stores entries without expiry (the
	// Client's Refresh still deletes expired and unused ones). A TTL
	// shorter than a policy's max_age drops live policies early: their
	// domains return to trust on first use.
	TTL time.Duration

	// Timeout bounds each Redis command, in addition to the caller's
	// context. Zero means DefaultTimeout. The Client reads a failed Get as
	// a miss (it then fetches the policy), so a slow Redis costs at most
	// this per lookup.
	Timeout time.Duration
}

var (
	_ mtasts.Cache  = (*Cache)(nil)
	_ mtasts.Lister = (*Cache)(nil)
)

// Kind says why a Cache operation failed.
type Kind uint8

const (
	// KindRedis: the Redis command failed or timed out (Err).
	KindRedis Kind = iota + 1
	// KindTooLarge: an entry larger than MaxEntrySize, stored or found.
	KindTooLarge
	// KindBadKey: an empty key, or one longer than MaxKeySize.
	KindBadKey
	// KindConfig: the Cache or Refresher is not usable as configured.
	KindConfig
)

var kindNames = [...]string{
	KindRedis:    "redis command failed",
	KindTooLarge: "entry too large",
	KindBadKey:   "bad key",
	KindConfig:   "misconfigured",
}

// String returns a short description of the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is the error of a Cache or Refresher operation. The
// mtasts.ErrCacheMiss of Get is returned as is, never wrapped in an
// Error.
type Error struct {
	// Kind says what went wrong.
	Kind Kind
	// Op is the operation: "get", "put", "delete", "keys", "claim".
	Op string
	// Key is the cache key, when there is one.
	Key string
	// Size is the entry size, for KindTooLarge.
	Size int64
	// Err is the underlying error, for KindRedis.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := "rediscache: " + e.Op
	if e.Key != "" {
		s += " " + fmt.Sprintf("%q", e.Key)
	}
	s += ": " + e.Kind.String()
	if e.Kind == KindTooLarge {
		s += fmt.Sprintf(" (%d bytes, limit %d)", e.Size, MaxEntrySize)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func (c *Cache) prefix() string {
	if c.Prefix == "" {
		return DefaultPrefix
	}
	return c.Prefix
}

func (c *Cache) entryKey(key string) string { return c.prefix() + "policy:" + key }
func (c *Cache) claimKey(key string) string { return c.prefix() + "refresh:" + key }

// opContext bounds one command.
func (c *Cache) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	t := c.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	return context.WithTimeout(ctx, t)
}

func (c *Cache) check(op, key string) error {
	if c.Client == nil {
		return &Error{Kind: KindConfig, Op: op, Key: key, Err: errors.New("no Redis client")}
	}
	if key == "" || len(key) > MaxKeySize {
		return &Error{Kind: KindBadKey, Op: op, Key: key}
	}
	return nil
}

// Get implements mtasts.Cache. It reads at most MaxEntrySize bytes: a
// larger value (which no Client writes) is an error, not a truncated
// entry, and never costs more memory than the limit.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := c.check("get", key); err != nil {
		return nil, err
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	k := c.entryKey(key)
	// STRLEN and a bounded GETRANGE in one transaction see the same
	// value; an empty string and a missing key both read as a miss.
	var size *redis.IntCmd
	var val *redis.StringCmd
	_, err := c.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		size = p.StrLen(ctx, k)
		val = p.GetRange(ctx, k, 0, MaxEntrySize)
		return nil
	})
	if err != nil {
		return nil, &Error{Kind: KindRedis, Op: "get", Key: key, Err: err}
	}
	n := size.Val()
	switch {
	case n == 0:
		return nil, mtasts.ErrCacheMiss
	case n > MaxEntrySize:
		return nil, &Error{Kind: KindTooLarge, Op: "get", Key: key, Size: n}
	}
	return []byte(val.Val()), nil
}

// Put implements mtasts.Cache: it stores data under key with the TTL.
func (c *Cache) Put(ctx context.Context, key string, data []byte) error {
	if err := c.check("put", key); err != nil {
		return err
	}
	if len(data) > MaxEntrySize {
		return &Error{Kind: KindTooLarge, Op: "put", Key: key, Size: int64(len(data))}
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	ttl := c.TTL
	switch {
	case ttl == 0:
		ttl = DefaultTTL
	case ttl < 0:
		ttl = 0 // no expiry
	}
	if err := c.Client.Set(ctx, c.entryKey(key), data, ttl).Err(); err != nil {
		return &Error{Kind: KindRedis, Op: "put", Key: key, Err: err}
	}
	return nil
}

// Delete implements mtasts.Cache.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := c.check("delete", key); err != nil {
		return err
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	if err := c.Client.Del(ctx, c.entryKey(key)).Err(); err != nil {
		return &Error{Kind: KindRedis, Op: "delete", Key: key, Err: err}
	}
	return nil
}

// Keys implements mtasts.Lister: the keys of every entry under Prefix,
// found with SCAN (on every master of a cluster, every shard of a ring).
// The whole scan shares one Timeout per SCAN call.
func (c *Cache) Keys(ctx context.Context) ([]string, error) {
	if c.Client == nil {
		return nil, &Error{Kind: KindConfig, Op: "keys", Err: errors.New("no Redis client")}
	}
	pattern := globEscape(c.prefix()+"policy:") + "*"
	strip := len(c.prefix() + "policy:")
	seen := map[string]bool{}
	var keys []string
	scan := func(ctx context.Context, r redis.Cmdable) error {
		var cursor uint64
		for {
			octx, cancel := c.opContext(ctx)
			ks, next, err := r.Scan(octx, cursor, pattern, 1000).Result()
			cancel()
			if err != nil {
				return err
			}
			for _, k := range ks {
				if len(k) < strip {
					continue
				}
				if k = k[strip:]; !seen[k] && k != "" {
					seen[k] = true
					keys = append(keys, k)
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	switch cl := c.Client.(type) {
	case *redis.ClusterClient:
		// ForEachMaster runs concurrently; the scans share keys and seen.
		var mu sync.Mutex
		err = cl.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, m)
		})
	case *redis.Ring:
		var mu sync.Mutex
		err = cl.ForEachShard(ctx, func(ctx context.Context, s *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, s)
		})
	default:
		err = scan(ctx, c.Client)
	}
	if err != nil {
		return nil, &Error{Kind: KindRedis, Op: "keys", Err: err}
	}
	return keys, nil
}

// globEscape escapes the characters SCAN's MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
