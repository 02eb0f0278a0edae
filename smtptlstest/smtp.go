package smtptlstest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// SMTPConfig configures a World SMTP server. The zero value offers
// STARTTLS with a certificate for the host issued by the World's CA.
type SMTPConfig struct {
	// Certificate is presented after STARTTLS. Nil means a certificate
	// for the host issued by the World's CA (CA.Issue).
	Certificate *tls.Certificate
	// NoSTARTTLS stops the server from offering STARTTLS: mail is then
	// received in clear, as from a server without TLS.
	NoSTARTTLS bool
	// BrokenHandshake offers STARTTLS and accepts the command, then
	// sends bytes that are not TLS and closes the connection: a TLS
	// failure that happens after the client committed to TLS. A client
	// that does not ask for STARTTLS can deliver in clear (the scripted
	// server, see EHLO).
	BrokenHandshake bool
	// NoREQUIRETLS stops the server from listing REQUIRETLS (RFC 8689)
	// after STARTTLS; by default it lists it, with SMTPUTF8 and DSN.
	NoREQUIRETLS bool
	// Stall makes the server stop answering, holding the connection open
	// until the client gives up or the World closes: "greeting" (never
	// greets), "EHLO" (never answers EHLO), "STARTTLS" (answers 220, then
	// never handshakes), "DATA" (takes the message, never answers the
	// final "."). Empty means never. It is served by the scripted server
	// (see EHLO).
	Stall string
	// EHLO, when non-nil, replaces the server with a scripted cleartext
	// server that advertises exactly these EHLO keywords (no STARTTLS
	// unless listed, and then a Stall "STARTTLS" is the only use), so that
	// tests can take away 8BITMIME or SMTPUTF8. Its deliveries are
	// recorded like the others'.
	EHLO []string
	// Replies replaces the server's reply at a stage with a whole reply
	// line such as "450 4.2.0 busy": "greeting", "EHLO" (the scripted
	// server only), "MAIL", "RCPT" (every recipient), "RCPT <addr>" (one
	// recipient, as sent), "DATA" (the reply to the final "."). Nil means
	// the usual replies.
	Replies map[string]string
}

// Delivery is one message an SMTPServer received.
type Delivery struct {
	// From is the reverse path of MAIL FROM.
	From string
	// To lists the accepted RCPT TO addresses.
	To []string
	// Data is the message as received (headers and body, CRLF line
	// endings, dot-unstuffed).
	Data []byte
	// TLS reports whether the message came over TLS (after STARTTLS).
	TLS bool
	// ServerName is the SNI the client sent in its TLS handshake; empty
	// without TLS or without SNI.
	ServerName string
	// TLSVersion is the negotiated TLS version (tls.VersionTLS13, ...), or
	// 0 without TLS.
	TLSVersion uint16
	// Hello is the name the client gave in EHLO (or HELO).
	Hello string
	// Mail holds the MAIL FROM parameters (REQUIRETLS, SMTPUTF8, BODY,
	// SIZE, RET, ENVID) as go-smtp parsed them; empty for the scripted
	// server.
	Mail smtp.MailOptions
	// Rcpt holds each accepted recipient's parameters (NOTIFY, ORCPT),
	// parallel to To; nil for the scripted server.
	Rcpt []smtp.RcptOptions
}

// maxMessageBytes bounds what an SMTPServer accepts per message.
const maxMessageBytes = 10 << 20

// An SMTPServer is an SMTP server of the World (github.com/emersion/go-smtp
// behind a real loopback listener) for one MX host. It records the
// messages it accepts. Its methods are safe for concurrent use.
type SMTPServer struct {
	w    *World
	host string
	ln   net.Listener

	// mu guards everything below.
	mu          sync.Mutex
	cfg         SMTPConfig
	defCert     *tls.Certificate
	deliveries  []Delivery
	connections int
	conns       map[net.Conn]struct{}
	closed      bool

	tlsSrv, plainSrv, basicSrv *smtp.Server
	tlsL, plainL, basicL       *chanListener
	wg                         sync.WaitGroup
}

