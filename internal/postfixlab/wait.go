package postfixlab

import (
	"context"
	"testing"
	"time"
)

// PollInterval is how often Poll and WaitFor look at their condition.
const PollInterval = 100 * time.Millisecond

// Poll calls cond at once and then every PollInterval until it returns
// true, and reports true; or until ctx ends, and reports false.
func Poll(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// WaitFor is Poll that fails tb ("timed out waiting for what") when ctx
// ends first.
func WaitFor(ctx context.Context, tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if !Poll(ctx, cond) {
		tb.Fatalf("timed out waiting for %s", what)
	}
}
