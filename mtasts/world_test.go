package mtasts_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// These tests run Client against a real world: DNS over loopback sockets
// and HTTPS with real certificates, from the smtptlstest kit. Time for
// expiry, back-off and pruning comes from a fake clock; network timeouts
// and certificate validity use the real one.

// clock is a fake clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuf collects log output for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// env is one world with the zone "example." and a fake clock.
type env struct {
	t    testing.TB
	w    *smtptlstest.World
	z    *smtptlstest.Zone
	clk  *clock
	logs *logBuf
}

func newEnv(t testing.TB) *env {
	t.Helper()
	w := smtptlstest.New(t)
	return &env{t: t, w: w, z: w.AddZone("example", smtptlstest.ZoneConfig{}), clk: newClock(), logs: &logBuf{}}
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// client returns a Client on the world; cache nil means the default.
func (e *env) client(cache mtasts.Cache) *mtasts.Client {
	return &mtasts.Client{
		Resolver:   e.w.Resolver(),
		HTTPClient: e.w.HTTPClient(),
		Cache:      cache,
		Now:        e.clk.Now,
		Logger:     e.logger(),
	}
}

// setTXT replaces the TXT RRset at _mta-sts.<name>.example; each record is
// a list of character-strings. No records removes it.
func (e *env) setTXT(name string, records ...[]string) {
	e.t.Helper()
	owner := "_mta-sts." + name
	e.z.Remove(owner, dns.TypeTXT)
	for _, strs := range records {
		e.z.MustAdd(txtLine(owner, strs...))
	}
}

// setID publishes one STS record with id.
func (e *env) setID(name, id string) {
	e.setTXT(name, []string{"v=STSv1; id=" + id})
}

// txtLine writes a TXT record in zone-file syntax, escaping every byte
// outside printable ASCII as \DDD (RFC 1035 5.1).
func txtLine(owner string, strs ...string) string {
	var b strings.Builder
	b.WriteString(owner + " TXT")
	for _, s := range strs {
		b.WriteString(` "`)
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < ' ' || c > '~':
				fmt.Fprintf(&b, "\\%03d", c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

func policy(mode mtasts.Mode, maxAge time.Duration, mx ...string) string {
	s := fmt.Sprintf("version: STSv1\nmode: %s\nmax_age: %d\n", mode, int64(maxAge/time.Second))
	for _, m := range mx {
		s += "mx: " + m + "\n"
	}
	return s
}

// resolverWithTimeout is the world's stub resolver with a short timeout,
// for tests that make the DNS front stay silent.
type resolverWithTimeout struct{ w *smtptlstest.World }

func (r *resolverWithTimeout) Lookup(ctx context.Context, name string, qtype uint16) (*resolver.Answer, error) {
	s := &resolver.Stub{Servers: []string{r.w.DNSAddr()}, Timeout: 200 * time.Millisecond}
	return s.Lookup(ctx, name, qtype)
}
