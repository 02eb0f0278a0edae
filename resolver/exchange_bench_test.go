//go:build unix

package resolver

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver/internal/wire"
)

// The CPU cost of one DNS exchange, measured as the process's user+system
// time (getrusage) per query, with the DNS server in another process (the
// test binary run again as TestExchangeBenchChild) so that its CPU is not
// counted. Four ways to ask the same question of the same server, one
// query at a time:
//
//   - floor: a bare miekg/dns client, WriteMsg and ReadMsg on one
//     connected UDP socket opened once: the syscalls, packing and
//     unpacking that no exchange can avoid.
//   - pooled: wire.Pool.Exchange, the module's exchange.
//   - perquery: the exchange before the Pool (a new socket, context and
//     timer per query), kept here as the comparison.
//   - demux: several queries in flight on one socket, demultiplexed by
//     ID by a reader goroutine, each query waiting on a channel with a
//     timer: the design the Pool did not choose.
//   - stub: Stub.Lookup over its Pool, a whole lookup (name check,
//     answer walk) for one exchange.
//
// BenchmarkExchangeCPU interleaves the modes in chunks of 50 queries, so
// that the machine's load hits all of them alike, and reports each one's
// CPU per query (user+system, and user alone) and its ratio to the floor
// measured in the same run.
// BenchmarkExchange runs each mode alone, for its allocations and the
// split of its CPU between user and system time.

const benchChildEnv = "SMTPTLS_EXCHANGE_BENCH_CHILD"

// TestExchangeBenchChild is the DNS server of the exchange benchmarks when
// the test binary runs as their child: it answers every UDP question with
// one A record, prints its address and serves until its stdin closes.
func TestExchangeBenchChild(t *testing.T) {
	if os.Getenv(benchChildEnv) == "" {
		t.Skip("run only as the child of the exchange benchmarks")
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rr, _ := dns.NewRR("bench.test. 300 IN A 192.0.2.1")
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(q)
		r.AuthenticatedData = true
		r.Answer = []dns.RR{rr}
		w.WriteMsg(r)
	})}
	go srv.ActivateAndServe()
	fmt.Println(pc.LocalAddr().String())
	buf := make([]byte, 1)
	os.Stdin.Read(buf) // until the parent exits or closes the pipe
	srv.Shutdown()
}

var benchChild struct {
	once  sync.Once
	addr  string
	err   error
	stdin io.WriteCloser // kept open: the child exits when it closes
}

// benchServer starts the child server once per test binary; it exits with
// the parent (its stdin closes).
func benchServer(b *testing.B) string {
	benchChild.once.Do(func() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestExchangeBenchChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), benchChildEnv+"=1")
		cmd.Stderr = os.Stderr
		if benchChild.stdin, benchChild.err = cmd.StdinPipe(); benchChild.err != nil {
			return
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			benchChild.err = err
			return
		}
		if benchChild.err = cmd.Start(); benchChild.err != nil {
			return
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		benchChild.addr, benchChild.err = strings.TrimSpace(line), err
	})
	if benchChild.err != nil {
		b.Fatal(benchChild.err)
	}
	return benchChild.addr
}

// cpuTimes is the process's user and system CPU time so far.
func cpuTimes() (user, sys time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// benchMode asks n questions one after the other.
type benchMode struct {
	name string
	run  func(b *testing.B, n int)
}

func benchModes(b *testing.B, addr string) []benchMode {
	q := new(dns.Msg)
	q.SetQuestion("bench.test.", dns.TypeA)
	q.RecursionDesired = true
	q.AuthenticatedData = true
	q.SetEdns0(wire.EDNSSize, true)
	// As an MTA calls it: a context that can end.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	check := func(r *dns.Msg, err error) {
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Answer) != 1 {
			b.Fatalf("reply %v", r)
		}
	}

	c, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Hour))
	co := &dns.Conn{Conn: c}
	floor := func(b *testing.B, n int) {
		for range n {
			if err := co.WriteMsg(q); err != nil {
				b.Fatal(err)
			}
			check(co.ReadMsg())
		}
	}

	pool := &wire.Pool{}
	b.Cleanup(pool.CloseIdle)
	pooled := func(b *testing.B, n int) {
		for range n {
			check(pool.Exchange(ctx, addr, q, 2*time.Second))
		}
	}

	var bufs sync.Pool
	perquery := func(b *testing.B, n int) {
		for range n {
			q.Id = dns.Id()
			check(exchangePerQuery(ctx, addr, q, 2*time.Second, &bufs))
		}
	}

	dm := newDemux(b, addr)
	demux := func(b *testing.B, n int) {
		for range n {
			check(dm.exchange(ctx, q, 2*time.Second))
		}
	}

	stub := &Stub{Servers: []string{addr}}
	b.Cleanup(stub.pool.CloseIdle)
	stubMode := func(b *testing.B, n int) {
		for range n {
			a, err := stub.Lookup(ctx, "bench.test.", dns.TypeA)
			if err != nil || len(a.Records) != 1 || a.Security != Secure {
				b.Fatal(a, err)
			}
		}
	}
	return []benchMode{{"floor", floor}, {"pooled", pooled}, {"perquery", perquery}, {"demux", demux}, {"stub", stubMode}}
}

