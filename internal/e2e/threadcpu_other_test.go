//go:build !linux

package e2e_test

import "time"

// threadCPUTime reports false: the platform's thread CPU clock is not
// used here; callers measure wall time instead.
func threadCPUTime() (time.Duration, bool) { return 0, false }
