package resolver

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/leakcheck"
)

// TestCacheHundredsOfGoroutines hammers one Cache over a real Stub with
// hundreds of goroutines: lookups of names that answer, fail, time out or
// do not exist, callers whose contexts end at random moments, a clock
// that jumps (expiring entries under the readers), Peek, Len and Flush —
// under the race detector. Every answer must be for its question, every
// failure a *Error, and nothing may be left running.
func TestCacheHundredsOfGoroutines(t *testing.T) {
	leakcheck.Check(t)
	srv := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		name := q.Question[0].Name
		switch {
		case len(name) > 4 && name[:4] == "fail":
			w.WriteMsg(reply(q, dns.RcodeServerFailure, false))
		case len(name) > 4 && name[:4] == "slow":
			time.Sleep(150 * time.Millisecond)
			w.WriteMsg(reply(q, dns.RcodeSuccess, true, name+" 1 IN A 192.0.2.2"))
		case len(name) > 4 && name[:4] == "none":
			w.WriteMsg(reply(q, dns.RcodeNameError, true, "test. 1 IN SOA ns.test. h.test. 1 2 3 4 1"))
		case len(name) > 4 && name[:4] == "mute":
			// never answers
		default:
			w.WriteMsg(reply(q, dns.RcodeSuccess, true, name+" 1 IN A 192.0.2.1", name+" 1 IN TXT \"t\""))
		}
	})
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	c := &Cache{Resolver: &Stub{Servers: []string{srv.Addr}, Timeout: 200 * time.Millisecond}, Now: clk.Now, MaxEntries: 50}
	kinds := []string{"ok", "fail", "slow", "none", "mute"}
	var answers, failures atomic.Int64
	var wg sync.WaitGroup
	for g := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 15 {
				name := kinds[r.IntN(len(kinds))] + strconv.Itoa(r.IntN(20)) + ".test"
				qtype := []uint16{dns.TypeA, dns.TypeTXT}[r.IntN(2)]
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(400))*time.Millisecond)
				switch i % 7 {
				case 0:
					cancel() // cancelled before the query
				case 1:
					time.AfterFunc(time.Duration(r.IntN(50))*time.Millisecond, cancel) // during it
				}
				a, err := c.Lookup(ctx, name, qtype)
				cancel()
				if err != nil {
					var e *Error
					if !errors.As(err, &e) || e.Kind == KindUnknown || a != nil {
						t.Errorf("%s: error %v (%T), answer %v", name, err, err, a)
						return
					}
					failures.Add(1)
					continue
				}
				answers.Add(1)
				for _, rr := range a.Records {
					if rr.Header().Rrtype != qtype || rr.Header().Name != Fqdn(name) {
						t.Errorf("%s/%d: stray record %v", name, qtype, rr)
					}
				}
				switch r.IntN(20) {
				case 0:
					clk.Add(2 * time.Second) // expire everything cached
				case 1:
					c.Flush(".")
				case 2:
					c.Len()
				case 3:
					c.Peek(name, qtype)
				}
			}
		}()
	}
	wg.Wait()
	if answers.Load() == 0 || failures.Load() == 0 {
		t.Errorf("%d answers, %d failures: the mix did not exercise both", answers.Load(), failures.Load())
	}
	if n := c.Len(); n > 50 {
		t.Errorf("Len %d beyond MaxEntries", n)
	}
	t.Logf("%d answers, %d failures, %d upstream queries", answers.Load(), failures.Load(), srv.queries.Load())
}

// TestStubHundredsOfGoroutines: one Stub shared by hundreds of goroutines
// (it keeps the index of the server that last worked), with a dead, a
// silent and a good server. On a loaded machine the good server may be
// slower than the timeout: such a lookup must fail as a timeout, never
// otherwise.
func TestStubHundredsOfGoroutines(t *testing.T) {
	leakcheck.Check(t)
	good := newWireServer(t, zone(true, map[string][]string{"a.test. A": {"a.test. 300 IN A 192.0.2.1"}}))
	silent := newWireServer(t, func(w dns.ResponseWriter, q *dns.Msg) {})
	s := &Stub{Servers: []string{deadAddr(t), silent.Addr, good.Addr}, Timeout: time.Second}
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				a, err := s.Lookup(context.Background(), "a.test", dns.TypeA)
				if err != nil {
					if e, isErr := errors.AsType[*Error](err); !isErr || e.Kind != KindTimeout || a != nil {
						t.Errorf("error %v, answer %v", err, a)
					}
					failed.Add(1)
					continue
				}
				ok.Add(1)
				if len(a.Records) != 1 || a.Records[0].(*dns.A).A.String() != "192.0.2.1" {
					t.Errorf("records %v", a.Records)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 {
		t.Errorf("no lookup succeeded")
	}
	t.Logf("%d lookups answered, %d timed out", ok.Load(), failed.Load())
}