// AddMX starts an SMTP server for host (any case, with or without the
// trailing dot, U-labels) and maps every address of host, port 25, to it.
// If host has no A or AAAA record in the World, an A record with a fresh
// loopback address (127.0.0.x) is added to the zone that answers for it.
// The addresses host has at the time of the call are mapped. The MX
// record pointing at host is the test's to add. AddMX panics on an
// invalid name, on a closed World, or if it cannot listen.
func (w *World) AddMX(host string, cfg SMTPConfig) *SMTPServer {
	h, err := hostName(host)
	if err != nil {
		panic(err)
	}
	def, err := w.ca.Issue(CertOptions{}, h)
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("smtptlstest: AddMX: %v", err))
	}
	s := &SMTPServer{
		w:       w,
		host:    h,
		ln:      ln,
		cfg:     cfg,
		defCert: def,
		conns:   make(map[net.Conn]struct{}),
		tlsL:    newChanListener(ln.Addr()),
		plainL:  newChanListener(ln.Addr()),
		basicL:  newChanListener(ln.Addr()),
	}
	s.tlsSrv = s.newServer(&tls.Config{GetCertificate: s.certificate})
	s.plainSrv = s.newServer(nil)
	s.basicSrv = s.newServer(&tls.Config{GetCertificate: s.certificate})
	s.basicSrv.EnableREQUIRETLS = false

	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		ln.Close()
		panic("smtptlstest: AddMX on a closed World")
	}
	for _, a := range w.ensureAddrs(mustFQDN(h)) {
		w.addrs[netip.AddrPortFrom(a, 25)] = ln.Addr().String()
	}
	w.mxs = append(w.mxs, s)
	w.mu.Unlock()

	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.basicSrv.Serve(s.basicL) }()
	go func() { defer s.wg.Done(); s.tlsSrv.Serve(s.tlsL) }()
	go func() { defer s.wg.Done(); s.plainSrv.Serve(s.plainL) }()
	go func() { defer s.wg.Done(); s.accept() }()
	return s
}

func (s *SMTPServer) newServer(tc *tls.Config) *smtp.Server {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = s.host
	srv.TLSConfig = tc
	srv.MaxMessageBytes = maxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.EnableREQUIRETLS = true
	srv.EnableDSN = true
	srv.ErrorLog = discardLogger()
	return srv
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// Host returns the server's host name: lowercase A-labels, no trailing dot.
func (s *SMTPServer) Host() string { return s.host }

// Addr returns the real address ("127.0.0.1:port") of the server's
// listener.
func (s *SMTPServer) Addr() string { return s.ln.Addr().String() }

// SetConfig changes the configuration for the connections that follow.
func (s *SMTPServer) SetConfig(cfg SMTPConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
}

// Deliveries returns copies of the messages received so far, in order.
func (s *SMTPServer) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		d.To = slices.Clone(d.To)
		d.Data = slices.Clone(d.Data)
		out[i] = d
	}
	return out
}

// Connections returns how many connections the server has accepted.
func (s *SMTPServer) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// Certificate returns the certificate the server presents after
// STARTTLS: SMTPConfig.Certificate, or the one the World's CA issued for
// the host (leaf and intermediate, Leaf set), from which tests derive
// TLSA records.
func (s *SMTPServer) Certificate() *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Certificate != nil {
		return s.cfg.Certificate
	}
	return s.defCert
}

func (s *SMTPServer) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Certificate(), nil
}

