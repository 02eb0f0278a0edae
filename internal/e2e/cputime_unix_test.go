//go:build unix

package e2e_test

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user and system) the process has used
// so far, every thread included, and true; or false where the platform
// has no getrusage.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
