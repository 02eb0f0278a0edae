package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smtptls/smtptls/smtptlstest"
)

// startServer serves s on a fresh listener ("tcp" on 127.0.0.1 or "unix"
// in a temporary directory) and returns the address; the server is shut
// down when the test ends.
func startServer(t *testing.T, s *Server, network string) string {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "socketmap")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	if s.Logger == nil {
		s.Logger = discard
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, errServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return l.Addr().String()
}

// query sends one request on c and reads one reply.
func query(c net.Conn, br *bufio.Reader, req string) (string, error) {
	if _, err := c.Write(appendNetstring(nil, req)); err != nil {
		return "", err
	}
	p, err := readNetstring(br, 1<<16)
	return string(p), err
}

func echoLookup(_ context.Context, name, key string) Reply {
	if key == "example.org" {
		return ok("dane")
	}
	return notFound
}

func TestServerProtocol(t *testing.T) {
	t.Parallel()
	s := &Server{Lookup: echoLookup, MapNames: []string{"tlspolicy"}, ReadTimeout: 500 * time.Millisecond}
	addr := startServer(t, s, "unix")
	const malformed = "PERM malformed request: want \"<map name> <key>\""
	tests := []struct {
		name string
		send string
		want []string // the replies, in order
		// closed: the server must then close the connection.
		closed bool
	}{
		{name: "one request", send: "21:tlspolicy example.org,", want: []string{"OK dane"}},
		{name: "pipelined", send: "21:tlspolicy example.org,21:tlspolicy example.net,", want: []string{"OK dane", "NOTFOUND "}},
		{name: "unknown map name", send: "17:other example.org,", want: []string{"PERM unknown map name other"}},
		{name: "no key", send: "9:tlspolicy,", want: []string{malformed}},
		{name: "empty request", send: "0:,", want: []string{malformed}},
		{name: "leading zero closes", send: "021:tlspolicy example.org,", closed: true},
		{name: "over the cap closes", send: "1025:", closed: true},
		{name: "huge length closes", send: "99999999999999999999999999:", closed: true},
		{name: "missing comma closes", send: "3:a bX", closed: true},
		{name: "binary closes", send: "\x00\xff\x16\x03\x01", closed: true},
		{name: "answers before garbage", send: "21:tlspolicy example.org,x", want: []string{"OK dane"}, closed: true},
		{name: "slowloris: partial request times out", send: "21:tlspolicy exa", closed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("unix", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, r := range tc.want {
				want = appendNetstring(want, r)
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != string(want) {
				t.Fatalf("read %q (%v), want %q", got, err, want)
			}
			if !tc.closed {
				return
			}
			var one [1]byte
			if n, err := c.Read(one[:]); err != io.EOF {
				t.Errorf("after the replies: read %d bytes, %v; want the connection closed", n, err)
			}
		})
	}
}

// TestServerSurvivesGarbage sends random bytes on many connections at
// once, then checks that the server still answers and holds no
// connection open.
func TestServerSurvivesGarbage(t *testing.T) {
	t.Parallel()
	s := &Server{Lookup: echoLookup, ReadTimeout: 300 * time.Millisecond}
	addr := startServer(t, s, "tcp")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			junk := make([]byte, 1+i*97)
			rand.Read(junk)
			if i%3 == 0 {
				// A plausible length, then junk of the wrong size.
				junk = append([]byte(fmt.Sprintf("%d:", len(junk)/2)), junk...)
			}
			c.Write(junk)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c) // until the server closes
		}()
	}
	wg.Wait()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := query(c, bufio.NewReader(c), "tlspolicy example.org"); err != nil || got != "OK dane" {
		t.Fatalf("after the garbage: %q, %v", got, err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestThousandConcurrentQueries runs 1,000 clients at once, each with its
// own connection and query, against the real Responder deciding over
// the test kit's DNS and HTTPS, with the default limits (512 connections,
// 64 lookups): the rest wait in the listen backlog and the lookup queue.
func TestThousandConcurrentQueries(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	buildWorld(w)
	r := newResponder(w)
	s := &Server{Lookup: r.Lookup}
	addr := startServer(t, s, "tcp")
	cases := []struct{ key, want string }{
		{"dane.test", "OK dane"},
		{"dane-sts.test", "OK dane"},
		{"sts.test", "OK secure match=mx1.sts.test:mx2.sts.test servername=hostname"},
		{"sts-testing.test", "NOTFOUND "},
		{"plain.test", "NOTFOUND "},
		{"mx-servfail.test", "TEMP MX lookup failed"},
		{"[192.0.2.1]", "NOTFOUND "},
		{"wild.test", "OK secure match=a.wild.test servername=hostname"},
	}
	const n = 1000
	var failed atomic.Int32
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc := cases[i%len(cases)]
			c, err := net.DialTimeout("tcp", addr, 30*time.Second)
			if err != nil {
				failed.Add(1)
				t.Errorf("dial: %v", err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			got, err := query(c, bufio.NewReader(c), "tlspolicy "+tc.key)
			if err != nil || got != tc.want {
				failed.Add(1)
				t.Errorf("%s: %q, %v; want %q", tc.key, got, err, tc.want)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d concurrent queries (%d connections at most, %d lookups at once) answered in %v, %d failed",
		n, DefaultMaxConns, DefaultMaxInflight, time.Since(start).Round(time.Millisecond), failed.Load())
}

func TestServerLookupLimit(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var calls atomic.Int32
	s := &Server{
		Lookup: func(ctx context.Context, _, _ string) Reply {
			// Holds its slot past its own deadline, as a stuck lookup
			// would.
			calls.Add(1)
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			return ok("dane")
		},
		MaxInflight:  1,
		QueryTimeout: 300 * time.Millisecond,
	}
	addr := startServer(t, s, "unix")
	first := make(chan string, 1)
	go func() {
		c, err := net.Dial("unix", addr)
		if err != nil {
			first <- err.Error()
			return
		}
		defer c.Close()
		got, _ := query(c, bufio.NewReader(c), "m a")
		first <- got
	}()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := query(c, bufio.NewReader(c), "m b"); err != nil || got != "TEMP server busy" {
		t.Errorf("second query while the only slot is taken: %q, %v; want TEMP server busy", got, err)
	}
	close(release)
	if got := <-first; got != "OK dane" {
		t.Errorf("first query: %q", got)
	}
}

// TestShutdownDrains: Shutdown closes idle connections at once, lets a
// request in progress get its answer, and then returns.
func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	inLookup := make(chan struct{})
	release := make(chan struct{})
	s := &Server{
		Lookup: func(ctx context.Context, _, key string) Reply {
			if key == "slow" {
				close(inLookup)
				<-release
			}
			return ok("dane")
		},
		Logger: discard,
	}
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	idle, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if got, err := query(idle, bufio.NewReader(idle), "m fast"); err != nil || got != "OK dane" {
		t.Fatalf("idle connection's first query: %q, %v", got, err)
	}
	busy, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyReply := make(chan string, 1)
	go func() {
		got, err := query(busy, bufio.NewReader(busy), "m slow")
		busyReply <- fmt.Sprint(got, err)
	}()
	<-inLookup

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- s.Shutdown(ctx)
	}()
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection during shutdown: read %d, %v; want EOF", n, err)
	}
	if _, err := net.Dial("unix", l.Addr().String()); err == nil {
		t.Errorf("new connections still accepted while draining")
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v before the request in progress was answered", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if got := <-busyReply; got != "OK dane<nil>" {
		t.Errorf("request in progress got %q, want its answer", got)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, errServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// TestShutdownTimeout: a lookup that never ends cannot hold the process.
func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	inLookup := make(chan struct{})
	s := &Server{Lookup: func(ctx context.Context, _, _ string) Reply {
		close(inLookup)
		<-ctx.Done()
		return temp("gone")
	}, QueryTimeout: time.Minute, Logger: discard}
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	c, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(appendNetstring(nil, "m k"))
	<-inLookup
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	if got := sanitize("a\x00b\nc" + strings.Repeat("x", 200)); got != "a?b?c"+strings.Repeat("x", 95) {
		t.Errorf("sanitize = %q", got)
	}
}
