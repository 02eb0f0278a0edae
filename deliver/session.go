package deliver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/internal/quote"
)

// delivery is the state of one Deliver call.
type delivery struct {
	c        *Client
	ctx      context.Context
	m        *Message
	res      *Result
	a        smtptls.Attempt
	t        Timeouts
	port     string
	maxAddrs int
	tried    int

	scanned            bool
	needUTF8, need8bit bool

	reason    RcptResult // the most specific deferral reason so far
	rank      int
	stsFailed bool // MTA-STS enforce excluded or failed a host
	// REQUIRETLS bookkeeping: hosts disqualified (RFC 8689 4.2.1), and
	// whether anything else (an unreachable host) failed.
	rtlsOut, otherFail bool
}

// Ranks of deferral reasons: a server's reply says more than a TLS
// failure, which says more than a policy failure or a lost connection.
const (
	rankConn = iota + 1
	rankPolicy
	rankTLS
	rankReply
)

// next says where a session sends the attempt.
type next int

const (
	nextAddr  next = iota // try the host's next address
	nextHost              // skip the host's other addresses
	done                  // every recipient has its outcome for this attempt
	nextPlain             // the same address again, without STARTTLS
)

func (c *Client) newDelivery(ctx context.Context, m *Message, res *Result) *delivery {
	port := c.Port
	if port == 0 {
		port = 25
	}
	max := c.MaxAddrs
	if max <= 0 {
		max = 5
	}
	return &delivery{
		c: c, ctx: ctx, m: m, res: res,
		a:        smtptls.Attempt{RequireTLS: m.RequireTLS, TLSRequiredNo: m.TLSRequiredNo, Report: m.Report},
		t:        c.Timeouts.withDefaults(),
		port:     strconv.Itoa(port),
		maxAddrs: max,
	}
}

// reset prepares a second pass (after Recheck found a new policy).
func (d *delivery) reset() {
	d.tried = 0
	d.rtlsOut, d.otherFail, d.stsFailed = false, false, false
}

func (d *delivery) relaxed() bool { return !d.a.RequireTLS && (d.a.TLSRequiredNo || d.a.Report) }

// note keeps r as the deferral reason unless a more specific one is
// known.
func (d *delivery) note(rank int, r RcptResult) {
	if rank >= d.rank {
		d.rank, d.reason = rank, r
	}
}

// run tries hosts in order until every recipient has an outcome.
func (d *delivery) run(hosts []*smtptls.Host, decision bool) {
hosts:
	for _, h := range hosts {
		if !d.res.pending() {
			return
		}
		if err := d.ctx.Err(); err != nil {
			d.note(rankConn, deferral("4.4.1", fmt.Errorf("deliver: %w", err)))
			d.otherFail = true
			return
		}
		// RFC 8689 4.2.2 and RFC 8460 3: TLS-Required: No and reports
		// ignore MTA-STS, so a host its enforce mode excluded is still
		// tried (opportunistically); the failure is still reported.
		relaxedExcluded := h.Err != nil && h.Excluded && d.relaxed() && len(h.Addrs) > 0
		if h.Err != nil {
			h.RecordSession(d.c.Reports, d.a, netip.Addr{}, h.Err, time.Now())
			if h.Excluded {
				d.stsFailed = true
			}
			if !relaxedExcluded {
				d.note(rankPolicy, deferral(enhanced(h.Err, "4.4.4"), h.Err))
				d.otherFail = true
				continue
			}
		} else if err := h.CheckAttempt(d.a); err != nil {
			// REQUIRETLS cannot be met via this host.
			d.note(rankPolicy, deferral("4.7.30", err))
			d.rtlsOut = true
			continue
		}
		if len(h.Addrs) == 0 {
			d.note(rankConn, deferral("4.4.4", fmt.Errorf("deliver: %s has no address", h.Name)))
			d.otherFail = true
		}
		for _, addr := range h.Addrs {
			if d.tried >= d.maxAddrs {
				break hosts
			}
			d.tried++
			nx := d.session(h, addr, false)
			if nx == nextPlain {
				nx = d.session(h, addr, true)
			}
			switch nx {
			case nextHost:
				continue hosts
			case done:
				return
			}
		}
	}
}

