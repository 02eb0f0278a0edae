package smtptls_test

import (
	"context"
	"fmt"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
)

// An Evaluator decides, for each MX host of a recipient domain, what TLS
// the delivery requires. Here it runs against an offline world built with
// the test kit smtptlstest (signed DNS, a test CA, MTA-STS and SMTP servers
// on loopback): one domain protected by DANE, one by MTA-STS alone.
func ExampleEvaluator_Evaluate() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	w.AddDomain("dane.example", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, MX: 2})
	w.AddDomain("sts.example", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})

	// The zero Evaluator validates DNSSEC itself and trusts the system
	// roots; this one is wired to the world instead.
	ev := &smtptls.Evaluator{
		Resolver: w.Resolver(),
		STS:      &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient()},
		Roots:    w.CA().Pool(),
	}
	for _, domain := range []string{"dane.example", "sts.example"} {
		dec, err := ev.Evaluate(context.Background(), domain)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, h := range dec.Deliverable() { // the hosts to try, in order
			fmt.Println(h.Name, h.Level)
		}
	}
	// Output:
	// mx1.dane.example dane
	// mx2.dane.example dane
	// mx1.sts.example sts-enforce
}
