package dane_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/dane"
)

// FuzzFromDNS decodes TLSA RDATA as a server could send it and converts
// it: never a panic, and a record whose data did not decode is unusable.
func FuzzFromDNS(f *testing.F) {
	for _, s := range []string{
		"x. 300 IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"x. 300 IN TLSA 2 0 0 3082",
		"x. 300 IN TLSA 255 255 255 00",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		buf := make([]byte, 1024)
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf[:n])
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		rr, _, err := dns.UnpackRR(wire, 0)
		if err != nil {
			return
		}
		tl, ok := rr.(*dns.TLSA)
		if !ok {
			return
		}
		r := dane.FromDNS(tl)
		if len(r.Data) == 0 && r.Usable() {
			t.Fatalf("record without data is usable: %v", tl)
		}
	})
}
