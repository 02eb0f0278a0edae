package e2e_test

import (
	"crypto/tls"
	"log/slog"
	"testing"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
)

// discard silences the Evaluators, clients and caches whose logs a suite
// does not read.
var discard = slog.New(slog.DiscardHandler)

// world is a test world with helpers to publish DANE and MTA-STS domains
// by hand, for the invariant tests that build what no Scenario describes.
// (The root's decision table has its own copy: test helpers cross no
// package boundary.)
type world struct {
	t *testing.T
	*smtptlstest.World
}

func newWorld(t *testing.T) *world { return &world{t, smtptlstest.New(t)} }

func (w *world) zone(name string, signed bool) *smtptlstest.Zone {
	cfg := smtptlstest.ZoneConfig{}
	if signed {
		cfg.Signing = smtptlstest.NSEC
	}
	return w.AddZone(name, cfg)
}

// mx starts an SMTP server for host with a CA-issued certificate and
// returns it with the certificate.
func (w *world) mx(host string) (*smtptlstest.SMTPServer, *tls.Certificate) {
	cert, err := w.CA().Issue(smtptlstest.CertOptions{}, host)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.AddMX(host, smtptlstest.SMTPConfig{Certificate: cert}), cert
}

// sts publishes an MTA-STS record and policy for domain in zone z.
func (w *world) sts(z *smtptlstest.Zone, domain, mode string, mx ...string) {
	z.MustAdd(`_mta-sts 300 IN TXT "v=STSv1; id=20261128"`)
	body := "version: STSv1\nmode: " + mode + "\nmax_age: 86400\n"
	for _, m := range mx {
		body += "mx: " + m + "\n"
	}
	w.SetPolicy(domain, smtptlstest.Policy{Body: body})
}

func (w *world) evaluator() *smtptls.Evaluator {
	return &smtptls.Evaluator{
		Resolver: w.Resolver(),
		STS:      &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient()},
		Roots:    w.CA().Pool(),
	}
}
