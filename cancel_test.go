package smtptls_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestCancelAtEveryStage ends the caller's context at each stage of a
// decision — before it starts, during the MX, address, TLSA and MTA-STS
// TXT lookups and during the policy fetch — for a domain protected by
// DANE and MTA-STS enforce, and for one protected by MTA-STS enforce
// alone, whose policy the sender has cached. Evaluate must
// return promptly, and never with a weaker decision than the one it makes
// undisturbed: an error (defer), or hosts that still require
// authenticated TLS. Afterwards nothing may be left running (leakcheck:
// the detached policy fetch ends within the Client's FetchTimeout).
func TestCancelAtEveryStage(t *testing.T) {
	leakcheck.Check(t)
	stages := []struct {
		name string
		// stall makes the stage wait far beyond the context.
		stall func(w *smtptlstest.World, d *smtptlstest.Domain)
	}{
		{"before the query", nil},
		{"during the MX lookup", func(w *smtptlstest.World, d *smtptlstest.Domain) {
			w.SetFault(d.Name, dns.TypeMX, smtptlstest.FaultDelay)
		}},
		{"during the address lookup", func(w *smtptlstest.World, d *smtptlstest.Domain) {
			w.SetFault(d.MX[0].Host(), dns.TypeA, smtptlstest.FaultDelay)
		}},
		{"during the TLSA lookup", func(w *smtptlstest.World, d *smtptlstest.Domain) {
			w.SetFault("_25._tcp."+d.MX[0].Host(), dns.TypeTLSA, smtptlstest.FaultDelay)
		}},
		{"during the MTA-STS TXT lookup", func(w *smtptlstest.World, d *smtptlstest.Domain) {
			w.SetFault("_mta-sts."+d.Name, dns.TypeTXT, smtptlstest.FaultDelay)
		}},
		{"during the policy fetch", func(w *smtptlstest.World, d *smtptlstest.Domain) {
			// A new id forces a fetch, which the host stalls.
			d.Zone.Remove("_mta-sts", dns.TypeTXT)
			d.Zone.MustAdd(`_mta-sts TXT "v=STSv1; id=2"`)
			w.SetPolicy(d.Name, smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmx: " + d.MX[0].Host() + "\nmax_age: 86400\n", Delay: time.Minute})
		}},
	}
	scenarios := map[string]smtptlstest.Scenario{
		"dane+sts": {DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce},
		"sts only": {STS: smtptlstest.STSEnforce, Unsigned: true},
	}
	for sname, scen := range scenarios {
		for _, st := range stages {
			t.Run(sname+"/"+st.name, func(t *testing.T) {
				t.Parallel()
				cancelAt(t, scen, st.stall)
			})
		}
	}
}

func cancelAt(t *testing.T, scen smtptlstest.Scenario, stall func(w *smtptlstest.World, d *smtptlstest.Domain)) {
	{
		{
			w := smtptlstest.New(t)
			dom := w.AddDomain("victim.test", scen)
			r := w.Resolver()
			r.Timeout = 10 * time.Second
			sts := &mtasts.Client{Resolver: r, HTTPClient: w.HTTPClient(), Logger: discard, FetchTimeout: time.Second}
			ev := &smtptls.Evaluator{Resolver: r, STS: sts, Roots: w.CA().Pool(), Logger: discard}
			// Undisturbed, and the policy is cached from now on.
			d, err := ev.Evaluate(context.Background(), "victim.test")
			if err != nil {
				t.Fatal(err)
			}
			if hs := d.Deliverable(); len(hs) == 0 || !hs[0].RequireTLS() || d.STSPolicy() == nil {
				t.Fatalf("undisturbed decision %+v", d)
			}
			w.SetFaultDelay(time.Minute)
			ctx, cancel := context.WithCancel(context.Background())
			if stall == nil {
				cancel()
			} else {
				stall(w, dom)
				time.AfterFunc(200*time.Millisecond, cancel)
			}
			defer cancel()
			start := time.Now()
			d, err = ev.Evaluate(ctx, "victim.test")
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("Evaluate took %v after its context ended", el)
			}
			if err != nil {
				var e *smtptls.Error
				if !errors.As(err, &e) || !e.Temporary() {
					t.Errorf("error %v (%T): want a temporary *smtptls.Error", err, err)
				}
				return
			}
			for _, h := range d.Deliverable() {
				if !h.RequireTLS() || !h.Level.Authenticates() {
					t.Errorf("DOWNGRADE: host %s at level %v after the context ended (STS %+v)", h.Name, h.Level, d.STS)
				}
			}
		}
	}
}

// TestEvaluateNameWithoutMTASTS: a domain with an underscore is a mail
// domain (dnsname.Mail accepts '_' as Postfix does): Evaluate decides,
// and without a published policy none applies.
func TestEvaluateNameWithoutMTASTS(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("odd.test", smtptlstest.ZoneConfig{})
	w.AddMX("mx.odd.test", smtptlstest.SMTPConfig{})
	z.MustAdd("under_score MX 10 mx.odd.test.")
	ev := &smtptls.Evaluator{Resolver: w.Resolver(), STS: &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: discard}, Roots: w.CA().Pool(), Logger: discard}
	d, err := ev.Evaluate(context.Background(), "under_score.odd.test")
	if err != nil {
		t.Fatal(err)
	}
	if d.STS != nil && d.STS.Policy != nil || len(d.Deliverable()) != 1 {
		t.Errorf("decision %+v", d)
	}
}
