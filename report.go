package smtptls

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/tlsrpt"
)

// ReportPolicy returns the TLS-RPT policy (RFC 8460 4.4) that sessions via
// h count against:
//
//   - "tlsa" when DANE applies to the host (its secure TLSA RRset is the
//     policy-string, the host the mx-host), also when the TLSA lookup
//     failed (dnssec-invalid);
//   - "sts" when an MTA-STS policy applies (its lines are the
//     policy-string, its mx patterns the mx-host list), also for hosts
//     the policy excluded;
//   - "no-policy-found" otherwise.
//
// The policy-domain is the recipient domain (the relay's name for a
// relay).
func (h *Host) ReportPolicy() tlsrpt.Policy {
	p := tlsrpt.Policy{Type: tlsrpt.PolicyNoPolicyFound, Domain: h.dec.Domain}
	var he *Error
	tlsaFailed := errors.As(h.Err, &he) && he.Result == tlsrpt.DNSSECInvalid
	switch {
	case tlsaFailed, h.Err == nil && h.DANE != nil && (h.Level == DANE || h.Level == Encrypt && len(h.DANE.RRset) > 0):
		p.Type = tlsrpt.PolicyTLSA
		p.MXHosts = []string{h.Name}
		if h.DANE != nil {
			for _, r := range h.DANE.RRset {
				p.Strings = append(p.Strings, r.String())
			}
		}
	case h.stsPolicy() != nil && (h.Level == STSEnforce || h.Level == STSTesting || h.Excluded):
		sp := h.stsPolicy()
		p.Type = tlsrpt.PolicySTS
		p.Strings = sp.Lines
		p.MXHosts = sp.MX
	}
	return p
}

func (h *Host) stsPolicy() *mtasts.Policy { return h.dec.STSPolicy() }

// RecordSession counts one session via h in agg (RFC 8460 4): a success
// when sessErr is nil, else a failure whose result type is
// FailureResult(sessErr); failures that are not TLS failures (a refused
// connection) are not counted. addr is the address dialled (TLS-RPT's
// receiving-ip; zero when none). An MTA also calls it with h.Err for hosts
// it could not use, so that DNSSEC and MTA-STS failures are reported.
//
// Sessions that deliver a TLS-RPT report are not counted (a report about
// a report must not loop, RFC 8460 3): RecordSession does nothing for an
// Attempt with Report set.
//
// The first RecordSession of a Decision (per Aggregator) also records the
// decision's MTA-STS policy failure, if its lookup had one (see
// Decision.STS.FetchError): a failure of result type
// sts-policy-fetch-error, sts-policy-invalid or sts-webpki-invalid (RFC
// 8460 4.3.2.2) with no MX host or address (the failure concerns the
// policy host, not an MX), counted once per Decision however many hosts
// are recorded, and never changing how the sessions themselves count. It
// is reported under the policy the decision applied (RFC 8460 4.4:
// policy-type is the type of policy the sender applied): "sts" with the
// cached policy when one is still in force (its sessions count there
// too, and the domain learns that its new policy cannot be fetched while
// the old one is enforced), else "no-policy-found", since without a
// policy in force the sender delivered as if the domain had none (RFC
// 8461 5). The failure-reason-code names the fetch failure
// ("http-status-404", "timeout", "certificate-not-valid", ...).
func (h *Host) RecordSession(agg *tlsrpt.Aggregator, a Attempt, addr netip.Addr, sessErr error, now time.Time) {
	if agg == nil || a.Report {
		return
	}
	if h.dec != nil {
		h.dec.recordPolicyFailure(agg, now)
	}
	p := h.ReportPolicy()
	if sessErr == nil {
		agg.Success(p, now)
		return
	}
	r := h.FailureResult(sessErr)
	if r == "" {
		return
	}
	d := tlsrpt.FailureDetails{ResultType: r, ReceivingMXHostname: h.Name, FailedSessionCount: 1,
		FailureReasonCode: tlsrpt.FailureReasonCode(sessErr)}
	if addr.IsValid() {
		d.ReceivingIP = addr.String()
	}
	agg.Failure(p, d, now)
}

// recordPolicyFailure counts the decision's MTA-STS policy failure in agg,
// once per aggregator.
func (d *Decision) recordPolicyFailure(agg *tlsrpt.Aggregator, now time.Time) {
	p, fd, ok := d.policyFailure()
	if !ok {
		return
	}
	d.rptMu.Lock()
	done := slices.Contains(d.rptDone, agg)
	if !done {
		d.rptDone = append(d.rptDone, agg)
	}
	d.rptMu.Unlock()
	if !done {
		agg.Failure(p, fd, now)
	}
}

// policyFailure returns the TLS-RPT policy and failure details of the
// decision's MTA-STS fetch failure, or false when there was none (see
// RecordSession for the choice of policy).
func (d *Decision) policyFailure() (tlsrpt.Policy, tlsrpt.FailureDetails, bool) {
	if d.STS == nil || d.STS.FetchError == nil {
		return tlsrpt.Policy{}, tlsrpt.FailureDetails{}, false
	}
	me, ok := errors.AsType[*mtasts.Error](d.STS.FetchError)
	if !ok {
		return tlsrpt.Policy{}, tlsrpt.FailureDetails{}, false
	}
	switch me.Result {
	case tlsrpt.STSPolicyFetchError, tlsrpt.STSPolicyInvalid, tlsrpt.STSWebPKIInvalid:
	default:
		return tlsrpt.Policy{}, tlsrpt.FailureDetails{}, false
	}
	p := tlsrpt.Policy{Type: tlsrpt.PolicyNoPolicyFound, Domain: d.Domain}
	if sp := d.STSPolicy(); sp != nil {
		// As Host.ReportPolicy, so that the failure joins the sessions
		// counted under the same policy.
		p = tlsrpt.Policy{Type: tlsrpt.PolicySTS, Domain: d.Domain, Strings: sp.Lines, MXHosts: sp.MX}
	}
	reason := strings.ReplaceAll(me.Kind.String(), " ", "-")
	if me.Kind == mtasts.KindHTTPStatus && me.StatusCode != 0 {
		reason += "-" + strconv.Itoa(me.StatusCode)
	}
	return p, tlsrpt.FailureDetails{ResultType: me.Result, FailureReasonCode: reason}, true
}
