package e2e_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/internal/leakcheck"
	"github.com/smtptls/smtptls/internal/rawserver"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// Hostile SMTP peers: raw TCP servers plugged into the test kit's World
// (World.Listen) at the address of a DANE-protected MX host, which speak
// SMTP until STARTTLS and then misbehave. Delivery through smtptlstest.Send
// must fail, in bounded time, with a classified error and without sending
// the message in clear; nothing may be left running (leakcheck, so the
// test is not parallel at the top level).

// rawSMTP is a raw SMTP server for one MX address. Each connection
// greets, answers EHLO with STARTTLS and QUIT with 221, and hands the
// connection to onSTARTTLS when the client asks for TLS.
type rawSMTP struct {
	ln         net.Listener
	greet      bool // false: never send the 220 greeting
	onSTARTTLS func(s *rawSMTP, c net.Conn, br *bufio.Reader)
	mails      atomic.Int64                    // MAIL commands received: a cleartext delivery attempt
	cert       atomic.Pointer[tls.Certificate] // the MX's real certificate

	srv *rawserver.Server
}

func newRawSMTP(t *testing.T, greet bool, onSTARTTLS func(s *rawSMTP, c net.Conn, br *bufio.Reader)) *rawSMTP {
	t.Helper()
	s := &rawSMTP{greet: greet, onSTARTTLS: onSTARTTLS}
	s.srv = rawserver.New(t)
	s.ln = s.srv.Listener()
	s.srv.Serve(s.session)
	return s
}

func (s *rawSMTP) session(c net.Conn) {
	br := bufio.NewReader(c)
	if !s.greet {
		s.hold(c)
		return
	}
	io.WriteString(c, "220 mx.victim.test ESMTP hostile\r\n")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			io.WriteString(c, "250-mx.victim.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
		case "STARTTLS":
			s.onSTARTTLS(s, c, br)
			return
		case "MAIL":
			s.mails.Add(1)
			io.WriteString(c, "250 2.1.0 Ok\r\n")
		case "QUIT":
			io.WriteString(c, "221 2.0.0 Bye\r\n")
			return
		default:
			io.WriteString(c, "250 2.0.0 Ok\r\n")
		}
	}
}

// hold reads and discards until the peer or the server closes: a peer
// that has stopped answering.
func (s *rawSMTP) hold(c net.Conn) { io.Copy(io.Discard, c) }

// readClientHello reads the first bytes of the client's TLS handshake.
func readClientHello(c net.Conn, br *bufio.Reader) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if br.Buffered() == 0 {
		br.Peek(1)
	}
	br.Discard(br.Buffered())
	c.SetReadDeadline(time.Time{})
}

