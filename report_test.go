package smtptls_test

import (
	"context"
	"encoding/json"
	"net/netip"
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
		for _, p := range r.Policies {
			total += p.Summary.TotalSuccessfulSessionCount + p.Summary.TotalFailureSessionCount
			failed += p.Summary.TotalFailureSessionCount
		}
	}
	if total != 5 || failed != 3 {
		t.Errorf("sessions %d (failed %d), want 5 (3)", total, failed)
	}
}

func addr0(h *smtptls.Host) netip.Addr {
	if len(h.Addrs) == 0 {
		return netip.Addr{}
	}
	return h.Addrs[0]
}