// finish gives every recipient without an outcome the deferral reason,
// or the REQUIRETLS bounce when no host could qualify.
func (d *delivery) finish() {
	if !d.res.pending() {
		return
	}
	r := d.reason
	switch {
	case d.m.RequireTLS && d.rtlsOut && !d.otherFail:
		r = RcptResult{Status: Bounced, Code: 550, Enhanced: "5.7.30",
			Text: quote.Text("REQUIRETLS: no MX host qualifies (RFC 8689 4.2.1)")}
	case d.rank == 0:
		r = deferral("4.4.4", errors.New("deliver: no usable MX host"))
	}
	for i := range d.res.Rcpts {
		if d.res.Rcpts[i].Status == 0 {
			to := d.res.Rcpts[i].To
			d.res.Rcpts[i] = r
			d.res.Rcpts[i].To = to
		}
	}
}

// deferral is a Deferred outcome with our own diagnostic.
func deferral(enh string, err error) RcptResult {
	if strings.HasPrefix(enh, "5.") {
		enh = "4" + enh[1:]
	}
	return RcptResult{Status: Deferred, Code: 451, Enhanced: enh, Text: quote.Err(err)}
}

// enhanced returns the enhanced code an error carries, or def.
func enhanced(err error, def string) string {
	var e *smtptls.Error
	if errors.As(err, &e) {
		return e.EnhancedCode()
	}
	var r *ReplyError
	if errors.As(err, &r) && r.Enhanced != "" {
		return r.Enhanced
	}
	return def
}

// fromReply is a recipient outcome from a server reply.
func fromReply(r *reply) RcptResult {
	st := Deferred
	switch r.code / 100 {
	case 2:
		st = Delivered
	case 5:
		st = Bounced
	}
	return RcptResult{Status: st, Code: r.code, Enhanced: r.enhanced, Text: quote.Text(r.text())}
}

// scan learns once whether the envelope needs SMTPUTF8 and the body
// 8BITMIME.
func (d *delivery) scan() error {
	if d.scanned {
		return nil
	}
	d.scanned = true
	d.needUTF8 = !ascii(d.m.From)
	for _, to := range d.m.To {
		d.needUTF8 = d.needUTF8 || !ascii(to)
	}
	buf := make([]byte, 4<<10)
	sr := io.NewSectionReader(d.m.Body, 0, d.m.Size)
	for {
		n, err := sr.Read(buf)
		if !ascii(string(buf[:n])) {
			d.need8bit = true
			return nil
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] > 0x7f {
			return false
		}
	}
	return true
}

