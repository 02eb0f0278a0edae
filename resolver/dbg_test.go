package resolver

import (
	"context"
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

func TestDbg(t *testing.T) {
	w := newWorld(t)
	w.zone("test.", twCfg{signing: twNSEC3OptOut})
	w.zone("alg13.test.", twCfg{signing: twNSEC}, twLeaf...)
	w.seal()
	for i := range 60 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			s := w.serve(t, nil)
			v := w.validator(s)
			_, err := v.Lookup(context.Background(), "alg13.test", dns.TypeMX)
			if err != nil {
				t.Error(err, s.queries.Load())
			}
		})
	}
}
