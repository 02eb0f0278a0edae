package wire

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the Pool's fields.
const (
	// DefaultMaxIdle is the number of idle UDP sockets a Pool keeps per
	// server: enough for the queries a busy MTA has in flight to one
	// resolver at once; more are opened when needed and closed after
	// their query.
	DefaultMaxIdle = 16
	// DefaultMaxUses is the number of queries a UDP socket sends before
	// it is closed and a new one (on a new port) takes its place.
	DefaultMaxUses = 64
	// DefaultMaxAge is how long a UDP socket is used, from its opening,
	// before it is closed: a port an attacker may have learned (by a
	// side channel such as SAD DNS, CVE-2020-25705) is gone within it.
	DefaultMaxAge = 5 * time.Second
	// DefaultIdleTimeout is how long an unused socket (UDP or TCP) stays
	// open. Nothing has to be closed by the user: an idle Pool holds no
	// socket after it, and never a goroutine.
	DefaultIdleTimeout = 2 * time.Second
	// maxIdleTCP is the number of idle TCP connections kept per server:
	// they only carry the retries of truncated answers (RFC 7766 6.2.1
	// asks clients to reuse them rather than open one per query).
	maxIdleTCP = 2
	// maxStrays is the number of datagrams that fail the checks of one
	// UDP exchange before it is abandoned for TCP (RFC 5452 9.3: many
	// packets failing the matching rules mean a spoofing attempt, and
	// TCP's sequence numbers defeat an off-path forger). It bounds the
	// ID guesses a forger who knows the socket's port gets per query to
	// 256 of 65,536, and is well above what a lossy path or a confused
	// server sends.
	maxStrays = 256
)

// A Pool is what Exchange reuses between queries: connected UDP sockets
// and TCP connections per server, and read buffers. Its zero value is
// ready to use, and it needs no Close: a socket unused for IdleTimeout is
// closed by a timer (no goroutine waits for it). A Pool is safe for
// concurrent use and must not be copied after first use.
//
// # One query per socket at a time
//
// A UDP socket is checked out of the pool for one query and returned
// after its reply. The alternative, several queries in flight on one
// socket demultiplexed by ID by a reader goroutine, needs a goroutine
// handoff and a timer per query, since the socket's deadline can no
// longer be the query's; measured one query at a time with the server in
// another process (BenchmarkExchangeCPU in package resolver), it cost
// 1.37-1.74 times the CPU of a bare client on one socket, where the Pool
// costs 1.03-1.14 times (and a socket per query 2.04-2.28 times); with
// GOMAXPROCS=1 the two designs cost about the same. With a socket to
// itself, an exchange reads its reply on its own goroutine, the socket's
// read deadline is its only timer, and a late or duplicated reply can
// only reach a later query of the same socket, which ignores it like any
// datagram that fails the checks.
//
// # Spoofing resistance (RFC 5452 9.2)
//
// An off-path forger must guess the socket's port and the query's ID.
// Each socket gets its own ephemeral port from the kernel (on Linux a
// random one of the 28,232 of the default range, 14.8 bits), and each
// query a new ID from crypto/rand (16 bits): about 30.8 bits per query,
// as with a new socket per query, for a forger who does not know the
// port. Reuse only matters to one who has learned it (the port stays the
// same for the socket's next queries, where a new socket per query would
// change it), and three rules bound that exposure: a socket serves at
// most MaxUses queries and MaxAge; a socket that receives any datagram
// failing the checks (a sign that someone found the port) is closed
// after its query instead of being reused; and a socket that receives
// maxStrays of them is abandoned for TCP. Concurrent queries use
// different sockets, hence different ports (RFC 5452 9.2).
type Pool struct {
	// MaxIdle bounds the idle UDP sockets kept per server. Zero means
	// DefaultMaxIdle.
	MaxIdle int
	// MaxUses bounds the queries sent over one socket. Zero means
	// DefaultMaxUses.
	MaxUses int
	// MaxAge bounds the time one UDP socket is used, from its opening.
	// Zero means DefaultMaxAge.
	MaxAge time.Duration
	// IdleTimeout is how long an unused socket stays open. Zero means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration

	bufs sync.Pool // of *Buffer

	mu    sync.Mutex // guards idle, timer and armed
	idle  map[string]*idleSet
	timer *time.Timer // the idle sweep
	armed bool        // timer will fire

	stats struct {
		udpOpened, tcpOpened, reused, strays, abandoned, retransmits atomic.Uint64
	}
}

// idleSet holds the idle connections to one server, least recently used
// first.
type idleSet struct {
	udp, tcp []*conn
}

// conn is a socket and its history.
type conn struct {
	net.Conn
	opened   time.Time
	returned time.Time // when it was last put back
	uses     int
	reused   bool // it had served a query before this one
}

// Stats counts what a Pool has done since it was created.
type Stats struct {
	// UDPOpened and TCPOpened count the sockets opened.
	UDPOpened, TCPOpened uint64
	// Reused counts the queries sent over a socket that had served an
	// earlier query.
	Reused uint64
	// Strays counts the UDP datagrams ignored because they failed the
	// checks (ID, question, opcode, size, format).
	Strays uint64
	// Abandoned counts the UDP exchanges abandoned for TCP after
	// maxStrays stray datagrams (RFC 5452 9.3).
	Abandoned uint64
	// Retransmits counts the UDP queries sent again for want of a
	// reply (see Exchange).
	Retransmits uint64
	// IdleUDP and IdleTCP are the sockets open and idle now.
	IdleUDP, IdleTCP int
}

