package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"

	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/internal/quote"
)

// entry is one domain of the list.
type entry struct {
	domain string // normalised: lowercase A-labels, no trailing dot
	rank   int    // 0 when the list gives none
}

// maxLine bounds one line of the list: a rank, a comma and a name of at
// most 253 octets (in U-labels, up to four bytes a character) fit.
const maxLine = 2048

// readList calls fn for each domain of the list, in order, reading it as
// a stream. Blank lines and lines starting with '#' are skipped; a line
// is a domain or "rank,domain" (the Tranco CSV format), with surrounding
// spaces, a CR before the LF and a UTF-8 byte order mark on the first
// line tolerated. bad is called with the line number and the reason of
// each other line, longer ones included, which are skipped. readList
// stops at the first error fn returns, or a read error.
func readList(r io.Reader, bad func(line int, reason string), fn func(entry) error) error {
	br := bufio.NewReaderSize(r, maxLine)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Skip the rest of an over-long line without holding it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			bad(n, fmt.Sprintf("line longer than %d bytes", maxLine))
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		if s := strings.TrimSpace(string(line)); s != "" && s[0] != '#' {
			e, reason := parseLine(s)
			if reason != "" {
				bad(n, reason)
			} else if ferr := fn(e); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// parseLine parses one non-blank, non-comment line; the reason of a bad
// line quotes what it holds.
func parseLine(line string) (entry, string) {
	var e entry
	name := line
	if r, d, ok := strings.Cut(line, ","); ok {
		r = strings.TrimSpace(r)
		rank, err := strconv.Atoi(r)
		if err != nil || rank <= 0 {
			return e, "rank " + quote.String(r) + " is not a positive integer"
		}
		e.rank, name = rank, strings.TrimSpace(d)
	}
	d, err := dnsname.Mail.Normalize(name)
	if err != nil {
		return e, err.Error()
	}
	if !strings.Contains(d, ".") {
		return e, quote.Name(d) + " is not a mail domain (a single label)"
	}
	e.domain = d
	return e, ""
}

// shard selects a deterministic 1/n of the domains: those whose FNV-1a
// hash of the normalised name is i-1 modulo n (i from 1 to n). A domain
// falls in the same shard whatever list it comes in and wherever in it,
// so that n machines given the same list split it exactly.
type shard struct{ i, n uint64 }

func parseShard(s string) (shard, error) {
	if s == "" {
		return shard{1, 1}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.ParseUint(a, 10, 32)
	n, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || n == 0 || i == 0 || i > n {
		return shard{}, fmt.Errorf("-shard %s: want i/n with 1 <= i <= n", quote.String(s))
	}
	return shard{i, n}, nil
}

func (s shard) has(domain string) bool {
	h := fnv.New64a()
	h.Write([]byte(domain))
	return h.Sum64()%s.n == s.i-1
}