// session is one connection to addr of h. plain skips STARTTLS (the
// cleartext retry of an attempt that may go without TLS).
func (d *delivery) session(h *smtptls.Host, addr netip.Addr, plain bool) (nx next) {
	try := Try{Host: h.Name, Addr: addr}
	var cs *tls.ConnectionState
	outcome := "next"
	defer func() {
		d.res.Tries = append(d.res.Tries, try)
		d.res.Host, d.res.Addr, d.res.TLS, d.res.Verdict = try.Host, try.Addr, try.TLS, try.Verdict
		d.log(h, try, cs, outcome)
	}()
	if err := d.scan(); err != nil {
		try.Err = fmt.Errorf("deliver: reading the message: %w", err)
		d.note(rankReply, deferral("4.3.0", try.Err))
		d.otherFail = true
		return done
	}
	fail := func(rank int, enh string, err error) {
		try.Err = err
		d.note(rank, deferral(enhanced(err, enh), err))
		if rank != rankPolicy {
			d.otherFail = true
		}
	}

	dctx, cancel := context.WithTimeout(d.ctx, d.t.Connect)
	raw, err := d.dial(dctx, net.JoinHostPort(addr.String(), d.port))
	cancel()
	if err != nil {
		fail(rankConn, "4.4.1", d.ctxErr(err))
		return nextAddr
	}
	cn := newConn(d.ctx, raw)
	defer cn.close()

	cn.stage(d.t.Greeting)
	r, err := cn.read()
	if err == nil && r.code/100 != 2 {
		err = r.err("greeting") // 4xx or 5xx: the next address
	}
	if err == nil {
		err = cn.hello(d.t.Hello, d.c.helo)
	}
	if err != nil {
		fail(rankFor(err), "4.4.2", err)
		return nextAddr
	}

	var tlsErr error // the TLS failure to report
	switch {
	case plain || !h.UseTLS():
	case !cn.has("STARTTLS"):
		// A KindSTARTTLS *Error (4.7.4) that matches
		// smtptls.ErrSTARTTLSNotOffered and names domain and host.
		tlsErr = h.STARTTLSNotOffered()
		if h.RequireTLSFor(d.a) {
			h.RecordSession(d.c.Reports, d.a, addr, tlsErr, time.Now())
			try.Result = h.FailureResult(tlsErr)
			d.stsFailed = d.stsFailed || h.Level == smtptls.STSEnforce
			fail(rankTLS, "4.7.4", tlsErr)
			d.quit(cn)
			return nextHost
		}
	default:
		err := cn.startTLS(d.t.StartTLS, h.TLSConfigFor(nil, d.a))
		var re *ReplyError
		switch {
		case errors.As(err, &re) && !h.RequireTLSFor(d.a):
			// STARTTLS refused: the connection is still clear.
			tlsErr = err
		case err != nil:
			try.Result = h.FailureResult(err)
			h.RecordSession(d.c.Reports, d.a, addr, err, time.Now())
			d.stsFailed = d.stsFailed || h.Level == smtptls.STSEnforce
			fail(rankFor(err), "4.7.5", err)
			if d.ctx.Err() == nil && !h.RequireTLSFor(d.a) && re == nil {
				// Opportunistic TLS and relaxed attempts may go in
				// clear: a new connection without STARTTLS.
				return nextPlain
			}
			return nextAddr
		default:
			st := cn.tls.ConnectionState()
			cs = &st
			try.TLS = true
			try.Verdict, tlsErr = h.Verify(st)
			if err := cn.hello(d.t.Hello, d.c.helo); err != nil {
				h.RecordSession(d.c.Reports, d.a, addr, tlsErr, time.Now())
				fail(rankFor(err), "4.4.2", err)
				return nextAddr
			}
		}
	}
	if !plain && h.UseTLS() && !(try.Result != "") {
		h.RecordSession(d.c.Reports, d.a, addr, tlsErr, time.Now())
		try.Result = h.FailureResult(tlsErr)
	}
	if tlsErr != nil {
		try.Err = tlsErr // ignored: testing, opportunistic or relaxed
	}

	if d.a.RequireTLS && (!try.TLS || !cn.has("REQUIRETLS")) {
		fail(rankPolicy, "4.7.30", fmt.Errorf("deliver: %s does not offer REQUIRETLS (RFC 8689 4.2.1)", h.Name))
		d.rtlsOut = true
		d.quit(cn)
		return nextHost
	}
	switch {
	case d.needUTF8 && !cn.has("SMTPUTF8"):
		d.bounceAll(RcptResult{Status: Bounced, Code: 554, Enhanced: "5.6.7",
			Text: quote.Text(h.Name + " does not support SMTPUTF8, which the addresses need (RFC 6531 3.2)")})
		outcome = "bounced"
		d.quit(cn)
		return done
	case d.need8bit && !cn.has("8BITMIME"):
		d.bounceAll(RcptResult{Status: Bounced, Code: 554, Enhanced: "5.6.3",
			Text: quote.Text(h.Name + " does not support 8BITMIME, which the body needs (RFC 6152 3)")})
		outcome = "bounced"
		d.quit(cn)
		return done
	}
	nx, outcome = d.transaction(cn, &try)
	return nx
}

// rankFor ranks a session error: a server's reply or a connection
// failure.
func rankFor(err error) int {
	var re *ReplyError
	if errors.As(err, &re) {
		return rankReply
	}
	return rankConn
}

func (d *delivery) ctxErr(err error) error {
	if cerr := d.ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("deliver: %w: %w", cerr, err)
	}
	return err
}

