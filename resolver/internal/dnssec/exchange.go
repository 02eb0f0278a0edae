package dnssec

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver/internal/wire"
)

// The validator's queries go through the module's one DNS exchange
// (package wire), as the Stub's do; what differs is the query (CD and DO
// set, every RRSIG, NSEC and NSEC3 record wanted as the upstream sent
// it) and that the upstream's AD bit is ignored.

// newQuery builds a query with RD=1, CD=1 (RFC 4035 3.2.2: the upstream
// must not withhold bogus data, we judge it) and DO=1 (RFC 3225).
func newQuery(name string, qtype uint16) *dns.Msg {
	// No ID: the exchange gives every query a new random one.
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{RecursionDesired: true, CheckingDisabled: true},
		Question: []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}},
	}
	m.SetEdns0(wire.EDNSSize, true)
	return m
}

// exchange asks the upstream servers one question, trying them in
// rotation until one gives a usable answer (NOERROR or NXDOMAIN). Each
// try counts against the query limit.
func (l *lookup) exchange(name string, qtype uint16) (*dns.Msg, error) {
	servers := l.servers
	if len(servers) == 0 {
		return nil, &Error{Kind: KindNetwork, Reason: "no upstream servers configured"}
	}
	first := int(l.v.rotate.Add(1) % uint64(len(servers)))
	var last *Error
	for i := range servers {
		if err := l.ctx.Err(); err != nil {
			return nil, ctxError(name, qtype, err)
		}
		if err := l.spendQuery(); err != nil {
			return nil, err
		}
		if l.limiter != nil {
			if err := l.limiter.Wait(l.ctx); err != nil {
				return nil, ctxError(name, qtype, err)
			}
		}
		srv := servers[(first+i)%len(servers)]
		r, err := l.v.pool.Exchange(l.ctx, srv, newQuery(name, qtype), l.timeout)
		if err != nil {
			last = netError(name, qtype, srv, err)
			continue
		}
		switch r.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return r, nil
		case dns.RcodeServerFailure:
			last = &Error{Kind: KindServFail, Reason: fmt.Sprintf("%s %s: %s answered SERVFAIL", name, dns.TypeToString[qtype], srv)}
		default:
			last = &Error{Kind: KindRefused, Reason: fmt.Sprintf("%s %s: %s answered %s", name, dns.TypeToString[qtype], srv, dns.RcodeToString[r.Rcode])}
		}
	}
	return nil, last
}

// netError classifies a failed exchange.
func netError(name string, qtype uint16, server string, err error) *Error {
	kind := KindNetwork
	var we *wire.Error
	if errors.As(err, &we) {
		switch we.Kind {
		case wire.KindTimeout:
			kind = KindTimeout
		case wire.KindMalformed:
			kind = KindMalformed
		}
		return &Error{Kind: kind, Reason: fmt.Sprintf("%s %s: %s: %s over %s", name, dns.TypeToString[qtype], server, we.Reason, we.Network), Err: we.Err}
	}
	return &Error{Kind: kind, Reason: fmt.Sprintf("%s %s: %s", name, dns.TypeToString[qtype], server), Err: err}
}

// ctxError reports a lookup cut short by its context.
func ctxError(name string, qtype uint16, err error) *Error {
	return &Error{Kind: KindTimeout, Reason: fmt.Sprintf("%s %s: lookup ended", name, dns.TypeToString[qtype]), Err: err}
}
