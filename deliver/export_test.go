package deliver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
)

// BareSession is one SMTP session over the package's client code with no
// policy work at all (no evaluation, no verification, no TLS-RPT, no
// log): the baseline of BenchmarkDeliverVsBare. It dials addr, greets,
// EHLO, STARTTLS with cfg, EHLO, MAIL (with SIZE), RCPT, DATA and QUIT.
func BareSession(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), addr string, cfg *tls.Config, helo string, m *Message) error {
	t := Timeouts{}.withDefaults()
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	cn := newConn(ctx, raw)
	defer cn.close()
	cn.stage(t.Greeting)
	if r, err := cn.read(); err != nil || r.code != 220 {
		return fmt.Errorf("greeting: %v", err)
	}
	if err := cn.hello(t.Hello, helo); err != nil {
		return err
	}
	if err := cn.startTLS(t.StartTLS, cfg); err != nil {
		return err
	}
	if err := cn.hello(t.Hello, helo); err != nil {
		return err
	}
	steps := []struct {
		line string
		code int
	}{{"MAIL FROM:<" + m.From + "> SIZE=" + strconv.FormatInt(m.Size, 10), 250}}
	for _, to := range m.To {
		steps = append(steps, struct {
			line string
			code int
		}{"RCPT TO:<" + to + ">", 250})
	}
	steps = append(steps, struct {
		line string
		code int
	}{"DATA", 354})
	for _, s := range steps {
		r, err := cn.cmd(t.Mail, s.line)
		if err != nil {
			return err
		}
		if r.code != s.code {
			return r.err(s.line)
		}
	}
	r, err := cn.data(t.DataBlock, t.DataEnd, io.NewSectionReader(m.Body, 0, m.Size))
	if err != nil {
		return err
	}
	if r.code != 250 {
		return r.err("DATA")
	}
	cn.cmd(quitTimeout, "QUIT")
	return nil
}
