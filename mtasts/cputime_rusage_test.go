//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package mtasts

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user and system) of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
