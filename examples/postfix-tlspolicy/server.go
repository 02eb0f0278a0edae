package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Server limits used when the corresponding field is zero.
const (
	// DefaultMaxConns is above Postfix's default_process_limit (100):
	// every smtp(8) process keeps one socketmap connection open.
	DefaultMaxConns = 512
	// DefaultMaxInflight bounds concurrent evaluations (each one a few
	// DNS lookups and at most one policy fetch).
	DefaultMaxInflight = 64
	// DefaultMaxRequest caps a request: "<map name> <next hop>" needs a
	// few hundred bytes at most (a domain name is at most 253).
	DefaultMaxRequest = 1024
	// DefaultQueryTimeout is below Postfix's socketmap timeout (100 s), so
	// that Postfix gets a TEMP answer rather than a read error. A policy
	// fetch that needs longer (RFC 8461 3.3 allows a minute) goes on in
	// the background, and a later query finds its result.
	DefaultQueryTimeout = 45 * time.Second
	// DefaultReadTimeout bounds the time to receive one whole request
	// once its first byte has arrived.
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds the time to send one reply.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultIdleTimeout bounds the wait for the next request on an open
	// connection; Postfix closes idle socketmap connections much sooner.
	DefaultIdleTimeout = 5 * time.Minute
)

// Reply is a socketmap reply (socketmap_table(5)).
type Reply struct {
	// Status is "OK", "NOTFOUND", "TEMP" or "PERM".
	Status string
	// Data is the lookup result for OK, the reason for TEMP and PERM,
	// and empty for NOTFOUND.
	Data string
}

// Replies that carry no data.
var notFound = Reply{Status: "NOTFOUND"}

func ok(data string) Reply     { return Reply{Status: "OK", Data: data} }
func temp(reason string) Reply { return Reply{Status: "TEMP", Data: reason} }
func perm(reason string) Reply { return Reply{Status: "PERM", Data: reason} }

// String returns the reply as sent, without the netstring framing:
// "OK dane", "NOTFOUND " (with the space Postfix expects), "TEMP why".
func (r Reply) String() string { return r.Status + " " + r.Data }

// LookupFunc answers one socketmap query: name is the map name from the
// request, key the lookup key. It must return within ctx's deadline.
type LookupFunc func(ctx context.Context, name, key string) Reply

// Server answers Postfix socketmap requests: a netstring "<name> <key>"
// in, a netstring "OK <data>", "NOTFOUND ", "TEMP <reason>" or "PERM
// <reason>" out, any number of times per connection (socketmap_table(5)).
//
// Everything a client sends is bounded: the request size (a longer
// netstring closes the connection before anything is allocated for it),
// the time to send a request and to read a reply, the idle time between
// requests, the number of connections (further clients wait in the
// listen backlog) and the number of lookups running at once (further
// lookups wait, within their query timeout). A request that breaks the
// framing closes the connection; a well-framed request that makes no
// sense gets PERM.
//
// The zero value is not usable: set Lookup. Other fields are optional,
// each documented with its zero value. Set them before Serve.
type Server struct {
	// Lookup answers queries. Required.
	Lookup LookupFunc
	// MapNames are the map names accepted (the last field of Postfix's
	// "socketmap:unix:/path:name"); a request for another name gets PERM,
	// so that a typo in main.cf is loud. Nil accepts any name.
	MapNames []string
	// MaxConns bounds open connections. Zero means DefaultMaxConns.
	MaxConns int
	// MaxInflight bounds lookups running at once. Zero means
	// DefaultMaxInflight.
	MaxInflight int
	// MaxRequest caps a request's size in bytes. Zero means
	// DefaultMaxRequest.
	MaxRequest int
	// QueryTimeout bounds one lookup, waiting for a slot included. Zero
	// means DefaultQueryTimeout.
	QueryTimeout time.Duration
	// ReadTimeout, WriteTimeout and IdleTimeout: see the Default*
	// constants, which apply when they are zero.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Logger receives connection and protocol events. Nil means
	// slog.Default().
	Logger *slog.Logger

	initOnce sync.Once
	connSem  chan struct{}
	lookSem  chan struct{}
	done     chan struct{} // closed by Shutdown
	// base is the parent of every lookup's context; Shutdown cancels it
	// when draining times out.
	base       context.Context
	cancelBase context.CancelFunc
	wg         sync.WaitGroup

	mu        sync.Mutex // guards listeners, conns and draining
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	draining  bool
}

// serverConn is one client connection.
type serverConn struct {
	nc net.Conn
	// idle is true while the connection waits for the first byte of its
	// next request: only then may Shutdown close it without losing an
	// answer. Guarded by Server.mu.
	idle bool
}