func (d *delivery) dial(ctx context.Context, addr string) (net.Conn, error) {
	if d.c.Dial != nil {
		return d.c.Dial(ctx, "tcp", addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}

// transaction runs MAIL, RCPT, DATA and QUIT.
func (d *delivery) transaction(cn *conn, try *Try) (next, string) {
	m := d.m
	var b strings.Builder
	b.WriteString("MAIL FROM:<" + m.From + ">")
	if cn.has("SIZE") {
		b.WriteString(" SIZE=" + strconv.FormatInt(m.Size, 10))
	}
	if d.need8bit {
		b.WriteString(" BODY=8BITMIME")
	}
	if d.needUTF8 {
		b.WriteString(" SMTPUTF8")
	}
	if d.a.RequireTLS {
		b.WriteString(" REQUIRETLS")
	}
	dsn := cn.has("DSN")
	if dsn && m.Ret != "" {
		b.WriteString(" RET=" + m.Ret)
	}
	if dsn && m.EnvID != "" {
		b.WriteString(" ENVID=" + xtext(m.EnvID))
	}
	r, err := cn.cmd(d.t.Mail, b.String())
	if err == nil && r.code/100 != 2 {
		if r.code/100 == 5 {
			d.bounceAll(fromReply(r))
			d.quit(cn)
			return done, "bounced"
		}
		err = r.err("MAIL")
	}
	if err != nil {
		try.Err = err
		d.note(rankFor(err), deferral(enhanced(err, "4.4.2"), err))
		d.otherFail = true
		return nextAddr, "next"
	}

	// Outcomes are committed only once the transaction ends: a lost
	// connection before then sends every recipient to the next address.
	local := make(map[int]RcptResult)
	var accepted []int
	for i, to := range m.To {
		if d.res.Rcpts[i].Status != 0 {
			continue
		}
		b.Reset()
		b.WriteString("RCPT TO:<" + to + ">")
		if dsn && len(m.Notify) > 0 && m.Notify[i] != "" {
			b.WriteString(" NOTIFY=" + m.Notify[i])
		}
		if dsn && len(m.ORcpt) > 0 && m.ORcpt[i] != "" {
			b.WriteString(" ORCPT=" + orcpt(m.ORcpt[i]))
		}
		r, err := cn.cmd(d.t.Rcpt, b.String())
		if err != nil {
			try.Err = err
			d.note(rankConn, deferral("4.4.2", err))
			d.otherFail = true
			return nextAddr, "next"
		}
		if r.code/100 == 2 {
			accepted = append(accepted, i)
		} else {
			local[i] = fromReply(r)
		}
	}
	commit := func(rest RcptResult) {
		for i, o := range local {
			o.To = d.res.Rcpts[i].To
			d.res.Rcpts[i] = o
		}
		for _, i := range accepted {
			o := rest
			o.To = d.res.Rcpts[i].To
			d.res.Rcpts[i] = o
		}
	}
	if len(accepted) == 0 {
		commit(RcptResult{})
		d.quit(cn)
		return done, "rejected"
	}
	r, err = cn.cmd(d.t.DataInit, "DATA")
	if err != nil {
		try.Err = err
		d.note(rankConn, deferral("4.4.2", err))
		d.otherFail = true
		return nextAddr, "next"
	}
	if r.code != 354 {
		commit(fromReply(r))
		d.quit(cn)
		return done, "rejected"
	}
	r, err = cn.data(d.t.DataBlock, d.t.DataEnd, io.NewSectionReader(m.Body, 0, m.Size))
	if err != nil {
		// The message may have arrived (RFC 5321 6.1: a duplicate is
		// better than a loss); defer rather than try another address
		// at once.
		try.Err = err
		commit(deferral("4.4.2", fmt.Errorf("deliver: connection lost during DATA: %w", err)))
		return done, "deferred"
	}
	o := fromReply(r)
	commit(o)
	d.quit(cn)
	return done, o.Status.String()
}

func (d *delivery) bounceAll(r RcptResult) {
	for i := range d.res.Rcpts {
		if d.res.Rcpts[i].Status == 0 {
			o := r
			o.To = d.res.Rcpts[i].To
			d.res.Rcpts[i] = o
		}
	}
}

// quit ends the session politely, briefly: the outcome is known.
func (d *delivery) quit(cn *conn) {
	cn.cmd(min(quitTimeout, d.t.Hello), "QUIT")
}

// log writes the session's line.
func (d *delivery) log(h *smtptls.Host, try Try, cs *tls.ConnectionState, outcome string) {
	lg := d.c.log
	if !lg.Enabled(d.ctx, slog.LevelInfo) {
		return
	}
	verdict := "cleartext"
	attrs := []slog.Attr{slog.String("domain", d.res.Domain), slog.String("host", h.Name),
		slog.String("addr", try.Addr.String())}
	if try.TLS {
		verdict = try.Verdict.String()
	}
	attrs = append(attrs, slog.String("verdict", verdict))
	if cs != nil {
		attrs = append(attrs, slog.String("tls_version", tls.VersionName(cs.Version)),
			slog.String("cipher", tls.CipherSuiteName(cs.CipherSuite)))
	}
	attrs = append(attrs, slog.String("outcome", outcome))
	if try.Result != "" {
		attrs = append(attrs, slog.String("tlsrpt", string(try.Result)))
	}
	if try.Err != nil {
		attrs = append(attrs, slog.String("err", try.Err.Error()))
	}
	lg.LogAttrs(d.ctx, slog.LevelInfo, "smtptls/deliver: session", attrs...)
}

// xtext encodes s as RFC 3461 4 xtext.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// orcpt formats an ORCPT value: "type;" then the xtext address.
func orcpt(s string) string {
	typ, addr, ok := strings.Cut(s, ";")
	if !ok {
		typ, addr = "rfc822", s
	}
	return typ + ";" + xtext(addr)
}

// hostname is the default EHLO name.
func hostname() string {
	h, err := os.Hostname()
	if err == nil {
		if n, err := dnsname.Mail.Normalize(h); err == nil {
			return n
		}
	}
	return "localhost"
}
