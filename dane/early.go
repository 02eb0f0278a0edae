package dane

import (
	"context"
	"strconv"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
)

// earlyTLSA is a TLSA lookup started with the address lookups
// (Options.EarlyTLSA). Its outcome is read at most once, by the lookup
// that started it, and only once the addresses are known to be secure.
type earlyTLSA struct {
	port   int
	host   string
	cancel context.CancelFunc // nil when nothing was started
	done   chan struct{}
	// Set before done is closed.
	recs []*dns.TLSA
	ans  *resolver.Answer
	err  error
}

// peeker is a resolver that can answer from its cache alone
// (resolver.Cache).
type peeker interface {
	Peek(name string, qtype uint16) (*resolver.Answer, bool, error)
}

// startTLSA starts the TLSA lookup of host at port, unless its outcome is
// cached in r: a warm host costs no goroutine, and wait then reads the
// cache in its turn.
func startTLSA(ctx context.Context, r resolver.Resolver, port int, host string) *earlyTLSA {
	e := &earlyTLSA{port: port, host: host}
	if p, ok := r.(peeker); ok {
		if _, hit, _ := p.Peek("_"+strconv.Itoa(port)+"._tcp."+host, dns.TypeTLSA); hit {
			return e
		}
	}
	ectx, cancel := context.WithCancel(ctx)
	e.cancel, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		e.recs, e.ans, e.err = resolver.LookupTLSA(ectx, r, port, host)
	}()
	return e
}

// wait returns the early lookup's outcome. When nothing was started
// (the answer was cached), or the early lookup failed, it looks the
// RRset up in its turn: a failure of a query asked before its turn
// (whatever its cause: an upstream busy with the address queries, a
// lost datagram) must not decide for the host what the query asked in
// its turn might not, since RFC 7672 2.1.2 makes a TLSA failure fatal
// to the host. A resolver.Cache remembers a real failure for a few
// seconds, so that it costs no second query.
func (e *earlyTLSA) wait(ctx context.Context, r resolver.Resolver) ([]*dns.TLSA, *resolver.Answer, error) {
	if e.done != nil {
		select {
		case <-e.done:
			if e.err == nil {
				return e.recs, e.ans, nil
			}
		case <-ctx.Done():
			// The lookup below ends at once with ctx's error.
		}
	}
	return resolver.LookupTLSA(ctx, r, e.port, e.host)
}

// abandon cancels the early lookup if it is still running. The caller
// never waits for it: its goroutine ends with its context.
func (e *earlyTLSA) abandon() {
	if e.cancel != nil {
		e.cancel()
	}
}
