// Package wire is the one DNS exchange of package resolver: a query sent
// to one server over UDP, retried over TCP when the reply is truncated,
// with every check a reply must pass before anyone reads it. The Stub and
// the DNSSEC validator (resolver/internal/dnssec) both use it, so a reply
// that one of them would refuse is refused by both.
//
// Every reply is hostile until proven otherwise. Exchange enforces, in
// this order:
//
//   - One deadline for the whole exchange, UDP and TCP retry together:
//     the earlier of now+timeout and the context's deadline.
//   - Connected sockets: the kernel drops datagrams from any address but
//     the server's (RFC 5452 9.1, source match).
//   - A UDP datagram longer than MaxUDPSize is ignored: the query
//     advertised EDNSSize (RFC 6891 6.2.5), and a server that ignores
//     that by more than a little is not to be parsed.
//   - A reply that does not unpack, or whose ID, QR bit, opcode or
//     question (exactly one; type, class and name, the name in any case)
//     differ from the query's, is ignored over UDP — it may be an
//     off-path spoofer's or a late reply to an earlier query, and must
//     not end the exchange (RFC 5452 9.1) — and waited past until the
//     deadline; over TCP the stream is ours, so it is an error.
//   - A reply with more than MaxRecords records is an error: no genuine
//     answer with its proofs comes near it.
//   - TC over UDP retries over TCP (RFC 7766 5); TC over TCP is an error.
//   - When the deadline passes after ignored datagrams, the error says so
//     (KindMalformed, "no valid reply"); when the context ends, the error
//     is a KindTimeout, whatever the socket said.
package wire

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/quote"
)

// EDNSSize is the EDNS0 UDP payload size queries advertise: the DNS flag
// day 2020 value, which avoids IP fragmentation on common paths. Larger
// answers come back truncated and are retried over TCP, whose messages
// are bounded by their 16-bit length.
const EDNSSize = 1232

// MaxUDPSize is the longest UDP datagram read as a reply. It is larger
// than EDNSSize for servers that exceed the advertised size slightly; a
// longer datagram is ignored like any other garbage.
const MaxUDPSize = 4096

// MaxRecords bounds the records (all sections) of one reply; a legitimate
// answer with its DNSSEC proofs is far smaller, and everything downstream
// is linear in it at best.
const MaxRecords = 1024

// Buffer is a buffer UDP replies are read into: one byte longer than
// MaxUDPSize, so that a longer datagram is seen as such rather than cut.
type Buffer = [MaxUDPSize + 1]byte

// Kind says why an exchange failed.
type Kind uint8

const (
	// KindTimeout: no reply in time, or the context ended.
	KindTimeout Kind = iota + 1
	// KindNetwork: the server could not be reached or closed the
	// connection.
	KindNetwork
	// KindMalformed: the reply did not parse, did not match the query,
	// broke a size bound, or only bad replies came before the deadline.
	KindMalformed
)

// Error reports a failed exchange with one server.
type Error struct {
	// Network is "udp" or "tcp": the leg of the exchange that failed.
	Network string
	// Server is the server, host:port.
	Server string
	// Kind classifies the failure.
	Kind Kind
	// Reason is a short description: "dial", "read", "unpack",
	// "mismatched reply", "no valid reply", ...
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := "wire: " + quote.Text(e.Reason) + " (" + quote.Text(e.Network+" "+e.Server) + ")"
	if e.Err != nil {
		s += ": " + quote.Text(e.Err.Error())
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

var (
	errMismatch  = errors.New("reply does not match the query")
	errOversized = errors.New("UDP reply longer than " + strconv.Itoa(MaxUDPSize) + " bytes")
)

// Exchange sends m, which must hold exactly one question, to server and
// returns the reply, or an *Error. See the package documentation for the
// checks every reply passes. bufs, if not nil, is a pool of *Buffer for
// UDP reads (a buffer goes back only after its reply is unpacked, and
// miekg/dns copies everything it unpacks: no Msg refers to a pooled
// buffer).
func Exchange(ctx context.Context, server string, m *dns.Msg, timeout time.Duration, bufs *sync.Pool) (*dns.Msg, error) {
	if len(m.Question) != 1 {
		return nil, &Error{Network: "udp", Server: server, Kind: KindMalformed, Reason: "query without exactly one question"}
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	r, err := exchangeNet(ctx, dctx, "udp", server, m, bufs)
	if err != nil || !r.Truncated {
		return r, err
	}
	return exchangeNet(ctx, dctx, "tcp", server, m, nil)
}

// exchangeNet does one leg of the exchange. ctx is the caller's context,
// dctx the same bounded by the exchange's deadline.
func exchangeNet(ctx, dctx context.Context, network, server string, m *dns.Msg, bufs *sync.Pool) (*dns.Msg, error) {
	fail := func(k Kind, reason string, err error) (*dns.Msg, error) {
		if cerr := CtxErr(ctx); cerr != nil {
			// The caller's deadline, not the server, ended the exchange.
			k, err = KindTimeout, cerr
		}
		return nil, &Error{Network: network, Server: server, Kind: k, Reason: reason, Err: err}
	}
	var d net.Dialer
	c, err := d.DialContext(dctx, network, server)
	if err != nil {
		return fail(netKind(dctx, err), "dial", err)
	}
	defer c.Close()
	// Unblock reads when the caller's context ends before the deadline.
	stop := context.AfterFunc(dctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := dctx.Deadline(); ok {
		c.SetDeadline(dl)
	}

	co := &dns.Conn{Conn: c}
	if err := co.WriteMsg(m); err != nil {
		return fail(netKind(dctx, err), "write", err)
	}
	var buf []byte
	if network == "udp" {
		var b *Buffer
		if bufs != nil {
			b, _ = bufs.Get().(*Buffer)
		}
		if b == nil {
			b = new(Buffer)
		}
		if bufs != nil {
			defer bufs.Put(b)
		}
		buf = b[:]
	}
	udp := network == "udp"
	var lastBad error
	for {
		var p []byte
		var err error
		if udp {
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
			return fail(netKind(dctx, err), "read", err)
		}
		if udp && len(p) > MaxUDPSize {
			lastBad = errOversized
			continue
		}
		r := new(dns.Msg)
		if err := r.Unpack(p); err != nil {
			if udp {
				lastBad = err
				continue
			}
			return fail(KindMalformed, "unpack", err)
		}
		if !Matches(r, m) {
			// RFC 5452 9.1: a reply must match ID, question and source.
			if udp {
				lastBad = errMismatch
				continue
			}
			return fail(KindMalformed, "mismatched reply", errMismatch)
		}
		if n := len(r.Answer) + len(r.Ns) + len(r.Extra); n > MaxRecords {
			return fail(KindMalformed, "reply has "+strconv.Itoa(n)+" records (limit "+strconv.Itoa(MaxRecords)+")", nil)
		}
		if !udp && r.Truncated {
			return fail(KindMalformed, "truncated reply over TCP", nil)
		}
		return r, nil
	}
}

// Matches reports whether r is a reply to q: same ID, QR set, same
// opcode, and exactly q's one question, the name compared without regard
// to case (a server may echo 0x20-randomised case).
func Matches(r, q *dns.Msg) bool {
	if r.Id != q.Id || !r.Response || r.Opcode != q.Opcode || len(r.Question) != 1 || len(q.Question) != 1 {
		return false
	}
	a, b := r.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
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

// CtxErr is ctx.Err(), or context.DeadlineExceeded when ctx's deadline
// has passed (a socket deadline set from it can fire before ctx
// notices).
func CtxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}
