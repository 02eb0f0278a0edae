package smtptls_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// TestPolicyFailureReported: an MTA that records its sessions the
// documented way (Host.RecordSession for every host, usable or not)
// reports the domain's MTA-STS policy failure (RFC 8460 4.3.2.2): one
// failure-details count per evaluation, whatever the number of hosts,
// under the policy the decision applied, with the sessions' own counts
// unchanged (issue 13 point 7).
func TestPolicyFailureReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	w := newWorld(t)
	w.AddDomain("notfound.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, MX: 2, Misconfig: smtptlstest.MisPolicyNotFound})
	w.AddDomain("badcert.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, MX: 2, Misconfig: smtptlstest.MisPolicyBadCert})
	w.AddDomain("invalid.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, MX: 2})
	w.SetPolicy("invalid.test", smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmax_age: 86400\n"}) // enforce without mx
	w.AddDomain("cached.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, MX: 2})
	w.AddDomain("fine.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, MX: 2})

	// The Evaluator's clock is the aggregator's day; the client's clock
	// runs on (back-off and expiry use it).
	ev := &smtptls.Evaluator{
		Resolver: w.Resolver(),
		STS:      &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: discard},
		Roots:    w.CA().Pool(),
		Logger:   discard,
	}
	// The cached policy: fetched once, then the publisher changes the id
	// and breaks the policy host. The cached policy stays in force (RFC
	// 8461 5) and the failed fetch must be reported under it.
	if d, err := ev.Evaluate(ctx, "cached.test"); err != nil || d.STSPolicy() == nil {
		t.Fatalf("cached.test: %+v, %v", d, err)
	}
	w.Zone("cached.test").Remove("_mta-sts", dns.TypeTXT)
	w.Zone("cached.test").MustAdd(`_mta-sts 300 IN TXT "v=STSv1; id=2"`)
	w.SetPolicy("cached.test", smtptlstest.Policy{Status: 404})

	agg := &tlsrpt.Aggregator{}
	const evaluations = 2
	for range evaluations {
		for _, domain := range []string{"notfound.test", "badcert.test", "invalid.test", "cached.test", "fine.test"} {
			d, err := ev.Evaluate(ctx, domain)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range d.Hosts {
				// Every host is recorded, usable or not; the usable
				// ones as successful sessions, twice for the first
				// (a retry), to show the failure is not counted per
				// session either.
				h.RecordSession(agg, smtptls.Attempt{}, addr0(h), h.Err, now)
				if h == d.Hosts[0] {
					h.RecordSession(agg, smtptls.Attempt{}, addr0(h), h.Err, now)
				}
			}
		}
	}

	type want struct {
		typ    tlsrpt.PolicyType
		result tlsrpt.ResultType
		reason string
	}
	for domain, wt := range map[string]want{
		"notfound.test": {tlsrpt.PolicyNoPolicyFound, tlsrpt.STSPolicyFetchError, "http-status-404"},
		"badcert.test":  {tlsrpt.PolicyNoPolicyFound, tlsrpt.STSWebPKIInvalid, "certificate-not-valid"},
		"invalid.test":  {tlsrpt.PolicyNoPolicyFound, tlsrpt.STSPolicyInvalid, "invalid-policy"},
		"cached.test":   {tlsrpt.PolicySTS, tlsrpt.STSPolicyFetchError, "http-status-404"},
		"fine.test":     {tlsrpt.PolicySTS, "", ""},
	} {
		var rep *tlsrpt.Report
		for _, r := range agg.Reports(now, "o", "c") {
			if r.Policies[0].Policy.Domain == domain {
				rep = &r
			}
		}
		if rep == nil {
			t.Errorf("%s: no report", domain)
			continue
		}
		if len(rep.Policies) != 1 {
			t.Errorf("%s: %d policies, want the sessions and the failure under one: %+v", domain, len(rep.Policies), rep.Policies)
			continue
		}
		pr := rep.Policies[0]
		if pr.Policy.Type != wt.typ {
			t.Errorf("%s: policy-type %q, want %q", domain, pr.Policy.Type, wt.typ)
		}
		// 2 hosts, the first recorded twice, per evaluation: all
		// successful sessions.
		if got, want := pr.Summary.TotalSuccessfulSessionCount, int64(3*evaluations); got != want {
			t.Errorf("%s: %d successful sessions, want %d", domain, got, want)
		}
		var rows []string
		for _, fd := range pr.FailureDetails {
			rows = append(rows, fmt.Sprintf("%s/%s/%q/%d", fd.ResultType, fd.FailureReasonCode, fd.ReceivingMXHostname, fd.FailedSessionCount))
		}
		if wt.result == "" {
			if len(rows) != 0 || pr.Summary.TotalFailureSessionCount != 0 {
				t.Errorf("%s: failures %v without a policy failure", domain, rows)
			}
			continue
		}
		wantRow := fmt.Sprintf("%s/%s/%q/%d", wt.result, wt.reason, "", evaluations)
		if len(rows) != 1 || rows[0] != wantRow || pr.Summary.TotalFailureSessionCount != evaluations {
			t.Errorf("%s: failure-details %v (total %d), want [%s]: one count per evaluation", domain, rows, pr.Summary.TotalFailureSessionCount, wantRow)
		}
		if wt.typ == tlsrpt.PolicySTS && len(pr.Policy.Strings) == 0 {
			t.Errorf("%s: the sts row lacks the cached policy's strings", domain)
		}
	}
}
