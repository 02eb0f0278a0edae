package rawserver

import (
	"net"
	"testing"
)

// ListenPair listens on 127.0.0.1 for UDP and TCP on one port chosen by
// the kernel, as a DNS server does. The kernel picks a free UDP port; its
// TCP twin may be taken on a busy machine, so ListenPair tries again with
// another port (at most 20 times). The caller closes both.
func ListenPair(tb testing.TB) (net.PacketConn, net.Listener) {
	tb.Helper()
	var err error
	for range 20 {
		pc, perr := net.ListenPacket("udp", "127.0.0.1:0")
		if perr != nil {
			tb.Fatal(perr)
		}
		ln, lerr := net.Listen("tcp", pc.LocalAddr().String())
		if lerr == nil {
			return pc, ln
		}
		pc.Close()
		err = lerr
	}
	tb.Fatal(err)
	return nil, nil
}
