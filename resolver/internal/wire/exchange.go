// Package wire is the one DNS exchange of package resolver: a query sent
// to one server over UDP, retried over TCP when the reply is truncated,
// with every check a reply must pass before anyone reads it. The Stub and
// the DNSSEC validator (resolver/internal/dnssec) both use it, so a reply
// that one of them would refuse is refused by both.
//
// Sockets are reused (see Pool): a UDP socket serves one query at a time,
// a bounded number of queries over a short time, each with a new random
// ID; a TCP connection to a server is kept for a short while for later
// retries of truncated answers. Opening and closing a socket per query
// was most of the CPU an exchange cost.
//
// Every reply is hostile until proven otherwise. Exchange enforces, in
// this order:
//
//   - One deadline for the whole exchange, UDP and TCP retry together:
//     the earlier of now+timeout and the context's deadline. It is the
//     socket's deadline; the end of the context unblocks the socket at
//     once.
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
//     deadline; over TCP the stream is ours, so it is an error. A socket
//     that saw such a datagram is closed after its query, and after 256
//     of them the UDP leg is abandoned and the query asked over TCP
//     (RFC 5452 9.3).
//   - A reply with more than MaxRecords records is an error: no genuine
//     answer with its proofs comes near it.
//   - TC over UDP retries over TCP (RFC 7766 5); TC over TCP is an error.
//   - A UDP query with no reply is sent again, at most maxRetransmits
//     times within the deadline (RFC 1123 6.1.3.3: a resolver must
//     retransmit; RFC 1035 4.2.1), so that one lost datagram costs a
//     third of the timeout, not the lookup: the same ID on the same
//     socket, and a reply to any copy ends the exchange. The socket is
//     then closed rather than reused, so that the reply to another copy
//     arriving late meets no later query.
//   - When the deadline passes after ignored datagrams, the error says so
//     (KindMalformed, "no valid reply"); when the context ends, the error
//     is a KindTimeout, whatever the socket said.
package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
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
		s += ": " + quote.Err(e.Err)
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
// checks every reply passes. m is not modified: the query goes out with
// a new random ID (RFC 5452 9.2), whatever m.Id says, and the reply
// carries that ID.
func (p *Pool) Exchange(ctx context.Context, server string, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	if len(m.Question) != 1 {
		return nil, &Error{Network: "udp", Server: server, Kind: KindMalformed, Reason: "query without exactly one question"}
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	buf := p.buffer()
	defer p.bufs.Put(buf)
	r, err := p.exchangeUDP(ctx, server, m, deadline, buf)
	switch {
	case err == errFlooded:
		// RFC 5452 9.3: spoofing detected, ask again over TCP.
		p.stats.abandoned.Add(1)
	case err != nil || !r.Truncated:
		return r, err
	}
	return p.exchangeTCP(ctx, server, m, deadline, buf)
}

// Retransmission of UDP queries (RFC 1123 6.1.3.3). The time left until
// the deadline is cut into maxRetransmits+1 equal intervals, and the
// query sent at the start of each, unless they would be shorter than
// minRetransmitInterval (then it is sent once): with the Stub's default
// timeout of 3 s, at 0, 1 and 2 s. A recursive resolver still working on
// the first copy answers the later ones from the same work.
const (
	maxRetransmits        = 2
	minRetransmitInterval = 250 * time.Millisecond
)

// errFlooded ends a UDP leg that saw maxStrays stray datagrams.
var errFlooded = errors.New("too many stray datagrams")

// leg is one leg of an exchange (UDP, or the TCP retry), for its errors.
type leg struct {
	ctx      context.Context
	network  string
	server   string
	deadline time.Time
}

// fail returns an *Error; the caller's context, if it has ended, is the
// cause whatever the socket said.
func (l *leg) fail(k Kind, reason string, err error) (*dns.Msg, error) {
	if cerr := CtxErr(l.ctx); cerr != nil {
		k, err = KindTimeout, cerr
	}
	return nil, &Error{Network: l.network, Server: l.server, Kind: k, Reason: reason, Err: err}
}

// kind classifies a socket error.
func (l *leg) kind(err error) Kind {
	if isTimeout(err) || !time.Now().Before(l.deadline) {
		return KindTimeout
	}
	return KindNetwork
}

// watch makes the end of ctx unblock c's reads and writes at once (the
// socket's deadline is the exchange's only timer; this is the only
// per-query cost of cancellation, and none for a context that cannot
// end). The returned stop reports whether c is untouched: false means
// the deadline was, or is being, moved, and c must not be reused.
func watch(ctx context.Context, c net.Conn) (stop func() bool) {
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
}

var aLongTimeAgo = time.Unix(1, 0)

// release ends the use of c by one query: back to the pool if the query
// ended cleanly and no cancellation touched c, closed otherwise.
func (p *Pool) release(network, server string, c *conn, stop func() bool, clean bool) {
	if stop != nil && !stop() {
		clean = false
	}
	if clean {
		p.put(network, server, c)
	} else {
		c.Close()
	}
}

// exchangeUDP does the UDP leg over a pooled socket.
func (p *Pool) exchangeUDP(ctx context.Context, server string, m *dns.Msg, deadline time.Time, buf *Buffer) (*dns.Msg, error) {
	l := leg{ctx: ctx, network: "udp", server: server, deadline: deadline}
	if err := CtxErr(ctx); err != nil {
		return l.fail(KindTimeout, "dial", err)
	}
	c, err := p.get(ctx, "udp", server, deadline)
	if err != nil {
		return l.fail(l.kind(err), "dial", err)
	}
	id := newID()
	q, err := packQuery(m, id, buf[:], false)
	if err != nil {
		p.release("udp", server, c, nil, true)
		return l.fail(KindMalformed, "pack", err)
	}
	// next is when the query is sent again (zero: never).
	var next time.Time
	interval := time.Until(deadline) / (maxRetransmits + 1)
	if interval >= minRetransmitInterval {
		next = time.Now().Add(interval)
	}
	readUntil := func() time.Time {
		if next.IsZero() {
			return deadline
		}
		return next
	}
	c.SetReadDeadline(readUntil())
	stop := watch(ctx, c)
	if _, err := c.Write(q); err != nil {
		p.release("udp", server, c, stop, false)
		return l.fail(l.kind(err), "write", err)
	}
	var lastBad error
	strays, sent := 0, 1
	for {
		n, err := c.Read(buf[:])
		if err != nil && !next.IsZero() && isTimeout(err) && CtxErr(ctx) == nil && time.Now().Before(deadline) {
			// No reply yet: send the query again (the read buffer
			// holds no query any more: pack it again, same ID).
			q, err = packQuery(m, id, buf[:], false)
			if err == nil {
				_, err = c.Write(q)
			}
			if err == nil {
				sent++
				p.stats.retransmits.Add(1)
				if sent <= maxRetransmits {
					next = next.Add(interval)
				} else {
					next = time.Time{} // the last copy: wait until the deadline
				}
				c.SetReadDeadline(readUntil())
				// The end of ctx may have moved the deadline between the
				// check above and this one: it must not be undone.
				if CtxErr(ctx) == nil {
					continue
				}
				err = CtxErr(ctx)
			}
		}
		if err != nil {
			p.release("udp", server, c, stop, false)
			if lastBad != nil && isTimeout(err) {
				return l.fail(KindMalformed, "no valid reply ("+strconv.Itoa(strays)+" stray datagrams)", lastBad)
			}
			return l.fail(l.kind(err), "read", err)
		}
		r, bad := checkDatagram(buf[:n], m, id)
		if bad != nil {
			// RFC 5452 9.1: it may be a forger's guess, or a late reply
			// to an earlier query: ignore it and wait for the reply.
			lastBad = bad
			strays++
			p.stats.strays.Add(1)
			if strays >= maxStrays {
				p.release("udp", server, c, stop, false)
				return nil, errFlooded
			}
			continue
		}
		// A socket that saw strays may have a known port, and one that
		// sent the query more than once may get another reply: close it.
		p.release("udp", server, c, stop, strays == 0 && sent == 1)
		if n := len(r.Answer) + len(r.Ns) + len(r.Extra); n > MaxRecords {
			return l.fail(KindMalformed, "reply has "+strconv.Itoa(n)+" records (limit "+strconv.Itoa(MaxRecords)+")", nil)
		}
		return r, nil
	}
}

// checkDatagram unpacks a UDP datagram and checks it against the query
// q sent with ID id. The ID, QR bit, opcode and question count are
// checked on the raw header first, so that a flood of wrong guesses
// costs a read per datagram, not an unpack.
func checkDatagram(b []byte, q *dns.Msg, id uint16) (*dns.Msg, error) {
	if len(b) > MaxUDPSize {
		return nil, errOversized
	}
	if len(b) >= 12 && (binary.BigEndian.Uint16(b) != id || b[2]&0x80 == 0 ||
		int(b[2]>>3&0xf) != q.Opcode || binary.BigEndian.Uint16(b[4:]) != 1) {
		return nil, errMismatch
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		return nil, err
	}
	if !matches(r, q, id) {
		return nil, errMismatch
	}
	return r, nil
}

// exchangeTCP does the TCP leg, over a pooled connection if there is
// one (RFC 7766 6.2.1). A reused connection that the server has closed
// in the meantime (RFC 7766 6.2.3: servers close idle connections) fails
// before any byte of a reply, and one on which the server left a message
// after an earlier reply gives one with another ID; the query is then
// sent again over a new connection, within the same deadline (at most
// once per idle connection kept, then over a connection of its own).
func (p *Pool) exchangeTCP(ctx context.Context, server string, m *dns.Msg, deadline time.Time, buf *Buffer) (*dns.Msg, error) {
	l := leg{ctx: ctx, network: "tcp", server: server, deadline: deadline}
	for {
		if err := CtxErr(ctx); err != nil {
			return l.fail(KindTimeout, "dial", err)
		}
		c, err := p.get(ctx, "tcp", server, deadline)
		if err != nil {
			return l.fail(l.kind(err), "dial", err)
		}
		r, err := p.queryTCP(&l, c, m, buf)
		if err != errStale {
			return r, err
		}
	}
}

// errStale is a reused TCP connection found closed by the server, or
// holding a message sent after an earlier reply.
var errStale = errors.New("stale TCP connection")

// queryTCP sends one query over c and reads its reply.
func (p *Pool) queryTCP(l *leg, c *conn, m *dns.Msg, buf *Buffer) (*dns.Msg, error) {
	id := newID()
	q, err := packQuery(m, id, buf[:], true)
	if err != nil {
		p.release("tcp", l.server, c, nil, true)
		return l.fail(KindMalformed, "pack", err)
	}
	c.SetDeadline(l.deadline)
	stop := watch(l.ctx, c)
	fail := func(k Kind, reason string, err error) (*dns.Msg, error) {
		p.release("tcp", l.server, c, stop, false)
		return l.fail(k, reason, err)
	}
	// stale reports an error that means the server closed a connection
	// we had kept, before it read this query.
	stale := func(n int, err error) bool {
		return c.reused && n == 0 && CtxErr(l.ctx) == nil &&
			(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
	}
	if _, err := c.Write(q); err != nil {
		if stale(0, err) {
			p.release("tcp", l.server, c, stop, false)
			return nil, errStale
		}
		return fail(l.kind(err), "write", err)
	}
	var hdr [2]byte
	if n, err := io.ReadFull(c, hdr[:]); err != nil {
		if stale(n, err) {
			p.release("tcp", l.server, c, stop, false)
			return nil, errStale
		}
		return fail(l.kind(err), "read", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n < 12 {
		return fail(KindMalformed, "reply of "+strconv.Itoa(n)+" bytes", dns.ErrShortRead)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return fail(l.kind(err), "read", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		return fail(KindMalformed, "unpack", err)
	}
	if !matches(r, m, id) {
		if c.reused && r.Id != id {
			// A message the server sent after an earlier reply on
			// this connection: ask again over a new one.
			p.release("tcp", l.server, c, stop, false)
			return nil, errStale
		}
		// The stream is ours: no one else's datagram can be in it.
		return fail(KindMalformed, "mismatched reply", errMismatch)
	}
	if n := len(r.Answer) + len(r.Ns) + len(r.Extra); n > MaxRecords {
		return fail(KindMalformed, "reply has "+strconv.Itoa(n)+" records (limit "+strconv.Itoa(MaxRecords)+")", nil)
	}
	if r.Truncated {
		return fail(KindMalformed, "truncated reply over TCP", nil)
	}
	p.release("tcp", l.server, c, stop, true)
	return r, nil
}

// packQuery packs m with the given ID, into buf if it fits, with the
// two-byte length of RFC 1035 4.2.2 in front if framed (TCP).
func packQuery(m *dns.Msg, id uint16, buf []byte, framed bool) ([]byte, error) {
	off := 0
	if framed {
		off = 2
	}
	b, err := m.PackBuffer(buf[off:])
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(b, id)
	if !framed {
		return b, nil
	}
	if len(b) > 0xffff {
		return nil, errors.New("query longer than 65535 bytes")
	}
	if &b[0] == &buf[2] {
		b = buf[:len(b)+2]
	} else {
		b = append(make([]byte, 2, len(b)+2), b...)
	}
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	return b, nil
}

// Matches reports whether r is a reply to q: same ID, QR set, same
// opcode, and exactly q's one question, the name compared without regard
// to case (a server may echo 0x20-randomised case).
func Matches(r, q *dns.Msg) bool { return matches(r, q, q.Id) }

// matches is Matches for a query sent with ID id.
func matches(r, q *dns.Msg, id uint16) bool {
	if r.Id != id || !r.Response || r.Opcode != q.Opcode || len(r.Question) != 1 || len(q.Question) != 1 {
		return false
	}
	a, b := r.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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