// BenchmarkExchange: each mode alone, for its CPU per query and its
// allocations.
func BenchmarkExchange(b *testing.B) {
	addr := benchServer(b)
	for _, m := range benchModes(b, addr) {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			m.run(b, 10) // a socket and buffers ready, as in steady state
			user, sys := cpuTimes()
			b.ResetTimer()
			m.run(b, b.N)
			b.StopTimer()
			user1, sys1 := cpuTimes()
			per := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e3 }
			b.ReportMetric(per(user1-user+sys1-sys), "cpu-µs/op")
			b.ReportMetric(per(user1-user), "user-µs/op")
			b.ReportMetric(per(sys1-sys), "sys-µs/op")
		})
	}
}

// BenchmarkExchangeCPU: the modes interleaved, chunk by chunk; b.N
// queries of each. Reports each mode's CPU per query and its ratio to the
// floor of the same run.
func BenchmarkExchangeCPU(b *testing.B) {
	addr := benchServer(b)
	modes := benchModes(b, addr)
	const chunk = 50
	for _, m := range modes {
		m.run(b, chunk)
	}
	cpu := make([]time.Duration, len(modes))
	user := make([]time.Duration, len(modes))
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		n := min(chunk, b.N-done)
		for i := range modes {
			j := (i + round) % len(modes) // rotate the order
			u0, s0 := cpuTimes()
			modes[j].run(b, n)
			u1, s1 := cpuTimes()
			cpu[j] += u1 - u0 + s1 - s0
			user[j] += u1 - u0
		}
		done += n
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e3 }
	for i, m := range modes {
		b.ReportMetric(per(cpu[i]), m.name+"-cpu-µs/q")
		b.ReportMetric(per(user[i]), m.name+"-user-µs/q")
		if i > 0 {
			b.ReportMetric(per(cpu[i])/per(cpu[0]), m.name+"/floor")
		}
	}
	b.ReportMetric(per(cpu[2])/per(cpu[1]), "perquery/pooled")
}

// exchangePerQuery is the UDP leg of the exchange as it was before the
// Pool: a new socket dialled through a deadline context, a cancellation
// hook, one query, the socket closed.
func exchangePerQuery(ctx context.Context, server string, m *dns.Msg, timeout time.Duration, bufs *sync.Pool) (*dns.Msg, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, "udp", server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(dctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := dctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	co := &dns.Conn{Conn: c}
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	b, _ := bufs.Get().(*wire.Buffer)
	if b == nil {
		b = new(wire.Buffer)
	}
	defer bufs.Put(b)
	for {
		n, err := c.Read(b[:])
		if err != nil {
			return nil, err
		}
		if n > wire.MaxUDPSize {
			continue
		}
		r := new(dns.Msg)
		if r.Unpack(b[:n]) != nil || !wire.Matches(r, m) {
			continue
		}
		return r, nil
	}
}

// demux is several queries in flight on one connected UDP socket: a
// reader goroutine hands each datagram to the query waiting for its ID.
type demux struct {
	c       net.Conn
	mu      sync.Mutex
	waiting map[uint16]chan []byte
	bufs    sync.Pool
}

func newDemux(b *testing.B, addr string) *demux {
	c, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	d := &demux{c: c, waiting: map[uint16]chan []byte{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			buf, _ := d.bufs.Get().(*wire.Buffer)
			if buf == nil {
				buf = new(wire.Buffer)
			}
			n, err := c.Read(buf[:])
			if err != nil {
				return
			}
			if n < 2 || n > wire.MaxUDPSize {
				continue
			}
			d.mu.Lock()
			ch := d.waiting[binary.BigEndian.Uint16(buf[:])]
			d.mu.Unlock()
			if ch != nil {
				select {
				case ch <- buf[:n]:
				default:
				}
			}
		}
	}()
	b.Cleanup(func() { c.Close(); <-done })
	return d
}

func (d *demux) exchange(ctx context.Context, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	var idb [2]byte
	ch := make(chan []byte, 1)
	var id uint16
	d.mu.Lock()
	for {
		rand.Read(idb[:])
		id = binary.BigEndian.Uint16(idb[:])
		if d.waiting[id] == nil {
			break
		}
	}
	d.waiting[id] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.waiting, id)
		d.mu.Unlock()
	}()
	q := *m
	q.Id = id
	pb, _ := d.bufs.Get().(*wire.Buffer)
	if pb == nil {
		pb = new(wire.Buffer)
	}
	p, err := q.PackBuffer(pb[:])
	if err == nil {
		_, err = d.c.Write(p)
	}
	d.bufs.Put(pb)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case b := <-ch:
			r := new(dns.Msg)
			err := r.Unpack(b)
			d.bufs.Put((*wire.Buffer)(b[:cap(b)]))
			if err != nil || !wire.Matches(r, &q) {
				continue
			}
			return r, nil
		case <-t.C:
			return nil, context.DeadlineExceeded
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
