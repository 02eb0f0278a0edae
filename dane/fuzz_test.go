package dane_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/dane"
)

// FuzzFromDNS decodes TLSA RDATA as a server could send it and converts
// it: never a panic, and the record keeps exactly the fields and the
// association data bytes of the wire (a conversion that dropped, cut or
// mangled data would turn a record into another, or make it usable).
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
	// RDLENGTH 1: only the usage octet (3), which miekg/dns unpacks.
	f.Add([]byte{0, 0, 52, 0, 1, 0, 0, 0, 0, 0, 1, 3})
	f.Fuzz(func(t *testing.T, wire []byte) {
		rr, end, err := dns.UnpackRR(wire, 0)
		if err != nil {
			return
		}
		tl, ok := rr.(*dns.TLSA)
		if !ok {
			return
		}
		rdlen := int(tl.Hdr.Rdlength)
		if rdlen > end {
			t.Fatalf("unpacked a TLSA record with RDLENGTH %d ending at %d", rdlen, end)
		}
		rdata := wire[end-rdlen : end]
		// miekg/dns accepts RDATA cut short (fewer than the 3 fixed
		// octets): the missing fields are zero and there is no data.
		var fields [3]byte
		copy(fields[:], rdata)
		var data []byte
		if len(rdata) > 3 {
			data = rdata[3:]
		}
		r := dane.FromDNS(tl)
		if r.Usage != fields[0] || r.Selector != fields[1] || r.MatchingType != fields[2] || !bytes.Equal(r.Data, data) {
			t.Fatalf("FromDNS(% x) = %d %d %d % x", rdata, r.Usage, r.Selector, r.MatchingType, r.Data)
		}
		if len(data) == 0 && r.Usable() {
			t.Fatalf("record without data is usable: % x", rdata)
		}
	})
}

// FuzzFromDNSText converts records built from text, where the data is a
// hex string that may be invalid (zone files, callers building records):
// data that is not valid hex must leave the record without data, and so
// unusable — never a record made of the part that decoded.
func FuzzFromDNSText(f *testing.F) {
	digest := strings.Repeat("ab", 32)
	for _, s := range []string{digest, digest + "zz", digest + "a", "", "0", "3082", "AB" + digest[2:], "g" + digest[1:]} {
		f.Add(uint8(3), uint8(1), uint8(1), s)
	}
	f.Fuzz(func(t *testing.T, usage, selector, matching uint8, data string) {
		r := dane.FromDNS(&dns.TLSA{Usage: usage, Selector: selector, MatchingType: matching, Certificate: data})
		want, err := hex.DecodeString(data)
		if err != nil {
			if len(r.Data) != 0 || r.Usable() {
				t.Fatalf("invalid hex %q became % x (usable %v)", data, r.Data, r.Usable())
			}
			return
		}
		if !bytes.Equal(r.Data, want) {
			t.Fatalf("hex %q became % x", data, r.Data)
		}
	})
}
