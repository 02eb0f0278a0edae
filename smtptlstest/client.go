package smtptlstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/deliver"
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

// Send delivers msg via the one host h, to its first address, with
// deliver.Client.DeliverVia: a test helper for checking what one session
// with one host does. Production delivery code lives in package deliver;
// an MTA uses deliver.Client.Deliver. port 0 means 25. Nothing is
// recorded to TLS-RPT: callers that want it call h.RecordSession with
// Outcome.Err (or VerifyErr for a delivered session).
//
// ctx bounds the whole attempt: its deadline caps every stage and its
// end closes the connection at once; Err then wraps ctx.Err().
func Send(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), h *smtptls.Host, port int, a smtptls.Attempt, msg Message) (o Outcome) {
	c := &deliver.Client{
		Dial:      dial,
		Port:      port,
		MaxAddrs:  1,
		HelloName: "client.smtptlstest.invalid",
		Logger:    slog.New(slog.DiscardHandler),
	}
	m := &deliver.Message{From: msg.From, To: msg.To, Body: bytes.NewReader(msg.Data), Size: int64(len(msg.Data)),
		RequireTLS: a.RequireTLS, TLSRequiredNo: a.TLSRequiredNo, Report: a.Report}
	if err := h.CheckAttempt(a); err != nil {
		o.Err = err
		o.Result = h.FailureResult(err)
		return o
	}
	if len(h.Addrs) == 0 {
		o.Err = errors.New("smtptlstest: host has no address")
		return o
	}
	res, err := c.DeliverVia(ctx, h, m)
	if err != nil {
		o.Err = err
		return o
	}
	o.Addr, o.TLS, o.Verdict = res.Addr, res.TLS, res.Verdict
	if !res.TLS {
		o.Verdict = smtptls.Failed
	}
	for _, t := range res.Tries {
		if t.Result != "" {
			o.Result = t.Result
		}
	}
	o.Delivered = len(res.Rcpts) > 0
	for _, r := range res.Rcpts {
		o.Delivered = o.Delivered && r.Status == deliver.Delivered
	}
	var last error
	if n := len(res.Tries); n > 0 {
		last = res.Tries[n-1].Err
	}
	switch {
	case o.Delivered:
		o.VerifyErr = last
	case last != nil:
		o.Err = last
		if errors.Is(last, smtptls.ErrSTARTTLSNotOffered) {
			o.VerifyErr = smtptls.ErrSTARTTLSNotOffered
		}
	default:
		r := res.Rcpts[0]
		o.Err = fmt.Errorf("smtptlstest: %s %d %s %s", r.Status, r.Code, r.Enhanced, r.Text)
	}
	return o
}
