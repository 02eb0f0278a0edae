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
// excepted (it is the same query), and for Validating the DS and DNSKEY
// queries of the chain of trust too. Answers from a Cache in front of them
// send nothing and do not wait.
type Limiter interface {
	Wait(ctx context.Context) error
}
