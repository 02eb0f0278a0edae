// Package leakcheck finds goroutines a test leaves behind.
//
// Check snapshots the goroutines that exist when a test starts and, when
// the test ends, waits for every goroutine started since to finish. A
// goroutine still running after the settle time is a leak: its stack is
// printed and the test fails. Goroutines that belong to the runtime and the
// testing package are never counted.
//
// The snapshot counts every goroutine of the process, so a test that
// calls Check must not run in parallel with other tests (no t.Parallel,
// in it or in its package's other top-level tests that run at the same
// time): top-level tests without t.Parallel run one at a time, before the
// parallel ones start. Subtests of a checked test may be parallel.
package leakcheck

import (
	"bytes"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DefaultSettle is how long Check waits for goroutines to end. Servers
// and transports close their connections asynchronously; a few seconds
// covers them even on a loaded machine under the race detector.
const DefaultSettle = 10 * time.Second

// Check fails t if goroutines started during the test are still running
// DefaultSettle after it ended (after the cleanups registered before Check
// have run, since cleanups run last-in first-out: call Check first).
func Check(t testing.TB) {
	t.Helper()
	s := Take()
	t.Cleanup(func() {
		if leaked := s.Leaked(DefaultSettle); len(leaked) > 0 {
			t.Errorf("leakcheck: %d goroutine(s) leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	})
}

// A Snapshot is the set of goroutines running at one moment.
type Snapshot struct {
	ids map[uint64]bool
}

// Take records the goroutines running now.
func Take() *Snapshot {
	s := &Snapshot{ids: make(map[uint64]bool)}
	for _, g := range goroutines() {
		s.ids[g.id] = true
	}
	return s
}

// Leaked waits up to settle for the goroutines started after s was taken
// to end, and returns the stacks of those still running, or nil.
func (s *Snapshot) Leaked(settle time.Duration) []string {
	deadline := time.Now().Add(settle)
	wait := time.Millisecond
	for {
		var leaked []string
		for _, g := range goroutines() {
			if !s.ids[g.id] && !ignored(g.stack) {
				leaked = append(leaked, g.stack)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			slices.Sort(leaked)
			return leaked
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}

type goroutine struct {
	id    uint64
	stack string
}

// goroutines returns every goroutine but the caller's.
func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for i, block := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // the goroutine calling runtime.Stack
		}
		line, _, _ := bytes.Cut(block, []byte("\n"))
		// "goroutine 123 [chan receive]:"
		f := strings.Fields(string(line))
		if len(f) < 2 || f[0] != "goroutine" {
			continue
		}
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, goroutine{id: id, stack: string(block)})
	}
	return out
}

// ignored reports goroutines that are not the test's: the testing
// package's own, and the runtime's.
func ignored(stack string) bool {
	_, body, _ := strings.Cut(stack, "\n")
	top, _, _ := strings.Cut(body, "\n")
	for _, p := range []string{
		"testing.(*T).Run(",
		"testing.(*T).Parallel(",
		"testing.(*F).Fuzz(",
		"testing.runTests(",
		"testing.tRunner(",
		"testing.(*M).",
		"runtime.goexit",
		"os/signal.signal_recv",
		"os/signal.loop",
		"runtime.ensureSigM",
	} {
		if strings.HasPrefix(top, p) {
			return true
		}
	}
	return false
}
