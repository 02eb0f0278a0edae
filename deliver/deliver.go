package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/tlsrpt"
)

// Client delivers messages: one call of Deliver is one delivery attempt of
// one message to the recipients of one domain. Set its fields before the
// first call and do not change them afterwards; a Client is safe for
// concurrent use and must not be copied after first use.
type Client struct {
	// Evaluator decides how to deliver to each domain. Nil means a
	// zero-value Evaluator (DANE with in-process DNSSEC validation and
	// MTA-STS with a memory cache), made on first use and kept.
	Evaluator *smtptls.Evaluator

	// Reports receives every session and every policy-level failure for
	// TLS-RPT (RFC 8460). Nil means no TLS-RPT.
	Reports *tlsrpt.Aggregator

	// HelloName is the name sent with EHLO (and HELO). Empty means the
	// host name (os.Hostname).
	HelloName string

	// Dial opens the TCP connections to the MX hosts' addresses. Nil means
	// a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Port is the SMTP port. Zero means 25.
	Port int

	// MaxAddrs bounds the addresses tried per message, over all hosts.
	// Zero means 5 (RFC 5321 5.1 asks for a configurable limit that tries
	// at least two).
	MaxAddrs int

	// Logger receives one line per SMTP session. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Timeouts bound each stage of a session.
	Timeouts Timeouts

	once sync.Once
	ev   *smtptls.Evaluator
	helo string
	log  *slog.Logger
}

// Timeouts bound the stages of a session; the context's deadline caps
// each of them. A zero field means the RFC 5321 4.5.3.2 value.
type Timeouts struct {
	// Connect bounds the TCP connection. Zero means 30 s.
	Connect time.Duration
	// Greeting bounds the wait for the 220 banner. Zero means 5 min.
	Greeting time.Duration
	// Hello bounds EHLO (or HELO). Zero means 5 min.
	Hello time.Duration
	// StartTLS bounds STARTTLS and the TLS handshake. Zero means 5 min.
	StartTLS time.Duration
	// Mail bounds MAIL FROM. Zero means 5 min.
	Mail time.Duration
	// Rcpt bounds each RCPT TO. Zero means 5 min.
	Rcpt time.Duration
	// DataInit bounds DATA up to the 354 reply. Zero means 2 min.
	DataInit time.Duration
	// DataBlock bounds each write of the message. Zero means 3 min.
	DataBlock time.Duration
	// DataEnd bounds the reply to the final ".". Zero means 10 min.
	DataEnd time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.Hello, 5*time.Minute)
	def(&t.StartTLS, 5*time.Minute)
	def(&t.Mail, 5*time.Minute)
	def(&t.Rcpt, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataEnd, 10*time.Minute)
	return t
}

// quitTimeout bounds QUIT: the outcome is known by then.
const quitTimeout = 10 * time.Second

// Message is one message and its envelope.
type Message struct {
	// From is the reverse path (MAIL FROM); empty for a null sender.
	From string
	// To are the recipients (RCPT TO), all in one domain.
	To []string
	// Body is the message, headers and body, with CRLF line endings; it
	// is read from offset 0 for each session. Size is its length.
	Body io.ReaderAt
	Size int64
	// RequireTLS: the message carries the REQUIRETLS option (RFC 8689).
	RequireTLS bool
	// TLSRequiredNo: the message carries "TLS-Required: No" (RFC 8689
	// 4.2.2): TLS is used when possible, failures are ignored (and
	// reported).
	TLSRequiredNo bool
	// Report: the message is a TLS-RPT report (RFC 8460 3): it is
	// delivered despite TLS failures, cleartext included, and its
	// sessions are not counted in Reports.
	Report bool
	// Final: this is the MTA's last attempt before it would bounce. When
	// it delivers nothing and MTA-STS enforce excluded or failed a host,
	// Deliver rechecks the policy once (RFC 8461 5).
	Final bool
	// EnvID, Ret, Notify and ORcpt are the DSN parameters of RFC 3461,
	// sent only to servers that offer DSN. Ret is "FULL", "HDRS" or "";
	// Notify and ORcpt are parallel to To (empty means none). An ORcpt
	// without a type ("addr-type;") gets "rfc822;".
	EnvID  string
	Ret    string
	Notify []string
	ORcpt  []string
}

// Status is the outcome for one recipient.
type Status uint8

