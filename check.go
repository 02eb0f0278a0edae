package smtptls

import (
	"context"
	"errors"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
)

// ErrDANEUnavailable is wrapped by the error Check returns when the
// resolver cannot support DANE.
var ErrDANEUnavailable = errors.New("smtptls: the resolver cannot support DANE")

// Check is a start-up probe an MTA calls once: it reports whether the
// resolver can deliver what DANE needs, so that a broken set-up is loud at
// start-up instead of a silent loss of DANE (every answer Insecure) or a
// queue of deferred mail (every lookup failing).
//
// It returns nil when DANE is disabled or the resolver answered the root
// DNSKEY query with a Secure answer. Otherwise the error wraps
// ErrDANEUnavailable and says why: a Stub that does not trust AD (its
// servers are not on loopback), an upstream that does not validate (AD
// missing), strips DNSSEC records or blocks CD queries (the Validating
// resolver's own check), or a resolver that does not answer. The MTA then
// chooses: fix the resolver, or set DisableDANE explicitly. The Evaluator
// itself never degrades silently: with such a resolver DANE lookups
// return Insecure or fail, which means opportunistic TLS or deferral.
func (e *Evaluator) Check(ctx context.Context) error {
	e.init()
	if e.DisableDANE {
		e.log.Warn("smtptls: DANE is disabled by configuration")
		return nil
	}
	// The error is returned, not logged: the caller decides whether it
	// is fatal, and logging it too would report it twice.
	return e.check(ctx)
}

func (e *Evaluator) check(ctx context.Context) error {
	r := e.res
	for {
		c, ok := r.(*resolver.Cache)
		if !ok {
			break
		}
		r = c.Resolver
	}
	if s, ok := r.(*resolver.Stub); ok && !s.TrustsAD() {
		return &Error{Kind: KindResolver, Reason: "the stub resolver trusts the AD bit only from loopback servers (or with TrustAD); run a local validating resolver or use resolver.Validating", Err: ErrDANEUnavailable}
	}
	if c, ok := r.(interface{ Check(context.Context) error }); ok {
		if err := c.Check(ctx); err != nil {
			return &Error{Kind: KindResolver, Reason: "resolver self-check failed", Err: errors.Join(ErrDANEUnavailable, err)}
		}
	}
	a, err := e.res.Lookup(ctx, ".", dns.TypeDNSKEY)
	if err != nil {
		return &Error{Kind: KindResolver, Reason: "the root DNSKEY lookup failed", Err: errors.Join(ErrDANEUnavailable, err)}
	}
	if a.Security != resolver.Secure {
		return &Error{Kind: KindResolver, Reason: "the root DNSKEY answer is not validated: the upstream resolver does not do DNSSEC", Err: ErrDANEUnavailable}
	}
	return nil
}