// errServerClosed is returned by Serve after Shutdown.
var errServerClosed = errors.New("socketmap: server closed")

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.connSem = make(chan struct{}, orDefault(s.MaxConns, DefaultMaxConns))
		s.lookSem = make(chan struct{}, orDefault(s.MaxInflight, DefaultMaxInflight))
		s.done = make(chan struct{})
		s.base, s.cancelBase = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*serverConn]struct{})
	})
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Serve accepts connections on l until Shutdown (it then returns
// errServerClosed) or a permanent accept error. Serve closes l.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		l.Close()
		return errServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		// A connection slot first: at the limit, new clients wait in the
		// kernel's listen backlog instead of costing a goroutine each.
		select {
		case s.connSem <- struct{}{}:
		case <-s.done:
			return errServerClosed
		}
		nc, err := l.Accept()
		if err != nil {
			<-s.connSem
			select {
			case <-s.done:
				return errServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAccept(err) {
				// Out of file descriptors and the like: wait, as
				// net/http does, instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log().Warn("socketmap: accept failed; retrying", "error", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.done:
					return errServerClosed
				}
				continue
			}
			return err
		}
		backoff = 0
		c := &serverConn{nc: nc}
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			nc.Close()
			<-s.connSem
			return errServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// isTemporaryAccept reports accept errors worth retrying (EMFILE,
// ENFILE, ECONNABORTED...): everything except a closed listener.
func isTemporaryAccept(err error) bool {
	return !errors.Is(err, net.ErrClosed)
}

// Shutdown stops accepting connections, closes the idle ones, lets those
// in the middle of a request send their reply and close, and waits for
// all of them until ctx ends; then it cancels the lookups in progress,
// closes what is left and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.draining {
		s.draining = true
		close(s.done)
	}
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		if c.idle {
			// Unblocks the read of the next request's first byte.
			c.nc.SetReadDeadline(time.Now())
		}
	}
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
	}
	s.cancelBase()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	<-finished
	return ctx.Err()
}

// setIdle marks c idle; it returns false when the server is draining.
func (s *Server) setIdle(c *serverConn, idle bool) (draining bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.idle = idle
	return s.draining
}

func (s *Server) serveConn(c *serverConn) {
	defer func() {
		c.nc.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		<-s.connSem
		s.wg.Done()
	}()
	log := s.log().With("remote", c.nc.RemoteAddr().String())
	br := bufio.NewReaderSize(c.nc, 512)
	maxReq := orDefault(s.MaxRequest, DefaultMaxRequest)
	var out []byte
	for {
		if s.setIdle(c, true) {
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(orDefault(s.IdleTimeout, DefaultIdleTimeout)))
		_, err := br.Peek(1)
		draining := s.setIdle(c, false)
		if err != nil {
			if !errors.Is(err, io.EOF) && !draining {
				log.Debug("socketmap: connection closed", "error", err)
			}
			return
		}
		// The request has started: it gets its own deadline (which also
		// replaces one a concurrent Shutdown may have just set) and will
		// be answered even while draining.
		c.nc.SetReadDeadline(time.Now().Add(orDefault(s.ReadTimeout, DefaultReadTimeout)))
		req, err := readNetstring(br, maxReq)
		if err != nil {
			log.Warn("socketmap: protocol error; closing the connection", "error", err)
			return
		}
		r := s.handle(req)
		out = appendNetstring(out[:0], r.String())
		c.nc.SetWriteDeadline(time.Now().Add(orDefault(s.WriteTimeout, DefaultWriteTimeout)))
		if _, err := c.nc.Write(out); err != nil {
			log.Warn("socketmap: write failed", "error", err)
			return
		}
	}
}

// handle answers one well-framed request.
func (s *Server) handle(req []byte) Reply {
	name, key, found := bytes.Cut(req, []byte{' '})
	if !found || len(name) == 0 {
		return perm("malformed request: want \"<map name> <key>\"")
	}
	if s.MapNames != nil && !slices.Contains(s.MapNames, string(name)) {
		return perm("unknown map name " + sanitize(string(name)))
	}
	ctx, cancel := context.WithTimeout(s.base, orDefault(s.QueryTimeout, DefaultQueryTimeout))
	defer cancel()
	select {
	case s.lookSem <- struct{}{}:
	case <-ctx.Done():
		return temp("server busy")
	}
	defer func() { <-s.lookSem }()
	return s.Lookup(ctx, string(name), string(key))
}

// sanitize makes peer- or DNS-controlled text safe to echo in a socketmap
// reply, which Postfix logs as it is: printable ASCII only, at most 100
// bytes. Log lines quote such text with internal/quote instead.
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 100; i++ {
		if c := s[i]; c >= ' ' && c <= '~' {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
