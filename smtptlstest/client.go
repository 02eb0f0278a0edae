package smtptlstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/tlsrpt"
)

// Message is one message for Send.
type Message struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// To lists the envelope recipients (RCPT TO).
	To []string
	// Data is the message, headers and body, with CRLF line endings.
	Data []byte
}

// Outcome is what one delivery attempt through a Host did.
type Outcome struct {
	// Delivered reports whether the server accepted the message.
	Delivered bool
	// Addr is the address dialled.
	Addr netip.Addr
	// TLS reports whether the session was encrypted.
	TLS bool
	// Verdict is the host's verdict on the TLS session (Failed without
	// TLS).
	Verdict smtptls.Verdict
	// VerifyErr is the verification failure when Verdict is Failed, also
	// when the attempt went on (testing modes, TLS-Required: No).
	VerifyErr error
	// Err is why the message was not delivered, or nil.
	Err error
	// Result is the TLS-RPT result type to record for this session, or ""
	// for a success (or a failure that is not a TLS failure).
	Result tlsrpt.ResultType
}

// Send delivers msg via h the way a careful MTA does, and is the reference
// for using a smtptls.Host with github.com/emersion/go-smtp:
//
//  1. dial the host's validated address on port (25 when 0) with dial;
//  2. EHLO; if STARTTLS is not offered, deliver in cleartext only when
//     the host's level allows it for this attempt (RequireTLSFor), else
//     fail with h.STARTTLSNotOffered() (which matches
//     smtptls.ErrSTARTTLSNotOffered);
//  3. STARTTLS with h.TLSConfigFor(nil, a), which aborts the handshake
//     when authentication is mandatory and fails;
//  4. h.Verify on the session for the verdict and the TLS-RPT result.
//
// go-smtp's client can only start TLS on a fresh connection, so Send asks
// EHLO on a first connection and runs STARTTLS on a second one.
//
// ctx bounds the whole attempt: its deadline applies to every read and
// write (go-smtp's own per-command timeouts of minutes never extend it),
// and its end aborts the attempt at once, also in the middle of a TLS
// handshake; Err then wraps ctx.Err().
func Send(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), h *smtptls.Host, port int, a smtptls.Attempt, msg Message) (o Outcome) {
	defer func() {
		if o.Err != nil && ctx.Err() != nil && !errors.Is(o.Err, ctx.Err()) {
			// The context ended the attempt (through a deadline on the
			// connection): say so, keeping the network error.
			o.Err = fmt.Errorf("smtptlstest: %w: %w", ctx.Err(), o.Err)
		}
	}()
	if err := h.CheckAttempt(a); err != nil {
		o.Err = err
		o.Result = h.FailureResult(err)
		return o
	}
	if len(h.Addrs) == 0 {
		o.Err = errors.New("smtptlstest: host has no address")
		return o
	}
	if port == 0 {
		port = 25
	}
	o.Addr = h.Addrs[0]
	addr := net.JoinHostPort(o.Addr.String(), strconv.Itoa(port))
	connect := func() (*smtp.Client, error) {
		conn, err := dial(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return smtp.NewClient(bindContext(ctx, conn)), nil
	}
	c, err := connect()
	if err != nil {
		o.Err = err
		return o
	}
	defer func() { c.Close() }()
	if err := c.Hello("client.smtptlstest.invalid"); err != nil {
		o.Err = peerError{err}
		return o
	}
	if ok, _ := c.Extension("STARTTLS"); !ok || !h.UseTLS() {
		if h.UseTLS() {
			o.VerifyErr = h.STARTTLSNotOffered()
			o.Result = tlsrpt.StartTLSNotSupported
			if h.RequireTLSFor(a) {
				c.Quit()
				o.Err = o.VerifyErr
				return o
			}
		}
	} else {
		c.Quit()
		c.Close()
		conn, err := dial(ctx, "tcp", addr)
		if err != nil {
			o.Err = err
			return o
		}
		raw := bindContext(ctx, conn)
		c = smtp.NewClient(raw) // closed by the deferred Close on failure
		tc, err := smtp.NewClientStartTLS(raw, h.TLSConfigFor(nil, a))
		if err == nil {
			c = tc
			err = c.Hello("client.smtptlstest.invalid") // runs the handshake
		}
		if err != nil {
			o.Err = peerError{err}
			o.Result = h.FailureResult(err)
			return o
		}
		cs, _ := c.TLSConnectionState()
		o.TLS = true
		o.Verdict, o.VerifyErr = h.Verify(cs)
		o.Result = h.FailureResult(o.VerifyErr)
	}
	if err := c.SendMail(msg.From, msg.To, bytes.NewReader(msg.Data)); err != nil {
		o.Err = peerError{err}
		return o
	}
	o.Delivered = true
	c.Quit()
	return o
}

// peerError is an error whose text may carry the server's words (an SMTP
// reply, a certificate name in a handshake error): its message is
// escaped and bounded (internal/quote), the error itself is unchanged
// for errors.Is and errors.As.
type peerError struct{ err error }

func (e peerError) Error() string { return quote.Text(e.err.Error()) }
func (e peerError) Unwrap() error { return e.err }

// ctxConn bounds a connection's I/O by a context. go-smtp sets its own
// deadlines around every command (minutes, as RFC 5321 4.5.3.2
// recommends) and clears them afterwards, which would replace a deadline
// set once from the context: a peer that stalls after STARTTLS, or in the
// middle of the TLS handshake, would hold the attempt for minutes. ctxConn
// clamps every deadline to the context's, and expires them all when the
// context ends.
type ctxConn struct {
	net.Conn
	ctx  context.Context
	mu   sync.Mutex // orders deadline changes against the context's end
	stop func() bool
}

// bindContext returns conn bound to ctx; closing it releases the binding.
func bindContext(ctx context.Context, conn net.Conn) net.Conn {
	c := &ctxConn{Conn: conn, ctx: ctx}
	c.SetDeadline(time.Time{})
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.Conn.SetDeadline(past)
	})
	return c
}

// past is a deadline that has passed: I/O fails at once.
var past = time.Unix(1, 0)

func (c *ctxConn) clamp(t time.Time) time.Time {
	if c.ctx.Err() != nil {
		return past
	}
	if d, ok := c.ctx.Deadline(); ok && (t.IsZero() || d.Before(t)) {
		return d
	}
	return t
}

func (c *ctxConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetDeadline(c.clamp(t))
}

func (c *ctxConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *ctxConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

func (c *ctxConn) Close() error {
	if c.stop != nil {
		c.stop()
	}
	return c.Conn.Close()
}
