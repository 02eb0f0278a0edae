package main

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// console is the run's stderr: messages, and on a terminal the progress
// line, which a message clears first so that the two never share a line.
type console struct {
	mu   sync.Mutex // guards writes to w
	w    io.Writer
	prog *progress // nil when stderr is not a terminal
}

// println writes a message line.
func (c *console) println(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prog != nil {
		io.WriteString(c.w, "\r\x1b[K")
	}
	io.WriteString(c.w, msg+"\n")
	if c.prog != nil {
		io.WriteString(c.w, c.prog.line())
	}
}

// progressInterval is how often the progress line is redrawn.
const progressInterval = 250 * time.Millisecond

// progress draws "done/total domains, rate/s, errors, ETA" on one
// terminal line, redrawn in place (CR, then EL: erase to the end of the
// line).
type progress struct {
	con    *console
	start  time.Time
	total  atomic.Int64 // -1 until the list is counted
	n, bad atomic.Int64
	quit   chan struct{}
	wg     sync.WaitGroup
}

func startProgress(con *console) *progress {
	p := &progress{con: con, start: time.Now(), quit: make(chan struct{})}
	p.total.Store(-1)
	p.wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw("")
			case <-p.quit:
				p.draw("\n")
				return
			}
		}
	})
	return p
}

// setTotal sets the number of domains the run will survey (-1: unknown).
func (p *progress) setTotal(n int) { p.total.Store(int64(n)) }

// add counts a domain done.
func (p *progress) add(failed bool) {
	p.n.Add(1)
	if failed {
		p.bad.Add(1)
	}
}

func (p *progress) draw(end string) {
	p.con.mu.Lock()
	defer p.con.mu.Unlock()
	io.WriteString(p.con.w, p.line()+end)
}

// line is the progress line, with the CR and EL that redraw it.
func (p *progress) line() string {
	n, total := p.n.Load(), p.total.Load()
	rate := float64(n) / max(time.Since(p.start).Seconds(), 1e-3)
	s := "\r\x1b[K" + strconv.FormatInt(n, 10)
	if total >= 0 {
		s += "/" + strconv.FormatInt(total, 10)
	}
	s += fmt.Sprintf(" domains, %.1f/s, %d errors", rate, p.bad.Load())
	if total >= 0 && n <= total {
		eta := "-"
		if rate > 0 {
			eta = (time.Duration(float64(total-n) / rate * float64(time.Second))).Round(time.Second).String()
		}
		s += ", ETA " + eta
	}
	return s
}

// stop draws the line a last time and ends it.
func (p *progress) stop() {
	close(p.quit)
	p.wg.Wait()
}