// accept hands each connection to the go-smtp server its configuration
// calls for, so that SetConfig applies to the next connection.
func (s *SMTPServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		cfg := s.cfg
		tc := &trackedConn{Conn: c, s: s, cfg: &cfg}
		s.conns[tc] = struct{}{}
		s.connections++
		s.mu.Unlock()
		switch {
		case cfg.Stall != "" || cfg.EHLO != nil || cfg.Replies["greeting"] != "" || cfg.BrokenHandshake:
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.scripted(tc, cfg)
			}()
		case cfg.NoSTARTTLS:
			s.plainL.push(tc)
		case cfg.NoREQUIRETLS:
			s.basicL.push(tc)
		default:
			s.tlsL.push(tc)
		}
	}
}

func (s *SMTPServer) close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ln.Close()
	s.tlsL.Close()
	s.plainL.Close()
	s.basicL.Close()
	for _, c := range conns {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Shutdown waits for go-smtp's connection goroutines, which end now
	// that their connections are closed.
	s.tlsSrv.Shutdown(ctx)
	s.plainSrv.Shutdown(ctx)
	s.basicSrv.Shutdown(ctx)
	s.wg.Wait()
}

// trackedConn lets the server close connections go-smtp still holds.
type trackedConn struct {
	net.Conn
	s    *SMTPServer
	cfg  *SMTPConfig
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// session records one SMTP transaction at a time.
type session struct {
	s    *SMTPServer
	c    *smtp.Conn
	from string
	to   []string
	mail smtp.MailOptions
	rcpt []smtp.RcptOptions
}

func (ss *session) Reset() {
	ss.from, ss.to, ss.rcpt = "", nil, nil
}

func (ss *session) Logout() error { return nil }

// reply returns the configured reply for stage as a go-smtp error, or nil.
func (ss *session) reply(stage string) error {
	var cfg *SMTPConfig
	if tc, ok := ss.c.Conn().(*trackedConn); ok {
		cfg = tc.cfg
	} else if tc, ok := ss.c.Conn().(*tls.Conn); ok {
		if t, ok := tc.NetConn().(*trackedConn); ok {
			cfg = t.cfg
		}
	}
	if cfg == nil || cfg.Replies[stage] == "" {
		return nil
	}
	return smtpError(cfg.Replies[stage])
}

// smtpError parses a reply line "450 4.2.0 text" into a go-smtp error.
func smtpError(line string) error {
	e := &smtp.SMTPError{Message: line}
	code, rest, _ := strings.Cut(line, " ")
	fmt.Sscanf(code, "%d", &e.Code)
	e.EnhancedCode = smtp.NoEnhancedCode
	if enh, text, ok := strings.Cut(rest, " "); ok {
		var a, b, c int
		if n, _ := fmt.Sscanf(enh, "%d.%d.%d", &a, &b, &c); n == 3 {
			e.EnhancedCode = smtp.EnhancedCode{a, b, c}
			rest = text
		}
	}
	e.Message = rest
	return e
}

func (ss *session) Mail(from string, o *smtp.MailOptions) error {
	if err := ss.reply("MAIL"); err != nil {
		return err
	}
	ss.from, ss.to, ss.rcpt = from, nil, nil
	if o != nil {
		ss.mail = *o
	}
	return nil
}

func (ss *session) Rcpt(to string, o *smtp.RcptOptions) error {
	if err := ss.reply("RCPT " + to); err != nil {
		return err
	}
	if err := ss.reply("RCPT"); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	var ro smtp.RcptOptions
	if o != nil {
		ro = *o
	}
	ss.rcpt = append(ss.rcpt, ro)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.reply("DATA"); err != nil {
		return err
	}
	d := Delivery{From: ss.from, To: slices.Clone(ss.to), Data: data, Hello: ss.c.Hostname(), Mail: ss.mail, Rcpt: slices.Clone(ss.rcpt)}
	if st, ok := ss.c.TLSConnectionState(); ok {
		d.TLS = true
		d.ServerName = st.ServerName
		d.TLSVersion = st.Version
	}
	ss.s.mu.Lock()
	ss.s.deliveries = append(ss.s.deliveries, d)
	ss.s.mu.Unlock()
	return nil
}

// chanListener is a net.Listener fed by SMTPServer.accept.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
