package smtptlstest_test

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

// BenchmarkNewWorld15Zones measures the start of a World with 15 zones of
// every signing kind (ECDSA), records in each, and one query per zone.
func BenchmarkNewWorld15Zones(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		w := smtptlstest.NewWorld()
		for i := range 15 {
			cfg := smtptlstest.ZoneConfig{Signing: smtptlstest.Signing(i % 4)}
			z := w.AddZone(fmt.Sprintf("zone%d.tld%d", i, i%3), cfg)
			z.MustAdd("@ MX 10 mx", "mx A 192.0.2.1", "_25._tcp.mx TLSA 3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
			exchange(b, w, q{name: "_25._tcp.mx." + z.Name(), qtype: dns.TypeTLSA, do: true})
		}
		w.Close()
	}
}

// BenchmarkQuery measures a repeated signed query (cached signatures).
func BenchmarkQuery(b *testing.B) {
	w := smtptlstest.New(b)
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}).MustAdd("www A 192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		exchange(b, w, q{name: "nope.example.test", qtype: dns.TypeA, do: true, udp: true})
	}
}