// Stats returns the Pool's counters.
func (p *Pool) Stats() Stats {
	s := Stats{
		UDPOpened: p.stats.udpOpened.Load(),
		TCPOpened: p.stats.tcpOpened.Load(),
		Reused:    p.stats.reused.Load(),
		Strays:    p.stats.strays.Load(),
		Abandoned: p.stats.abandoned.Load(),

		Retransmits: p.stats.retransmits.Load(),
	}
	p.mu.Lock()
	for _, set := range p.idle {
		s.IdleUDP += len(set.udp)
		s.IdleTCP += len(set.tcp)
	}
	p.mu.Unlock()
	return s
}

// CloseIdle closes every idle socket now. Sockets in use are closed when
// their query ends, if they are idle for IdleTimeout by then.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	var doomed []*conn
	for server, set := range p.idle {
		doomed = append(doomed, set.udp...)
		doomed = append(doomed, set.tcp...)
		delete(p.idle, server)
	}
	if p.armed {
		p.timer.Stop()
		p.armed = false
	}
	p.mu.Unlock()
	closeAll(doomed)
}

func (p *Pool) maxIdle() int               { return orDefault(p.MaxIdle, DefaultMaxIdle) }
func (p *Pool) maxUses() int               { return orDefault(p.MaxUses, DefaultMaxUses) }
func (p *Pool) maxAge() time.Duration      { return orDefault(p.MaxAge, DefaultMaxAge) }
func (p *Pool) idleTimeout() time.Duration { return orDefault(p.IdleTimeout, DefaultIdleTimeout) }

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// buffer returns a read buffer from the pool.
func (p *Pool) buffer() *Buffer {
	if b, ok := p.bufs.Get().(*Buffer); ok {
		return b
	}
	return new(Buffer)
}

// get checks out a connection to server over network, reusing an idle
// one if there is one still fit for use, or dialling one by deadline.
func (p *Pool) get(ctx context.Context, network, server string, deadline time.Time) (*conn, error) {
	now := time.Now()
	var doomed []*conn
	p.mu.Lock()
	if set := p.idle[server]; set != nil {
		list := &set.udp
		if network == "tcp" {
			list = &set.tcp
		}
		// Most recently returned first: the others go idle and close.
		for n := len(*list); n > 0; n = len(*list) {
			c := (*list)[n-1]
			(*list)[n-1] = nil
			*list = (*list)[:n-1]
			if p.fresh(network, c, now) {
				p.mu.Unlock()
				closeAll(doomed)
				c.reused = true
				p.stats.reused.Add(1)
				return c, nil
			}
			doomed = append(doomed, c)
		}
	}
	p.mu.Unlock()
	closeAll(doomed)
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	if network == "udp" {
		p.stats.udpOpened.Add(1)
	} else {
		p.stats.tcpOpened.Add(1)
	}
	return &conn{Conn: nc, opened: now}, nil
}

// fresh reports whether an idle connection may serve another query: not
// idle for too long (the server may have forgotten it), and for UDP not
// past its age (its port must change).
func (p *Pool) fresh(network string, c *conn, now time.Time) bool {
	if now.Sub(c.returned) >= p.idleTimeout() {
		return false
	}
	return network == "tcp" || now.Sub(c.opened) < p.maxAge()
}

// put returns a connection after a query that ended cleanly: reply read,
// no stray datagram, no cancellation. It is kept if it has uses left and
// there is room, and closed otherwise.
func (p *Pool) put(network, server string, c *conn) {
	c.uses++
	now := time.Now()
	if c.uses >= p.maxUses() || (network == "udp" && now.Sub(c.opened) >= p.maxAge()) {
		c.Close()
		return
	}
	c.returned = now
	c.reused = false
	p.mu.Lock()
	if p.idle == nil {
		p.idle = make(map[string]*idleSet)
	}
	set := p.idle[server]
	if set == nil {
		set = &idleSet{}
		p.idle[server] = set
	}
	list, max := &set.udp, p.maxIdle()
	if network == "tcp" {
		list, max = &set.tcp, maxIdleTCP
	}
	if len(*list) >= max {
		p.mu.Unlock()
		c.Close()
		return
	}
	*list = append(*list, c)
	if !p.armed {
		p.armed = true
		if p.timer == nil {
			p.timer = time.AfterFunc(p.idleTimeout(), p.sweep)
		} else {
			p.timer.Reset(p.idleTimeout())
		}
	}
	p.mu.Unlock()
}

// sweep closes the sockets idle for IdleTimeout or, for UDP, past their
// age, and runs again while any remain.
func (p *Pool) sweep() {
	now := time.Now()
	idle, age := p.idleTimeout(), p.maxAge()
	var doomed []*conn
	p.mu.Lock()
	next := time.Duration(-1)
	keep := func(list []*conn, udp bool) []*conn {
		kept := list[:0]
		for _, c := range list {
			left := idle - now.Sub(c.returned)
			if udp {
				left = min(left, age-now.Sub(c.opened))
			}
			if left <= 0 {
				doomed = append(doomed, c)
				continue
			}
			kept = append(kept, c)
			if next < 0 || left < next {
				next = left
			}
		}
		clear(list[len(kept):])
		return kept
	}
	for server, set := range p.idle {
		set.udp = keep(set.udp, true)
		set.tcp = keep(set.tcp, false)
		if len(set.udp) == 0 && len(set.tcp) == 0 {
			delete(p.idle, server)
		}
	}
	p.armed = next >= 0
	if p.armed {
		p.timer.Reset(next)
	}
	p.mu.Unlock()
	closeAll(doomed)
}

func closeAll(cs []*conn) {
	for _, c := range cs {
		c.Close()
	}
}

// newID returns a query ID from crypto/rand (RFC 5452 9.2: unpredictable,
// over the full 16 bits).
func newID() uint16 {
	var b [2]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return binary.BigEndian.Uint16(b[:])
}
