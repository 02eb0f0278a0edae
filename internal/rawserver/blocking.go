package rawserver

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// BlockingResolver runs a recursive resolver on loopback (UDP) that
// answers every question with an empty NOERROR: it passes no DNSSEC
// records, as a network that blocks them does. It returns its address;
// it stops when the test ends.
func BlockingResolver(tb testing.TB) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	tb.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}
