package resolver

import "context"

// A Limiter paces upstream DNS queries: Wait blocks until one more query
// may be sent, or returns an error (the context's, or the limiter's own
// refusal) and the query is not sent. *golang.org/x/time/rate.Limiter
// satisfies it, so one such limiter shared by several resolvers makes a
// global rate limit, as a survey of many domains needs to stay polite to
// its upstream.
//
// Stub and Validating wait on their Limiter before every query they send
// upstream: each try of each server, the TCP retry of a truncated answer
// and the UDP retransmissions of an unanswered one excepted (they are the
// same query), and for Validating the DS and DNSKEY
// queries of the chain of trust too. Answers from a Cache in front of them
// send nothing and do not wait.
type Limiter interface {
	Wait(ctx context.Context) error
}

// waitLimiter waits on l (nil: no limit) before a query for (name, qtype).
// A refusal ends the lookup as a timeout that wraps the limiter's error:
// the query was never sent, and a rate limiter refuses when the wait
// would outlast the context (golang.org/x/time/rate does).
func waitLimiter(ctx context.Context, l Limiter, name string, qtype uint16) error {
	if l == nil {
		return nil
	}
	if err := l.Wait(ctx); err != nil {
		return &Error{Name: name, Type: qtype, Kind: KindTimeout, Reason: "rate limiter", Err: err}
	}
	return nil
}
