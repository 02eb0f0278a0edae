package smtptls_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

func TestReportPolicyAndSessions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.AddDomain("dane.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	w.AddDomain("sts.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSelfSignedCert})
	w.AddDomain("plain.test", smtptlstest.Scenario{Unsigned: true})
	w.AddDomain("servfail.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisTLSAServFail})
	w.AddDomain("excluded.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSTSMXMismatch})
	ev := w.evaluator()
	ctx := context.Background()
	agg := &tlsrpt.Aggregator{}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	want := map[string]reportWant{} // filled as the sessions run

	for _, c := range []struct {
		domain  string
		typ     tlsrpt.PolicyType
		strings string // a substring of the joined policy-string
		success bool
		result  tlsrpt.ResultType
	}{
		{"dane.test", tlsrpt.PolicyTLSA, "3 1 1 ", true, ""},
		{"sts.test", tlsrpt.PolicySTS, "mode: enforce", false, tlsrpt.CertificateNotTrusted},
		{"plain.test", tlsrpt.PolicyNoPolicyFound, "", true, ""},
		{"servfail.test", tlsrpt.PolicyTLSA, "", false, tlsrpt.DNSSECInvalid},
		{"excluded.test", tlsrpt.PolicySTS, "mx: mail.elsewhere.excluded.test", false, tlsrpt.ValidationFailure},
	} {
		d, err := ev.Evaluate(ctx, c.domain)
		if err != nil {
			t.Fatal(err)
		}
		h := d.Hosts[0]
		p := h.ReportPolicy()
		if p.Type != c.typ || p.Domain != c.domain || !strings.Contains(strings.Join(p.Strings, "\n"), c.strings) {
			t.Errorf("%s: policy %+v", c.domain, p)
		}
		sessErr := h.Err
		if sessErr == nil {
			o := smtptlstest.Send(ctx, w.DialContext, h, 25, smtptls.Attempt{}, smtptlstest.Message{From: "a@s.test", To: []string{"b@" + c.domain}, Data: []byte("\r\n")})
			sessErr = o.Err
			if o.Err == nil && o.VerifyErr != nil {
				sessErr = o.VerifyErr
			}
			if o.Delivered != c.success {
				t.Errorf("%s: delivered %v (%v)", c.domain, o.Delivered, o.Err)
			}
		}
		if got := h.FailureResult(sessErr); got != c.result {
			t.Errorf("%s: result %q, want %q (%v)", c.domain, got, c.result, sessErr)
		}
		h.RecordSession(agg, smtptls.Attempt{}, addr0(h), sessErr, now)
		ip := ""
		if a := addr0(h); a.IsValid() {
			ip = a.String()
		}
		want[c.domain] = reportWant{policy: p, result: c.result, host: h.Name, ip: ip}
		// A report's own delivery is never counted (RFC 8460 3).
		h.RecordSession(agg, smtptls.Attempt{Report: true}, addr0(h), sessErr, now)
	}
	reps := agg.Reports(now, "smtptls test", "mailto:tlsrpt@s.test")
	if len(reps) != 5 {
		t.Fatalf("%d reports, want one per policy domain", len(reps))
	}
	var total, failed int64
	for _, r := range reps {
		b, err := r.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var back tlsrpt.Report
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		checkReportJSON(t, &back, &r, want)
		for _, p := range r.Policies {
			total += p.Summary.TotalSuccessfulSessionCount + p.Summary.TotalFailureSessionCount
			failed += p.Summary.TotalFailureSessionCount
		}
	}
	if len(want) != 0 {
		t.Errorf("no report for %v", want)
	}
	if total != 5 || failed != 3 {
		t.Errorf("sessions %d (failed %d), want 5 (3)", total, failed)
	}
}

// reportWant is what a domain's report must say about its one session.
type reportWant struct {
	policy tlsrpt.Policy
	result tlsrpt.ResultType // "" for a success
	host   string
	ip     string
}

// checkReportJSON compares a report decoded from its JSON with what its
// domain's session recorded: one policy, one session, and for a failure
// one failure-details row naming the result, the host and its address.
func checkReportJSON(t *testing.T, back, r *tlsrpt.Report, want map[string]reportWant) {
	t.Helper()
	if back.OrganizationName != "smtptls test" || back.ContactInfo != "mailto:tlsrpt@s.test" || back.ReportID != r.ReportID ||
		!back.DateRange.Start.Equal(r.DateRange.Start) || !back.DateRange.End.Equal(r.DateRange.End) {
		t.Errorf("report header %+v, want that of %+v", back, r)
	}
	if len(back.Policies) != 1 {
		t.Fatalf("%d policies in %+v, want 1", len(back.Policies), back)
	}
	pr := back.Policies[0]
	w, ok := want[pr.Policy.Domain]
	if !ok {
		t.Fatalf("report for unexpected policy domain %q", pr.Policy.Domain)
	}
	delete(want, pr.Policy.Domain)
	if pr.Policy.Type != w.policy.Type || !slices.Equal(pr.Policy.Strings, w.policy.Strings) || !slices.Equal(pr.Policy.MXHosts, w.policy.MXHosts) {
		t.Errorf("%s: policy %+v, want %+v", pr.Policy.Domain, pr.Policy, w.policy)
	}
	wantSum := tlsrpt.Summary{TotalSuccessfulSessionCount: 1}
	var wantRows []tlsrpt.FailureDetails
	if w.result != "" {
		wantSum = tlsrpt.Summary{TotalFailureSessionCount: 1}
		wantRows = []tlsrpt.FailureDetails{{ResultType: w.result, ReceivingMXHostname: w.host, ReceivingIP: w.ip, FailedSessionCount: 1}}
	}
	if pr.Summary != wantSum {
		t.Errorf("%s: summary %+v, want %+v", pr.Policy.Domain, pr.Summary, wantSum)
	}
	if len(pr.FailureDetails) != len(wantRows) {
		t.Fatalf("%s: failure details %+v, want %+v", pr.Policy.Domain, pr.FailureDetails, wantRows)
	}
	for i, got := range pr.FailureDetails {
		wr := wantRows[i]
		if got.ResultType != wr.ResultType || got.ReceivingMXHostname != wr.ReceivingMXHostname || got.ReceivingIP != wr.ReceivingIP || got.FailedSessionCount != wr.FailedSessionCount {
			t.Errorf("%s: failure details %+v, want %+v", pr.Policy.Domain, got, wr)
		}
	}
}

func addr0(h *smtptls.Host) netip.Addr {
	if len(h.Addrs) == 0 {
		return netip.Addr{}
	}
	return h.Addrs[0]
}
