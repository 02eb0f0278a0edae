package resolver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzChase feeds arbitrary bytes, as a recursive server could send them,
// through the answer walk of Stub.Lookup: it must never panic, never return
// records of another type or name, and never follow more than MaxCNAMEs
// links.
func FuzzChase(f *testing.F) {
	seed := func(qname string, qtype uint16, rcode int, rrs ...string) {
		q := new(dns.Msg)
		q.SetQuestion(qname, qtype)
		b, err := reply(q, rcode, true, rrs...).Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, qtype)
	}
	seed("a.test.", dns.TypeA, dns.RcodeSuccess, "a.test. 300 IN A 192.0.2.1")
	seed("a.test.", dns.TypeA, dns.RcodeSuccess, "a.test. 300 IN CNAME b.test.", "b.test. 300 IN CNAME a.test.")
	seed("a.test.", dns.TypeTLSA, dns.RcodeNameError, "a.test. 300 IN CNAME b.test.", "test. 300 IN SOA ns.test. h.test. 1 2 3 4 5")
	seed("a.test.", dns.TypeTXT, dns.RcodeSuccess, "A.TEST. 300 IN TXT \"x\" \"y\"", "c.test. 300 IN TXT \"z\"")
	f.Fuzz(func(t *testing.T, msg []byte, qtype uint16) {
		r := new(dns.Msg)
		if err := r.Unpack(msg); err != nil {
			return
		}
		c := chase{ans: &Answer{Name: "a.test.", Type: qtype}, ttl: 1 << 31, cur: "a.test."}
		for range MaxCNAMEs + 2 {
			done, err := c.step(r)
			if err != nil || done {
				break
			}
		}
		if len(c.ans.CNAMEs) > MaxCNAMEs {
			t.Fatalf("followed %d links", len(c.ans.CNAMEs))
		}
		for _, rr := range c.ans.Records {
			if rr.Header().Rrtype != qtype || !strings.EqualFold(rr.Header().Name, c.ans.Target()) {
				t.Fatalf("stray record %v for %s", rr, c.ans.Target())
			}
		}
	})
}
