//go:build !unix

package e2e_test

import "time"

// cpuTime reports false: the platform has no getrusage.
func cpuTime() (time.Duration, bool) { return 0, false }
