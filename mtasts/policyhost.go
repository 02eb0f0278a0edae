package mtasts

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/smtptls/smtptls/resolver"
)

// policyHostKey is the context key of a *policyHost.
type policyHostKey struct{}

// policyHost is the lookup of a policy host's addresses started with the
// TXT lookup (Client.PrefetchPolicyHost), handed to the fetch's dialer
// through the request's context.
type policyHost struct {
	host   string // mta-sts.<domain>, lowercase A-labels, no trailing dot
	cancel context.CancelFunc
	done   chan struct{}
	// Set before done is closed.
	addrs []netip.Addr
	err   error
}

// peeker is a resolver that can answer from its cache alone
// (resolver.Cache).
type peeker interface {
	Peek(name string, qtype uint16) (*resolver.Answer, bool, error)
}

// cached reports whether the Client's resolver holds the outcome of the
// lookup of (name, qtype) in its cache. The TXT lookup whose outcome is
// cached takes no round trip for the address lookup to overlap, and a
// domain without MTA-STS, on the warm path of every message, then costs
// no early lookup.
func (c *Client) cached(name string, qtype uint16) bool {
	p, ok := c.res.(peeker)
	if !ok {
		return false
	}
	_, hit, _ := p.Peek(name, qtype)
	return hit
}

// startPolicyHost starts looking up the A and AAAA RRsets of
// mta-sts.<d> (resolver.LookupAddrs) with the Client's resolver. It ends
// when abandon is called, at the latest.
func (c *Client) startPolicyHost(ctx context.Context, d string) *policyHost {
	pctx, cancel := context.WithCancel(ctx)
	p := &policyHost{host: "mta-sts." + d, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.addrs, _, p.err = resolver.LookupAddrs(pctx, c.res, p.host+".")
	}()
	return p
}

// abandon cancels the lookup if it is still running, without waiting
// for it.
func (p *policyHost) abandon() { p.cancel() }

// PolicyHostAddrs returns the addresses of host (a policy host,
// mta-sts.<domain>) that a Client with PrefetchPolicyHost looked up at
// the same time as the domain's TXT record, for the policy fetch whose
// request context ctx is (or derives from): the dial function of the
// fetch's HTTP transport calls it with its own context and the host of
// the address it is asked to dial. It waits for the lookup to complete
// (or ctx to end) and returns the addresses, A then AAAA, in the order
// resolver.LookupAddrs gives them; the dialer dials them in turn and
// keeps the name for nothing but this lookup: the certificate is still
// verified for the name, from the request's URL.
//
// ok is false when ctx carries no such lookup for host, when the lookup
// failed or found no address, or when ctx ended first: the dialer then
// resolves host itself, exactly as without the prefetch, so that a
// failure of the early lookup never decides the fetch. The Evaluator's
// default MTA-STS client dials this way.
func PolicyHostAddrs(ctx context.Context, host string) (addrs []netip.Addr, ok bool) {
	p, _ := ctx.Value(policyHostKey{}).(*policyHost)
	if p == nil || !strings.EqualFold(strings.TrimSuffix(host, "."), p.host) {
		return nil, false
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, false
	}
	if p.err != nil || len(p.addrs) == 0 {
		return nil, false
	}
	return slices.Clone(p.addrs), true
}
