package smtptls

import (
	"errors"
	"net/netip"
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
func (h *Host) RecordSession(agg *tlsrpt.Aggregator, a Attempt, addr netip.Addr, sessErr error, now time.Time) {
	if agg == nil || a.Report {
		return
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
