//go:build linux

package e2e_test

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTimeID is Linux's CLOCK_THREAD_CPUTIME_ID.
const clockThreadCPUTimeID = 3

// threadCPUTime returns the CPU time the calling OS thread has used, so
// that a benchmark on a shared machine counts its own work and not the
// time other processes held the CPU. The caller locks its goroutine to
// its thread (runtime.LockOSThread). ok is false when the clock is
// unavailable.
func threadCPUTime() (d time.Duration, ok bool) {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