const (
	// Delivered: the server accepted the message for the recipient.
	Delivered Status = iota + 1
	// Deferred: try again later.
	Deferred
	// Bounced: permanent failure; send a DSN.
	Bounced
)

// String returns "delivered", "deferred" or "bounced".
func (s Status) String() string {
	switch s {
	case Delivered:
		return "delivered"
	case Deferred:
		return "deferred"
	case Bounced:
		return "bounced"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// RcptResult is the outcome for one recipient.
type RcptResult struct {
	// To is the recipient.
	To string
	// Status is what happened.
	Status Status
	// Code is the SMTP reply code (the server's, or ours: 250, 451, 550,
	// 554, ...).
	Code int
	// Enhanced is the RFC 3463 enhanced status code ("5.7.30").
	Enhanced string
	// Text is the diagnostic: the server's text or our own, quoted and
	// bounded.
	Text string
}

// Try is one address tried.
type Try struct {
	// Host and Addr are the MX host and the address dialled.
	Host string
	Addr netip.Addr
	// TLS reports whether the session was encrypted.
	TLS bool
	// Verdict is the host's verdict on the TLS session (meaningful when
	// TLS).
	Verdict smtptls.Verdict
	// Err is why the try did not deliver (a connection, TLS or protocol
	// error, or a *ReplyError), or for a try that delivered the TLS
	// failure that was ignored (MTA-STS testing, TLS-Required: No, a
	// report); nil for a clean session.
	Err error
	// Result is the TLS-RPT result type of the session's TLS failure, or
	// "".
	Result tlsrpt.ResultType
}

// Result is the outcome of one delivery attempt.
type Result struct {
	// Domain is the recipient domain, lowercase A-labels.
	Domain string
	// Host and Addr are the host and address that took the message, or
	// the last tried.
	Host string
	Addr netip.Addr
	// TLS reports whether that session was encrypted; Verdict is its
	// verdict (meaningful when TLS).
	TLS     bool
	Verdict smtptls.Verdict
	// Rcpts are the recipients' outcomes, in the order of Message.To.
	Rcpts []RcptResult
	// Tries are the addresses tried, in order.
	Tries []Try
}

func (c *Client) init() {
	c.once.Do(func() {
		c.ev = c.Evaluator
		if c.ev == nil {
			c.ev = &smtptls.Evaluator{}
		}
		c.helo = c.HelloName
		if c.helo == "" {
			c.helo = hostname()
		}
		c.log = c.Logger
		if c.log == nil {
			c.log = slog.Default()
		}
	})
}

// Deliver makes one delivery attempt of m to its recipients' domain:
// evaluate the domain, then try the hosts in the decision's order, each
// host's validated addresses in order, applying each host's TLS level.
// The returned error is only for misuse (no recipients, recipients of
// several domains, a nil body, malformed DSN parameters); every delivery
// outcome is in the Result.
func (c *Client) Deliver(ctx context.Context, m *Message) (*Result, error) {
	c.init()
	domain, err := check(m)
	if err != nil {
		return nil, err
	}
	res := newResult(domain, m)
	dec, err := c.ev.Evaluate(ctx, domain)
	if err != nil {
		res.setAll(evalFailure(err))
		return res, nil
	}
	res.Domain = dec.Domain
	d := c.newDelivery(ctx, m, res)
	d.run(dec.Hosts, true)
	if m.Final && res.pending() && !res.delivered() && d.stsFailed {
		dec2, err := c.ev.Recheck(ctx, domain)
		if err == nil && policyChanged(dec, dec2) {
			d.reset()
			d.run(dec2.Hosts, true)
		}
	}
	d.finish()
	return res, nil
}

// DeliverVia makes one delivery attempt of m via the one host h of a
// Decision the caller obtained: for an MTA that runs its own loop over
// the hosts, and for tests. It does what Deliver does for one host, and
// records the session to Reports.
func (c *Client) DeliverVia(ctx context.Context, h *smtptls.Host, m *Message) (*Result, error) {
	c.init()
	domain, err := check(m)
	if err != nil {
		return nil, err
	}
	res := newResult(domain, m)
	d := c.newDelivery(ctx, m, res)
	d.run([]*smtptls.Host{h}, false)
	d.finish()
	return res, nil
}

func newResult(domain string, m *Message) *Result {
	res := &Result{Domain: domain, Rcpts: make([]RcptResult, len(m.To))}
	for i, to := range m.To {
		res.Rcpts[i].To = to
	}
	return res
}

// check validates m and returns the recipients' domain.
func check(m *Message) (string, error) {
	switch {
	case m == nil:
		return "", errors.New("deliver: nil message")
	case len(m.To) == 0:
		return "", errors.New("deliver: no recipients")
	case m.Body == nil:
		return "", errors.New("deliver: nil body")
	case m.Size < 0:
		return "", errors.New("deliver: negative size")
	case len(m.Notify) != 0 && len(m.Notify) != len(m.To), len(m.ORcpt) != 0 && len(m.ORcpt) != len(m.To):
		return "", errors.New("deliver: Notify and ORcpt must be empty or parallel to To")
	case m.Ret != "" && m.Ret != "FULL" && m.Ret != "HDRS":
		return "", fmt.Errorf("deliver: Ret %s is neither FULL nor HDRS", quote.String(m.Ret))
	}
	if bad := strings.ContainsAny(m.From, "\r\n<> ") || !noCTL(m.EnvID); bad {
		return "", fmt.Errorf("deliver: invalid sender or ENVID %s", quote.String(m.From))
	}
	var domain string
	for i, to := range m.To {
		at := strings.LastIndexByte(to, '@')
		if at < 0 || strings.ContainsAny(to, "\r\n<> ") {
			return "", fmt.Errorf("deliver: recipient %s is not an address", quote.String(to))
		}
		d := strings.ToLower(strings.TrimSuffix(to[at+1:], "."))
		if n, err := dnsname.Mail.Normalize(d); err == nil {
			d = n
		}
		if i == 0 {
			domain = d
		} else if d != domain {
			return "", fmt.Errorf("deliver: recipients of several domains (%s and %s)", quote.String(domain), quote.String(d))
		}
		if len(m.Notify) > 0 && !printable(m.Notify[i]) || len(m.ORcpt) > 0 && !noCTL(m.ORcpt[i]) {
			return "", errors.New("deliver: invalid NOTIFY or ORCPT")
		}
	}
	return domain, nil
}

// noCTL reports whether s has no control characters (xtext encodes the
// rest).
func noCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// evalFailure is the recipients' outcome when Evaluate fails.
func evalFailure(err error) RcptResult {
	var e *smtptls.Error
	switch {
	case errors.Is(err, smtptls.ErrNullMX):
		return RcptResult{Status: Bounced, Code: 556, Enhanced: "5.1.10", Text: quote.Err(err)}
	case errors.Is(err, smtptls.ErrNoSuchDomain):
		return RcptResult{Status: Bounced, Code: 550, Enhanced: "5.1.2", Text: quote.Err(err)}
	case errors.As(err, &e) && !e.Temporary():
		return RcptResult{Status: Bounced, Code: 550, Enhanced: e.EnhancedCode(), Text: quote.Err(err)}
	case errors.As(err, &e):
		return RcptResult{Status: Deferred, Code: 451, Enhanced: e.EnhancedCode(), Text: quote.Err(err)}
	}
	return RcptResult{Status: Deferred, Code: 451, Enhanced: "4.4.3", Text: quote.Err(err)}
}

// policyChanged reports whether Recheck found a different MTA-STS policy.
func policyChanged(old, cur *smtptls.Decision) bool {
	if cur == nil {
		return false
	}
	a, b := old.STS, cur.STS
	switch {
	case a == nil || b == nil:
		return a != b
	case a.ID != b.ID || a.Mode != b.Mode:
		return true
	case (a.Policy == nil) != (b.Policy == nil):
		return true
	case a.Policy != nil && strings.Join(a.Policy.Lines, "\n") != strings.Join(b.Policy.Lines, "\n"):
		return true
	}
	return false
}

func (r *Result) setAll(o RcptResult) {
	for i := range r.Rcpts {
		to := r.Rcpts[i].To
		r.Rcpts[i] = o
		r.Rcpts[i].To = to
	}
}

// pending reports whether some recipient has no outcome yet.
func (r *Result) pending() bool {
	for _, rc := range r.Rcpts {
		if rc.Status == 0 {
			return true
		}
	}
	return false
}

func (r *Result) delivered() bool {
	for _, rc := range r.Rcpts {
		if rc.Status == Delivered {
			return true
		}
	}
	return false
}
