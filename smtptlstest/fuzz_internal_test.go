package smtptlstest

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzRespond feeds arbitrary queries, as a hostile client may send them,
// to the front's answer logic: it must never panic and always produce a
// message that packs.
func FuzzRespond(f *testing.F) {
	for _, q := range []struct {
		name   string
		qtype  uint16
		do, cd bool
	}{
		{"www.example.test.", dns.TypeA, true, false},
		{"nope.example.test.", dns.TypeTXT, true, true},
		{"a.b.wild.example.test.", dns.TypeANY, false, false},
		{"example.test.", dns.TypeDS, true, true},
		{".", dns.TypeDNSKEY, true, true},
		{"x.sub.example.test.", dns.TypeNS, false, true},
		{"loop.example.test.", dns.TypeA, true, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.CheckingDisabled = q.cd
		m.SetEdns0(1232, q.do)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	w := NewWorld()
	defer w.Close()
	w.AddZone("example.test", ZoneConfig{Signing: NSEC3})
	w.AddZone("sub.example.test", ZoneConfig{Signing: NSEC})
	w.Zone("example.test").MustAdd("www A 192.0.2.1", "*.wild TXT w", "loop CNAME loop", "lame NS ns.invalid.")
	w.SetFault("www.example.test", 0, FaultBadSignature|FaultWrongDS|FaultPartialChain)
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(b); err != nil || len(req.Question) != 1 {
			return
		}
		q := req.Question[0]
		resp := w.respond(req, q, strings.ToLower(q.Name), Fault(len(b))&(FaultServFail|FaultPartialChain))
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("response does not pack: %v\n%v", err, resp)
		}
	})
}
