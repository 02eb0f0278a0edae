package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

func TestDbg(t *testing.T) {
	w := newWorld(t)
	w.zone("test.", twCfg{signing: twNSEC})
	w.zone("keytrap.test.", twCfg{signing: twNSEC, extraKeys: twCollidingKeys(20, 4242)}, twLeaf...)
	w.seal()
	r := w.resolve("keytrap.test.", dns.TypeMX)
	r.Answer = twFlood(r.Answer, 100, 4242)
	b, err := r.Pack()
	t.Log(len(b), err)
	r = w.resolve("keytrap.test.", dns.TypeDNSKEY)
	b, err = r.Pack()
	t.Log(len(b), err)
}
