package postfixlab

import (
	"context"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	t.Parallel()
	n := 0
	if !Poll(context.Background(), func() bool { n++; return n == 3 }) || n != 3 {
		t.Errorf("true on the third call: Poll called it %d times", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*PollInterval)
	defer cancel()
	t0 := time.Now()
	if Poll(ctx, func() bool { return false }) {
		t.Error("never true: Poll reported true")
	}
	if d := time.Since(t0); d < 3*PollInterval {
		t.Errorf("Poll gave up after %v, before its context ended", d)
	}
}
