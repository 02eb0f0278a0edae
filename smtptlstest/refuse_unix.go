//go:build unix

package smtptlstest

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// newRefuser binds a TCP socket on 127.0.0.1 without listening on it:
// connecting to its port is refused by the kernel, and no other process
// can take the port while the World lives.
func newRefuser() (*refuser, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return refusedFallback()
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return refusedFallback()
	}
	sa, err := syscall.Getsockname(fd)
	in4, ok := sa.(*syscall.SockaddrInet4)
	if err != nil || !ok {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserving a refused port: %v", err)
	}
	return &refuser{
		addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port)),
		close: func() error { return syscall.Close(fd) },
	}, nil
}
