package resolver

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

func TestSmoke(t *testing.T) {
	w := newWorld(t)
	w.zone("test.", twCfg{signing: twNSEC3OptOut})
	w.zone("example.test.", twCfg{signing: twNSEC3}, "@ MX 10 mail", "mail A 127.0.0.1", "www CNAME mail", "*.wild A 127.0.0.2", "out CNAME host.unsigned.test.")
	w.zone("nsec.test.", twCfg{signing: twNSEC}, "@ MX 10 mail", "mail A 127.0.0.1", "*.wild A 127.0.0.2")
	w.zone("unsigned.test.", twCfg{}, "host A 127.0.0.3")
	w.seal()
	s := w.serve(t, nil)
	v := w.validator(s)
	for _, q := range []struct{ n string; t uint16 }{
		{"example.test", dns.TypeMX}, {"mail.example.test", dns.TypeA}, {"www.example.test", dns.TypeA},
		{"x.wild.example.test", dns.TypeA}, {"nosuch.example.test", dns.TypeA}, {"mail.example.test", dns.TypeTXT},
		{"out.example.test", dns.TypeA}, {"host.unsigned.test", dns.TypeA}, {"nosuch.test", dns.TypeA},
		{"nsec.test", dns.TypeMX}, {"x.wild.nsec.test", dns.TypeA}, {"nosuch.nsec.test", dns.TypeA}, {"mail.nsec.test", dns.TypeTXT},
		{"unsigned.test", dns.TypeDS}, {"example.test", dns.TypeDS},
	} {
		a, err := v.Lookup(context.Background(), q.n, q.t)
		if err != nil {
			t.Errorf("%s %s: %v", q.n, dns.TypeToString[q.t], err)
			continue
		}
		t.Logf("%s %s: %v nx=%v %d recs cnames=%v ttl=%v", q.n, dns.TypeToString[q.t], a.Security, a.NXDomain, len(a.Records), a.CNAMEs, a.TTL)
	}
	t.Logf("%+v", v.Stats())
}