// hostileMX publishes victim.test with a secure MX RRset and a DANE-EE
// TLSA record for mx.victim.test, whose address (port 25) is the raw
// server, and returns the evaluated host.
func hostileMX(t *testing.T, w *smtptlstest.World, s *rawSMTP) (*smtptls.Host, *tls.Certificate) {
	t.Helper()
	cert, err := w.CA().Issue(smtptlstest.CertOptions{}, "mx.victim.test")
	if err != nil {
		t.Fatal(err)
	}
	z := w.AddZone("victim.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	z.MustAdd("@ MX 10 mx", "mx A 192.0.2.25", smtptlstest.TLSARecord("_25._tcp.mx.victim.test.", cert.Leaf, 3, 1, 1))
	w.Listen(netip.MustParseAddr("192.0.2.25"), 25, s.ln)
	ev := &smtptls.Evaluator{
		Resolver: w.Resolver(),
		STS:      &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: discard},
		Roots:    w.CA().Pool(),
		Logger:   discard,
	}
	d, err := ev.Evaluate(context.Background(), "victim.test")
	if err != nil {
		t.Fatal(err)
	}
	hosts := d.Deliverable()
	if len(hosts) != 1 || hosts[0].Level != smtptls.DANE || !hosts[0].RequireTLS() {
		t.Fatalf("hosts %+v: want one DANE host", d.Hosts)
	}
	return hosts[0], cert
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func TestHostileSMTP(t *testing.T) {
	leakcheck.Check(t)
	stall := func(s *rawSMTP, c net.Conn, br *bufio.Reader) { s.hold(c) }
	ready := "220 2.0.0 Ready to start TLS\r\n"
	cases := []struct {
		name  string
		greet bool
		on    func(s *rawSMTP, c net.Conn, br *bufio.Reader)
		// check classifies the error; result is the TLS-RPT result type
		// Send must record ("" when the failure is not a TLS failure).
		check  func(err error) bool
		result tlsrpt.ResultType
	}{
		{
			name: "never answers STARTTLS", greet: true, on: stall,
			check: isTimeout,
		},
		{
			name: "never greets", greet: false,
			check: isTimeout,
		},
		{
			// The client must not take the second reply, which it read
			// with the first, for the server's TLS handshake: plaintext
			// injected before TLS starts is discarded (the STARTTLS
			// injection of CVE-2011-0411, seen from the client). It then
			// waits for a handshake that never comes.
			name: "answers STARTTLS twice at once", greet: true,
			on: func(s *rawSMTP, c net.Conn, br *bufio.Reader) {
				io.WriteString(c, ready+ready)
				s.hold(c)
			},
			// deliver refuses bytes buffered after the 220 (they would be
			// read as TLS); when the second reply arrives later, the
			// handshake reads it and waits: a timeout.
			check: func(err error) bool { return err != nil },
		},
		{
			name: "answers STARTTLS again after the ClientHello", greet: true,
			on: func(s *rawSMTP, c net.Conn, br *bufio.Reader) {
				io.WriteString(c, ready)
				readClientHello(c, br)
				io.WriteString(c, ready)
				s.hold(c)
			},
			check:  func(err error) bool { var re tls.RecordHeaderError; return errors.As(err, &re) },
			result: tlsrpt.ValidationFailure,
		},
		{
			name: "drops the connection after the ClientHello", greet: true,
			on: func(s *rawSMTP, c net.Conn, br *bufio.Reader) {
				io.WriteString(c, ready)
				readClientHello(c, br)
			},
			check: func(err error) bool {
				return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err)
			},
		},
		{
			name: "drops the connection in the middle of a ServerHello", greet: true,
			on: func(s *rawSMTP, c net.Conn, br *bufio.Reader) {
				io.WriteString(c, ready)
				readClientHello(c, br)
				// A handshake record header announcing 512 bytes, and 5.
				c.Write([]byte{0x16, 0x03, 0x03, 0x02, 0x00, 0x02, 0x00, 0x01, 0xfc, 0x03})
			},
			check: func(err error) bool {
				return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)
			},
		},
		{
			name: "stalls in the middle of the handshake", greet: true,
			on: func(s *rawSMTP, c net.Conn, br *bufio.Reader) {
				io.WriteString(c, ready)
				readClientHello(c, br)
				s.hold(c)
			},
			check: isTimeout,
		},
		{
			name: "answers the handshake with an alert", greet: true,
			on: func(s *rawSMTP, c net.Conn, br *bufio.Reader) {
				io.WriteString(c, ready)
				// No certificate: the server aborts with an alert.
				tc := tls.Server(&prefixConn{Conn: c, r: br}, &tls.Config{})
				tc.Handshake()
			},
			check: func(err error) bool {
				var oe *net.OpError
				return errors.As(err, &oe) && oe.Op == "remote error"
			},
			result: tlsrpt.ValidationFailure,
		},
		{
			name: "completes the handshake with another certificate, then stalls", greet: true,
			on: func(s *rawSMTP, c net.Conn, br *bufio.Reader) {
				io.WriteString(c, ready)
				other, _ := smtptlstest.SelfSigned("mx.victim.test")
				tc := tls.Server(&prefixConn{Conn: c, r: br}, &tls.Config{Certificates: []tls.Certificate{*other}})
				tc.Handshake()
				s.hold(tc)
			},
			check:  func(err error) bool { return err != nil && !isTimeout(err) },
			result: tlsrpt.ValidationFailure,
		},
		{
			name: "completes the handshake, then never answers EHLO", greet: true,
			on: func(s *rawSMTP, c net.Conn, br *bufio.Reader) {
				io.WriteString(c, ready)
				tc := tls.Server(&prefixConn{Conn: c, r: br}, &tls.Config{Certificates: []tls.Certificate{*s.cert.Load()}})
				tc.Handshake()
				s.hold(tc)
			},
			check: isTimeout,
		},
		{
			name: "refuses STARTTLS with 454", greet: true,
			on: func(s *rawSMTP, c net.Conn, br *bufio.Reader) {
				io.WriteString(c, "454 4.7.0 TLS not available due to temporary reason\r\n")
				s.hold(c)
			},
			check: func(err error) bool { return err != nil && !isTimeout(err) },
		},
	}
	for _, tc := range cases {
		for _, deadline := range []bool{true, false} {
			name := tc.name + "/context deadline"
			if !deadline {
				name = tc.name + "/context cancelled"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				w := smtptlstest.New(t)
				s := newRawSMTP(t, tc.greet, tc.on)
				h, cert := hostileMX(t, w, s)
				s.cert.Store(cert)
				var ctx context.Context
				var cancel context.CancelFunc
				if deadline {
					ctx, cancel = context.WithTimeout(context.Background(), time.Second)
				} else {
					ctx, cancel = context.WithCancel(context.Background())
					time.AfterFunc(time.Second, cancel)
				}
				defer cancel()
				start := time.Now()
				o := smtptlstest.Send(ctx, w.DialContext, h, 25, smtptls.Attempt{}, smtptlstest.Message{
					From: "a@sender.test", To: []string{"b@victim.test"}, Data: []byte("Subject: x\r\n\r\nsecret\r\n")})
				elapsed := time.Since(start)
				if elapsed > 5*time.Second {
					t.Errorf("Send took %v with a 1 s context", elapsed)
				}
				if o.Delivered || o.Err == nil {
					t.Fatalf("delivered=%v err=%v", o.Delivered, o.Err)
				}
				if n := s.mails.Load(); n != 0 {
					t.Errorf("MAIL sent in clear %d times", n)
				}
				timedOut := isTimeout(o.Err) || errors.Is(o.Err, context.Canceled) || errors.Is(o.Err, context.DeadlineExceeded)
				if !tc.check(o.Err) && !(timedOut && tc.check(os.ErrDeadlineExceeded)) {
					t.Errorf("error %v (%T) not classified as expected", o.Err, o.Err)
				}
				if o.Result != tc.result {
					t.Errorf("TLS-RPT result %q, want %q (error %v)", o.Result, tc.result, o.Err)
				}
			})
		}
	}
}

// prefixConn is a connection whose first bytes come from r (bytes the
// SMTP reader buffered past the STARTTLS line).
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
