package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/dnsname"
)

// entry is one domain of the list.
type entry struct {
	domain string // normalised: lowercase A-labels, no trailing dot
	rank   int    // 0 when the list gives none
}

// maxLine bounds one line of the list.
const maxLine = 4096

// readList calls fn for each domain of the list in order. Blank lines and
// lines starting with '#' are skipped; a line is a domain or "rank,domain"
// (the Tranco CSV format). bad is called with the line number and the
// reason of each line that is neither. readList stops at the first error
// fn returns, or a read error.
func readList(r io.Reader, bad func(line int, reason string), fn func(entry) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		e, reason := parseLine(line)
		if reason != "" {
			bad(n, reason)
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return fmt.Errorf("line %d: longer than %d bytes", n+1, maxLine)
	}
	return sc.Err()
}

// parseLine parses one non-blank, non-comment line.
func parseLine(line string) (entry, string) {
	var e entry
	name := line
	if r, d, ok := strings.Cut(line, ","); ok {
		rank, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || rank <= 0 {
			return e, fmt.Sprintf("rank %q is not a positive integer", strings.TrimSpace(r))
		}
		e.rank, name = rank, strings.TrimSpace(d)
	}
	d, err := dnsname.Mail.Normalize(name)
	if err != nil {
		return e, err.Error()
	}
	if !strings.Contains(d, ".") {
		return e, fmt.Sprintf("%q is not a mail domain (a single label)", d)
	}
	e.domain = d
	return e, ""
}

// shard selects a deterministic 1/n of the domains: those whose FNV-1a
// hash of the normalised name is i-1 modulo n (i from 1 to n). The same
// domain falls in the same shard whatever list or order it comes in.
type shard struct{ i, n uint64 }

func parseShard(s string) (shard, error) {
	if s == "" {
		return shard{1, 1}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.ParseUint(a, 10, 32)
	n, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || n == 0 || i == 0 || i > n {
		return shard{}, fmt.Errorf("-shard %q: want i/n with 1 <= i <= n", s)
	}
	return shard{i, n}, nil
}

func (s shard) has(domain string) bool {
	h := fnv.New64a()
	h.Write([]byte(domain))
	return h.Sum64()%s.n == s.i-1
}

// parseAnchors reads trust anchors: DS records in zone-file syntax (other
// records, comments and directives are ignored). It is the one place to
// swap for resolver.ParseAnchors.
func parseAnchors(r io.Reader, file string) ([]*dns.DS, error) {
	zp := dns.NewZoneParser(r, ".", file)
	var out []*dns.DS
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if ds, isDS := rr.(*dns.DS); isDS {
			out = append(out, ds)
		}
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no DS record", file)
	}
	return out, nil
}

// bucket is a token bucket of one token: a resolver.Limiter that spaces
// queries 1/qps apart, without bursts, for every resolver sharing it.
type bucket struct {
	mu       sync.Mutex // guards next
	next     time.Time
	interval time.Duration
}

func newBucket(qps float64) *bucket {
	return &bucket{interval: time.Duration(float64(time.Second) / qps)}
}

// Wait implements resolver.Limiter.
func (b *bucket) Wait(ctx context.Context) error {
	b.mu.Lock()
	now := time.Now()
	at := b.next
	if at.Before(now) {
		at = now
	}
	b.next = at.Add(b.interval)
	b.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
