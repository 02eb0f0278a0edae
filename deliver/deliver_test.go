package deliver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

const body = "From: a@sender.test\r\nSubject: hi\r\n\r\nHello.\r\n"

func msg(to ...string) *deliver.Message {
	return &deliver.Message{From: "a@sender.test", To: to, Body: strings.NewReader(body), Size: int64(len(body))}
}

func run(t *testing.T, c *deliver.Client, m *deliver.Message) *deliver.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Deliver(ctx, m)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	return res
}

func wantStatus(t *testing.T, res *deliver.Result, st deliver.Status, enhanced string) {
	t.Helper()
	for _, r := range res.Rcpts {
		if r.Status != st || enhanced != "" && r.Enhanced != enhanced {
			t.Fatalf("%s: %v %d %s %s; want %v %s (tries %+v)", r.To, r.Status, r.Code, r.Enhanced, r.Text, st, enhanced, res.Tries)
		}
	}
}

func withReports(c *deliver.Client) *tlsrpt.Aggregator {
	c.Reports = &tlsrpt.Aggregator{}
	return c.Reports
}

func failures(agg *tlsrpt.Aggregator) (results []tlsrpt.ResultType, success int64) {
	for _, rep := range agg.Reports(time.Now(), "o", "mailto:x@o.test") {
		for _, p := range rep.Policies {
			success += p.Summary.TotalSuccessfulSessionCount
			for _, f := range p.FailureDetails {
				results = append(results, f.ResultType)
			}
		}
	}
	return results, success
}

// TestDeliverDANE: one connection (no second one to learn the
// extensions), STARTTLS, verified, both recipients in one transaction, a
// success recorded to TLS-RPT.
func TestDeliverDANE(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("dane.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	c := w.Client()
	agg := withReports(c)
	res := run(t, c, msg("b@dane.test", "c@DANE.test"))
	wantStatus(t, res, deliver.Delivered, "2.0.0")
	if !res.TLS || res.Verdict.String() != "verified" || res.Host != "mx1.dane.test" || len(res.Tries) != 1 {
		t.Errorf("result %+v", res)
	}
	if n := d.MX[0].Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	dl := d.MX[0].Deliveries()
	if len(dl) != 1 || len(dl[0].To) != 2 || !dl[0].TLS || string(dl[0].Data) != body {
		t.Fatalf("deliveries %+v", dl)
	}
	if dl[0].Hello != "client.smtptlstest.invalid" {
		t.Errorf("EHLO %q", dl[0].Hello)
	}
	if dl[0].Mail.Size != int64(len(body)) {
		t.Errorf("SIZE %d", dl[0].Mail.Size)
	}
	if f, ok := failures(agg); len(f) != 0 || ok != 1 {
		t.Errorf("TLS-RPT failures %v, successes %d", f, ok)
	}
}

// TestEvaluateOutcomes: null MX and NXDOMAIN bounce, an MX lookup failure
// and a cancelled evaluation defer.
func TestEvaluateOutcomes(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("null.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("@ 300 IN MX 0 .")
	w.AddZone("exists.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	w.AddDomain("servfail.test", smtptlstest.Scenario{})
	w.SetFault("servfail.test", dns.TypeMX, smtptlstest.FaultServFail)
	w.AddDomain("ok.test", smtptlstest.Scenario{})
	c := w.Client()
	wantStatus(t, run(t, c, msg("b@null.test")), deliver.Bounced, "5.1.10")
	wantStatus(t, run(t, c, msg("b@nosuch.exists.test")), deliver.Bounced, "5.1.2")
	wantStatus(t, run(t, c, msg("b@servfail.test")), deliver.Deferred, "4.4.3")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := c.Deliver(ctx, msg("b@ok.test"))
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, res, deliver.Deferred, "")
}

// TestMisuse: the error is only for misuse.
func TestMisuse(t *testing.T) {
	t.Parallel()
	c := &deliver.Client{}
	for name, m := range map[string]*deliver.Message{
		"no recipients":   msg(),
		"several domains": msg("a@one.test", "b@two.test"),
		"nil body":        {From: "a@b.test", To: []string{"c@d.test"}},
		"bad ret":         {From: "a@b.test", To: []string{"c@d.test"}, Body: strings.NewReader(""), Ret: "ALL"},
	} {
		if _, err := c.Deliver(context.Background(), m); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestUnusableHostsDeferAndReport: MTA-STS enforce excludes the only MX:
// deferred, no connection, the failure recorded to TLS-RPT; a non-final
// attempt never rechecks.
func TestUnusableHostsDeferAndReport(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("sts.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSTSMXMismatch})
	c := w.Client()
	agg := withReports(c)
	res := run(t, c, msg("b@sts.test"))
	wantStatus(t, res, deliver.Deferred, "4.7.5")
	if !strings.Contains(res.Rcpts[0].Text, "MTA-STS") || len(res.Tries) != 0 || d.MX[0].Connections() != 0 {
		t.Errorf("result %+v, %d connections", res, d.MX[0].Connections())
	}
	if f, _ := failures(agg); len(f) != 1 || f[0] != tlsrpt.ValidationFailure {
		t.Errorf("TLS-RPT failures %v", f)
	}
	fetches := w.PolicyFetches("sts.test")
	run(t, c, msg("b@sts.test"))
	if n := w.PolicyFetches("sts.test"); n != fetches {
		t.Errorf("a non-final attempt fetched the policy (%d -> %d)", fetches, n)
	}
}

// TestFinalRechecks: a Final attempt rechecks the MTA-STS policy once and
// delivers when it changed; unchanged, the recipient stays Deferred.
func TestFinalRechecks(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("sts.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSTSMXMismatch})
	c := w.Client()
	m := msg("b@sts.test")
	m.Final = true
	fetches := w.PolicyFetches("sts.test")
	res := run(t, c, m)
	wantStatus(t, res, deliver.Deferred, "")
	if n := w.PolicyFetches("sts.test"); n != fetches+2 {
		t.Errorf("policy fetched %d times, want 2 (evaluate, recheck)", n-fetches)
	}
	// The domain fixes its policy.
	d.Zone.Remove("_mta-sts", dns.TypeTXT)
	d.Zone.MustAdd(`_mta-sts 300 IN TXT "v=STSv1; id=2"`)
	w.SetPolicy("sts.test", smtptlstest.Policy{Body: "version: STSv1\r\nmode: enforce\r\nmax_age: 604800\r\nmx: mx1.sts.test\r\n"})
	m.Body = strings.NewReader(body)
	res = run(t, c, m)
	wantStatus(t, res, deliver.Delivered, "")
	if len(d.MX[0].Deliveries()) != 1 {
		t.Error("not delivered after the recheck")
	}
}
