package smtptls

import (
	"context"
	"net/http"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/resolver"
)

// ErrNotCached is what EvaluateCached returns when an answer is missing.
var ErrNotCached = errNotCached

// EvaluateCached is the warm path of Evaluate alone, for tests that must
// know it was taken: it answers only from the Evaluator's resolver cache.
func (e *Evaluator) EvaluateCached(ctx context.Context, domain string) (*Decision, error) {
	e.init()
	d, err := dnsname.Mail.Normalize(domain)
	if err != nil {
		return nil, err
	}
	p, ok := e.res.(peeker)
	if !ok {
		return nil, errNotCached
	}
	return e.evaluate(ctx, d, cachedOnly{p})
}

// PointDefaults builds e's default parts as Evaluate would (with e.Now),
// then points them at a test world: when Resolver is nil, the default
// validator asks servers with anchors; when STS is nil, the default
// MTA-STS client fetches with hc.
func (e *Evaluator) PointDefaults(servers []string, anchors []*dns.DS, hc *http.Client) {
	e.init()
	if e.Resolver == nil {
		v := e.res.(*resolver.Cache).Resolver.(*resolver.Validating)
		v.Servers, v.Anchors = servers, anchors
	}
	if e.STS == nil && e.sts != nil {
		// hc's dialer resolves names itself: it would not use the
		// policy host's addresses looked up with the TXT record.
		e.sts.HTTPClient = hc
		e.sts.PrefetchPolicyHost = false
	}
}

// SetSequential turns the Evaluator's early lookups off (TLSA with the
// addresses, the policy host's address with the TXT record), so that
// tests can compare decisions with and without them. Call it before the
// Evaluator's first use.
func (e *Evaluator) SetSequential() { e.sequential = true }
