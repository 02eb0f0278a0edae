package smtptlstest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"

	"github.com/emersion/go-smtp"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/tlsrpt"
)

// Message is one message for Send.
type Message struct {
	From string
	To   []string
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
//     fail with smtptls.ErrSTARTTLSNotOffered;
//  3. STARTTLS with h.TLSConfigFor(nil, a), which aborts the handshake
//     when authentication is mandatory and fails;
//  4. h.Verify on the session for the verdict and the TLS-RPT result.
//
// go-smtp's client can only start TLS on a fresh connection, so Send asks
// EHLO on a first connection and runs STARTTLS on a second one.
func Send(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), h *smtptls.Host, port int, a smtptls.Attempt, msg Message) Outcome {
	var o Outcome
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
		if d, ok := ctx.Deadline(); ok {
			conn.SetDeadline(d)
		}
		return smtp.NewClient(conn), nil
	}
	c, err := connect()
	if err != nil {
		o.Err = err
		return o
	}
	defer func() { c.Close() }()
	if err := c.Hello("client.smtptlstest.invalid"); err != nil {
		o.Err = err
		return o
	}
	if ok, _ := c.Extension("STARTTLS"); !ok || !h.UseTLS() {
		if h.UseTLS() {
			o.VerifyErr = smtptls.ErrSTARTTLSNotOffered
			o.Result = tlsrpt.StartTLSNotSupported
			if h.RequireTLSFor(a) {
				c.Quit()
				o.Err = smtptls.ErrSTARTTLSNotOffered
				return o
			}
		}
	} else {
		c.Quit()
		c.Close()
		raw, err := dial(ctx, "tcp", addr)
		if err != nil {
			o.Err = err
			return o
		}
		if d, ok := ctx.Deadline(); ok {
			raw.SetDeadline(d)
		}
		c = smtp.NewClient(raw) // closed by the deferred Close on failure
		tc, err := smtp.NewClientStartTLS(raw, h.TLSConfigFor(nil, a))
		if err == nil {
			c = tc
			err = c.Hello("client.smtptlstest.invalid") // runs the handshake
		}
		if err != nil {
			o.Err = err
			o.Result = h.FailureResult(err)
			return o
		}
		cs, _ := c.TLSConnectionState()
		o.TLS = true
		o.Verdict, o.VerifyErr = h.Verify(cs)
		o.Result = h.FailureResult(o.VerifyErr)
	}
	if err := c.SendMail(msg.From, msg.To, bytes.NewReader(msg.Data)); err != nil {
		o.Err = err
		return o
	}
	o.Delivered = true
	c.Quit()
	return o
}
