package smtptls

import (
	"context"

	"github.com/smtptls/smtptls/internal/dnsname"
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
