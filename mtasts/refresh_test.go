package mtasts_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
)

// RFC 8461 10.2: refresh live policies proactively, even when the id is
// unchanged; prune what is unused; keep what fails.
func TestRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := mtasts.DirCache(t.TempDir())
	for _, d := range []string{"a", "b", "none", "short"} {
		e.setID(d, "1")
	}
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, 30*24*time.Hour, "mx.a.example")})
	e.w.SetPolicy("b.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, 30*24*time.Hour, "mx.b.example")})
	e.w.SetPolicy("none.example", smtptlstest.Policy{Body: policy(mtasts.None, 30*24*time.Hour)})
	e.w.SetPolicy("short.example", smtptlstest.Policy{Body: policy(mtasts.Testing, time.Hour, "mx.short.example")})
	c := e.client(dir)
	c.PruneAfter = 10 * 24 * time.Hour
	for _, d := range []string{"a", "b", "none", "short"} {
		lookup(t, c, d+".example")
	}

	// a: changed without a new id; b: its host fails; none: fails too.
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, 30*24*time.Hour, "mx.a.example", "mx2.a.example")})
	e.w.SetPolicy("b.example", smtptlstest.Policy{Status: 500})
	e.w.SetPolicy("none.example", smtptlstest.Policy{Status: 500})
	e.clk.Advance(2 * time.Hour) // short.example has expired
	if err := c.Refresh(bg); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b", "none"} {
		if n := e.w.PolicyFetches(d + ".example"); n != 2 {
			t.Errorf("%s.example fetched %d times, want 2", d, n)
		}
	}
	if n := e.w.PolicyFetches("short.example"); n != 1 {
		t.Errorf("expired short.example fetched %d times", n)
	}
	keys, err := dir.Keys(bg)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"a.example", "b.example", "none.example"}) {
		t.Errorf("keys after refresh %q", keys)
	}
	// A fresh client (restart) sees the refreshed policy without a fetch.
	c2 := e.client(dir)
	c2.PruneAfter = c.PruneAfter
	res := lookup(t, c2, "a.example")
	want(t, res, mtasts.SourceCache, mtasts.Enforce, "1")
	if !res.Policy.Match("mx2.a.example") {
		t.Error("refresh did not replace the policy")
	}
	want(t, lookup(t, c2, "b.example"), mtasts.SourceCache, mtasts.Enforce, "1")
	logs := e.logs.String()
	if !strings.Contains(logs, "level=WARN msg=\"mtasts: policy refresh failed") || !strings.Contains(logs, "domain=b.example") {
		t.Errorf("refresh failure of an enforce policy not logged as a warning:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "refresh failed") && strings.Contains(line, "domain=none.example") && !strings.Contains(line, "level=INFO") {
			t.Errorf("mode none refresh failure logged as %q", line)
		}
	}

	// A refresh is not a use: unused entries are pruned after PruneAfter,
	// although refreshing kept them live. a.example is used by c2 on day
	// 8, b.example only on day 0.
	for day := 1; day <= 12; day++ {
		e.clk.Advance(24 * time.Hour)
		if day == 8 {
			lookup(t, c2, "a.example")
		}
		if err := c2.Refresh(bg); err != nil {
			t.Fatal(err)
		}
	}
	if keys, err = dir.Keys(bg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"a.example"}) {
		t.Errorf("keys after pruning %q", keys)
	}
	if !strings.Contains(e.logs.String(), "pruning unused policy") {
		t.Error("pruning not logged")
	}
}

// Refresh works from memory when the Cache cannot list its keys, and
// honours its context.
type unlistedCache struct{ mtasts.Cache }

func TestRefreshUnlisted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	c := e.client(unlistedCache{mtasts.NewMemoryCache(10)})
	lookup(t, c, "a.example")
	if err := c.Refresh(bg); err != nil {
		t.Fatal(err)
	}
	if n := e.w.PolicyFetches("a.example"); n != 2 {
		t.Errorf("%d fetches", n)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if err := c.Refresh(ctx); err == nil {
		t.Error("Refresh with a cancelled context succeeded")
	}
	if err := c.RefreshLoop(ctx, time.Hour); err != context.Canceled {
		t.Errorf("RefreshLoop: %v", err)
	}
}

func TestRefreshLoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("a", "1")
	e.w.SetPolicy("a.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, week, "mx.a.example")})
	c := e.client(nil)
	lookup(t, c, "a.example")
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error)
	go func() { done <- c.RefreshLoop(ctx, 20*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.w.PolicyFetches("a.example") < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("RefreshLoop returned %v", err)
	}
	if n := e.w.PolicyFetches("a.example"); n < 3 {
		t.Errorf("%d fetches: the loop did not refresh twice", n)
	}
}
