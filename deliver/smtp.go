package deliver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/smtptls/smtptls/internal/quote"
)

// Bounds on what a server may send in one reply (DESIGN.md invariant 4).
// RFC 5321 4.5.3.1.5 limits a reply line to 512 octets; real servers
// exceed it a little, so the bound is generous but finite.
const (
	maxReplyLine  = 2048
	maxReplyLines = 100
)

// ReplyError is a reply of the server that ended a stage of the session
// (a greeting, EHLO, STARTTLS, MAIL, RCPT or DATA reply that is not the
// expected one).
type ReplyError struct {
	// Command is the command the reply answers ("greeting" for the
	// banner).
	Command string
	// Code is the three-digit reply code.
	Code int
	// Enhanced is the RFC 3463 enhanced status code of the reply
	// ("5.7.1"), or "" when the server sent none.
	Enhanced string
	// Text is the server's text, lines joined by a space, with control
	// characters and invalid UTF-8 escaped and cut to about 320 bytes
	// (internal/quote.Text).
	Text string
}

// Error implements error.
func (e *ReplyError) Error() string {
	s := fmt.Sprintf("deliver: %s: %d", e.Command, e.Code)
	if e.Enhanced != "" {
		s += " " + e.Enhanced
	}
	return s + " " + e.Text
}

// Temporary reports whether the reply is a 4xx reply.
func (e *ReplyError) Temporary() bool { return e.Code/100 == 4 }

// reply is one server reply.
type reply struct {
	code     int
	enhanced string
	lines    []string // text after the code and separator, enhanced code kept
}

func (r *reply) text() string { return strings.Join(r.lines, " ") }

func (r *reply) err(cmd string) *ReplyError {
	return &ReplyError{Command: cmd, Code: r.code, Enhanced: r.enhanced, Text: quote.Text(r.text())}
}

// conn is one SMTP client connection. It exists because
// github.com/emersion/go-smtp cannot send EHLO with our name, look at the
// extensions and run STARTTLS on the same connection, and because it sets
// its own deadlines around every command, which would outlive the
// caller's context (see doc.go).
type conn struct {
	raw  net.Conn // the TCP connection: deadlines and cancellation act on it
	nc   net.Conn // raw, or the TLS connection over it
	br   *bufio.Reader
	bw   *bufio.Writer
	ctx  context.Context
	stop func() bool

	tls *tls.Conn
	ext map[string]string // EHLO keywords (upper case) to their parameters
}

// newConn wraps raw, bound to ctx: when ctx ends the connection is
// closed at once, so no read or write can outlive it.
func newConn(ctx context.Context, raw net.Conn) *conn {
	c := &conn{raw: raw, nc: raw, ctx: ctx}
	c.br = bufio.NewReaderSize(raw, maxReplyLine)
	c.bw = bufio.NewWriterSize(raw, 4096)
	c.stop = context.AfterFunc(ctx, func() { raw.Close() })
	return c
}

// close closes the connection and releases the context binding.
func (c *conn) close() {
	c.stop()
	c.raw.Close()
}

// stage sets the deadline of the next stage: the stage's timeout from
// now, or the context's deadline when it comes first.
func (c *conn) stage(d time.Duration) {
	t := time.Now().Add(d)
	if dl, ok := c.ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	c.raw.SetDeadline(t)
}

// wrap returns err, wrapped with the context's error when the context
// ended the stage.
func (c *conn) wrap(err error) error {
	if err == nil {
		return nil
	}
	if cerr := c.ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("deliver: %w: %w", cerr, err)
	}
	return err
}

// cmd sends one command line and reads the reply.
func (c *conn) cmd(timeout time.Duration, line string) (*reply, error) {
	c.stage(timeout)
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return nil, c.wrap(err)
	}
	return c.read()
}

