package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// The validator's own wire exchange: Stub's query path drops DNSSEC
// records and trusts AD, whereas the validator needs every RRSIG, NSEC and
// NSEC3 record exactly as the upstream sent them.

// valUDPSize is the EDNS0 buffer size advertised (DNS flag day 2020: 1232
// avoids IP fragmentation). Larger answers come back truncated and are
// retried over TCP, whose messages are bounded by their 16-bit length.
const valUDPSize = 1232

// valUDPReadSize is the buffer for one UDP answer.
const valUDPReadSize = 4096

// valMaxRecords bounds the records of one response the validator will
// look at; a legitimate answer with its proofs is far smaller.
const valMaxRecords = 1024

// valMaxDatagrams bounds the stray datagrams (wrong ID, wrong question,
// garbage) read while waiting for the real answer over UDP.
const valMaxDatagrams = 32

// valQuery builds a query with RD=1, CD=1 (RFC 4035 3.2.2: the upstream
// must not withhold bogus data, we judge it) and DO=1 (RFC 3225).
func valQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.CheckingDisabled = true
	m.SetEdns0(valUDPSize, true)
	return m
}

// exchange asks the upstream servers one question, trying them in
// rotation until one gives a usable answer (NOERROR or NXDOMAIN). Each
// try counts against MaxQueries.
func (l *valLookup) exchange(name string, qtype uint16) (*dns.Msg, error) {
	servers := l.servers
	if len(servers) == 0 {
		return nil, &Error{Kind: KindNetwork, Reason: "no upstream servers configured"}
	}
	first := int(l.v.rotate.Add(1) % uint64(len(servers)))
	var last *Error
	for i := range servers {
		if err := l.ctx.Err(); err != nil {
			return nil, valCtxError(name, qtype, err)
		}
		if err := l.spendQuery(); err != nil {
			return nil, err
		}
		srv := servers[(first+i)%len(servers)]
		r, err := valExchangeServer(l.ctx, srv, valQuery(name, qtype), l.v.timeout())
		if err != nil {
			last = valNetError(name, qtype, srv, err)
			continue
		}
		switch r.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			if n := len(r.Answer) + len(r.Ns) + len(r.Extra); n > valMaxRecords {
				last = &Error{Kind: KindMalformed, Reason: fmt.Sprintf("%s %s: answer from %s has %d records (limit %d)", name, dns.TypeToString[qtype], srv, n, valMaxRecords)}
				continue
			}
			return r, nil
		case dns.RcodeServerFailure:
			last = &Error{Kind: KindServFail, Reason: fmt.Sprintf("%s %s: %s answered SERVFAIL", name, dns.TypeToString[qtype], srv)}
		default:
			last = &Error{Kind: KindRefused, Reason: fmt.Sprintf("%s %s: %s answered %s", name, dns.TypeToString[qtype], srv, dns.RcodeToString[r.Rcode])}
		}
	}
	return nil, last
}

// valExchangeServer asks one server over UDP, then over TCP when the UDP
// answer is truncated, within timeout.
func valExchangeServer(ctx context.Context, server string, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := valExchangeNet(ctx, "udp", server, m)
	if err != nil || !r.Truncated {
		return r, err
	}
	r, err = valExchangeNet(ctx, "tcp", server, m)
	if err == nil && r.Truncated {
		return nil, errValTruncatedTCP
	}
	return r, err
}

var (
	errValTruncatedTCP = errors.New("truncated answer over TCP")
	errValMismatch     = errors.New("answer does not match the query")
)

// valExchangeNet sends m over network and waits for the answer with the
// same ID and question. Over UDP, datagrams that do not match or do not
// parse are ignored (an off-path spoofer must not be able to end the
// exchange); over TCP the stream is private, so a mismatch is an error.
func valExchangeNet(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// The read buffer is larger than the size advertised, for servers
	// that ignore it slightly; a datagram beyond it does not parse and
	// is skipped like any other garbage.
	co := &dns.Conn{Conn: conn, UDPSize: valUDPReadSize}
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	for range valMaxDatagrams {
		r, err := co.ReadMsg()
		if err != nil {
			var ne net.Error
			if network == "udp" && !errors.As(err, &ne) {
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if r.Id == m.Id && r.Response && r.Opcode == dns.OpcodeQuery && valSameQuestion(r, m) {
			return r, nil
		}
		if network != "udp" {
			return nil, errValMismatch
		}
	}
	return nil, errValMismatch
}

// valSameQuestion reports whether r answers the question of q.
func valSameQuestion(r, q *dns.Msg) bool {
	if len(r.Question) != 1 || len(q.Question) != 1 {
		return false
	}
	a, b := r.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// valNetError classifies a failed exchange.
func valNetError(name string, qtype uint16, server string, err error) *Error {
	kind := KindNetwork
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne) && ne.Timeout():
		kind = KindTimeout
	case errors.Is(err, errValMismatch), errors.Is(err, errValTruncatedTCP):
		kind = KindMalformed
	case !errors.As(err, &ne):
		// Not a network error: the answer did not parse.
		kind = KindMalformed
	}
	return &Error{Kind: kind, Reason: fmt.Sprintf("%s %s: %s", name, dns.TypeToString[qtype], server), Err: err}
}

// valCtxError reports a lookup cut short by its context.
func valCtxError(name string, qtype uint16, err error) *Error {
	return &Error{Kind: KindTimeout, Reason: fmt.Sprintf("%s %s: lookup ended", name, dns.TypeToString[qtype]), Err: err}
}
