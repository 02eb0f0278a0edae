package resolver

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the EDNS0 UDP payload size advertised in queries: the DNS
// flag day 2020 value, which avoids IP fragmentation on common paths.
const ednsSize = 1232

// udpBuf is a buffer UDP replies are read into: 64 KiB, since a server
// may send more than ednsSize and a datagram longer than the buffer would
// be cut. Allocating (and zeroing) one per query was the largest cost of a
// Stub lookup after the syscalls, so a Stub keeps them in a sync.Pool. A
// buffer goes back to the pool only after its reply is unpacked, and
// miekg/dns copies everything it unpacks: no Msg refers to a pooled
// buffer.
type udpBuf = [dns.MaxMsgSize]byte

// exchange sends m to server and returns the response, or an *Error.
//
// Over UDP it reads until a reply with the query's ID and question arrives
// or the deadline passes, ignoring others: an off-path spoofer or a late
// reply to an earlier query must not end the exchange (RFC 5452 9.1). A
// truncated reply is retried over TCP. Over TCP a reply that does not match
// is malformed, since the stream is ours.
// bufs, if not nil, is a pool of *udpBuf.
func exchange(ctx context.Context, server string, m *dns.Msg, timeout time.Duration, bufs *sync.Pool) (*dns.Msg, error) {
	r, err := exchangeNet(ctx, "udp", server, m, timeout, bufs)
	if err != nil {
		return nil, err
	}
	if r.Truncated {
		return exchangeNet(ctx, "tcp", server, m, timeout, nil)
	}
	return r, nil
}

func exchangeNet(ctx context.Context, network, server string, m *dns.Msg, timeout time.Duration, bufs *sync.Pool) (*dns.Msg, error) {
	q := m.Question[0]
	fail := func(k Kind, reason string, err error) (*dns.Msg, error) {
		if cerr := ctxErr(ctx); cerr != nil {
			// The caller's deadline, not the server, ended the exchange.
			k, err = KindTimeout, cerr
		}
		return nil, &Error{Name: q.Name, Type: q.Qtype, Kind: k, Reason: reason + " (" + network + " " + server + ")", Err: err}
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var d net.Dialer
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	c, err := d.DialContext(dctx, network, server)
	if err != nil {
		return fail(netKind(ctx, err), "dial", err)
	}
	defer c.Close()
	// Unblock reads when the caller's context ends before the deadline.
	stop := context.AfterFunc(dctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	c.SetDeadline(deadline)

	co := &dns.Conn{Conn: c, UDPSize: dns.MaxMsgSize}
	if err := co.WriteMsg(m); err != nil {
		return fail(netKind(ctx, err), "write", err)
	}
	var lastBad error
	var buf []byte
	if network == "udp" {
		var b *udpBuf
		if bufs != nil {
			b, _ = bufs.Get().(*udpBuf)
		}
		if b == nil {
			b = new(udpBuf)
		}
		if bufs != nil {
			defer bufs.Put(b)
		}
		buf = b[:]
	}
	for {
		var p []byte
		var err error
		if network == "udp" {
			var n int
			n, err = c.Read(buf)
			p = buf[:n]
		} else {
			p, err = co.ReadMsgHeader(nil)
		}
		if err != nil {
			if lastBad != nil && isTimeout(err) {
				return fail(KindMalformed, "no valid reply", lastBad)
			}
			return fail(netKind(ctx, err), "read", err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(p); err != nil {
			lastBad = err
			if network == "udp" {
				continue
			}
			return fail(KindMalformed, "unpack", err)
		}
		if r.Id != m.Id || !r.Response || len(r.Question) != 1 ||
			r.Question[0].Qtype != q.Qtype || r.Question[0].Qclass != q.Qclass ||
			!strings.EqualFold(r.Question[0].Name, q.Name) {
			// RFC 5452 9.1: a reply must match ID, question and source.
			lastBad = errors.New("reply does not match the query")
			if network == "udp" {
				continue
			}
			return fail(KindMalformed, "mismatched reply", lastBad)
		}
		if network == "tcp" && r.Truncated {
			return fail(KindMalformed, "truncated reply over TCP", nil)
		}
		return r, nil
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func netKind(ctx context.Context, err error) Kind {
	if ctx.Err() != nil || isTimeout(err) {
		return KindTimeout
	}
	return KindNetwork
}

// ctxErr is ctx.Err(), or DeadlineExceeded when ctx's deadline has passed
// (a socket deadline set from it can fire before ctx notices).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}