// read reads one reply, multi-line included, within the bounds above.
func (c *conn) read() (*reply, error) {
	r := &reply{}
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return nil, errors.New("deliver: reply of more than 100 lines")
		}
		line, err := c.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("deliver: reply line longer than %d bytes: %s", maxReplyLine, quote.String(string(line)))
		}
		if err != nil {
			return nil, c.wrap(err)
		}
		s := strings.TrimRight(string(line), "\r\n")
		if len(s) < 3 || (len(s) > 3 && s[3] != ' ' && s[3] != '-') {
			return nil, fmt.Errorf("deliver: malformed reply line %s", quote.String(s))
		}
		code, err := strconv.Atoi(s[:3])
		if err != nil || code < 200 || code > 599 {
			return nil, fmt.Errorf("deliver: malformed reply code %s", quote.String(s))
		}
		if n > 0 && code != r.code {
			return nil, fmt.Errorf("deliver: reply code changed within a reply: %s", quote.String(s))
		}
		r.code = code
		text := ""
		if len(s) > 4 {
			text = s[4:]
		}
		if n == 0 {
			r.enhanced = enhancedCode(code, text)
		}
		r.lines = append(r.lines, text)
		if len(s) == 3 || s[3] == ' ' {
			return r, nil
		}
	}
}

// enhancedCode returns the RFC 3463 code at the start of text when its
// class matches the reply code's, or "".
func enhancedCode(code int, text string) string {
	f, _, _ := strings.Cut(text, " ")
	parts := strings.Split(f, ".")
	if len(parts) != 3 || len(f) > 11 || parts[0] != strconv.Itoa(code/100) {
		return ""
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	return f
}

// hello sends EHLO, and HELO when the server answers EHLO with 500 or
// 502 (RFC 5321 4.1.4), and records the extensions.
func (c *conn) hello(timeout time.Duration, name string) error {
	r, err := c.cmd(timeout, "EHLO "+name)
	if err != nil {
		return err
	}
	c.ext = map[string]string{}
	if r.code == 500 || r.code == 502 {
		if r, err = c.cmd(timeout, "HELO "+name); err != nil {
			return err
		}
		if r.code/100 != 2 {
			return r.err("HELO")
		}
		return nil
	}
	if r.code/100 != 2 {
		return r.err("EHLO")
	}
	for _, l := range r.lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

func (c *conn) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// startTLS runs STARTTLS and the handshake. A refusal is a *ReplyError;
// a handshake failure is the crypto/tls error (verification failures
// included: cfg's VerifyConnection aborts the handshake).
func (c *conn) startTLS(timeout time.Duration, cfg *tls.Config) error {
	r, err := c.cmd(timeout, "STARTTLS")
	if err != nil {
		return err
	}
	if r.code != 220 {
		return r.err("STARTTLS")
	}
	if c.br.Buffered() > 0 {
		// Bytes after the 220 were sent before TLS: a command injection
		// attempt (CVE-2011-0411 in reverse); refuse them.
		return errors.New("deliver: server sent data after its STARTTLS reply")
	}
	c.stage(timeout)
	tc := tls.Client(c.raw, cfg)
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return c.wrap(err)
	}
	c.tls = tc
	c.nc = tc
	c.br.Reset(tc)
	c.bw.Reset(tc)
	c.ext = nil
	return nil
}

// blockWriter sets the data block deadline before every write.
type blockWriter struct {
	c       *conn
	timeout time.Duration
}

func (w blockWriter) Write(p []byte) (int, error) {
	w.c.stage(w.timeout)
	return w.c.nc.Write(p)
}

// data sends the message after a 354 reply, dot-stuffed (RFC 5321
// 4.5.2), each block within the data block timeout, then reads the final
// reply within the DATA termination timeout.
func (c *conn) data(block, end time.Duration, body io.Reader) (*reply, error) {
	bw := bufio.NewWriterSize(blockWriter{c, block}, 32<<10)
	dw := textproto.NewWriter(bw).DotWriter()
	if _, err := io.Copy(dw, body); err != nil {
		return nil, c.wrap(err)
	}
	if err := dw.Close(); err != nil {
		return nil, c.wrap(err)
	}
	if err := bw.Flush(); err != nil {
		return nil, c.wrap(err)
	}
	c.stage(end)
	return c.read()
}
