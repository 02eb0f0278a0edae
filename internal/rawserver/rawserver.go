// Package rawserver runs hand-written TCP servers on loopback for the
// hostile-peer tests: a handler gets each accepted connection, every
// connection is tracked, and Close ends them all and waits for the
// handlers, so that tests can check that nothing is left running.
package rawserver

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is a TCP server on 127.0.0.1 with a kernel-chosen port.
type Server struct {
	ln       net.Listener
	handle   func(net.Conn)
	accepted atomic.Int64
	done     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup

	mu    sync.Mutex // guards conns
	conns map[net.Conn]bool
}

// New listens on 127.0.0.1 without serving yet, so that a caller can
// store the Server (for its handler to use) before Serve starts the
// accept loop; tb.Cleanup calls Close.
func New(tb testing.TB) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return NewOn(tb, ln)
}

// NewOn is New on a listener the caller made (for example on the port of
// a UDP socket, for DNS).
func NewOn(tb testing.TB, ln net.Listener) *Server {
	s := &Server{ln: ln, done: make(chan struct{}), conns: map[net.Conn]bool{}}
	tb.Cleanup(s.Close)
	return s
}

// Serve starts serving each connection with handle, which need not close
// it. Call it once.
func (s *Server) Serve(handle func(c net.Conn)) {
	s.handle = handle
	s.wg.Add(1)
	go s.serve()
}

// Listener returns the server's listener.
func (s *Server) Listener() net.Listener { return s.ln }

// Addr returns the address ("127.0.0.1:port").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Accepted returns the number of connections accepted so far.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Done is closed when Close starts: handlers that wait on purpose (a
// silent peer) select on it.
func (s *Server) Done() <-chan struct{} { return s.done }

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handle(c)
		}()
	}
}

// Close stops the listener, closes every open connection and waits for
// the handlers to return. It is idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
}
