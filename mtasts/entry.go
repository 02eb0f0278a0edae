package mtasts

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

// An entry is what the Client stores in a Cache for one policy domain.
//
// Encoding: one header line of space-separated fields in a fixed order,
// then the raw policy body exactly as fetched:
//
//	smtptls-mtasts 2 <expires> <mode> <domain> <id> <fetched> <used> <fail> <fail-id> <fail-type> <fail-kind> <body length>
//	<body>
//
// Times are Unix seconds with an optional fraction of up to nine digits
// (nanoseconds, trailing zeros dropped); <fail> is the time of the last
// failed fetch or "-" when none, and <fail-id> and <fail-type> are "-"
// when unknown. Expiry and mode come first so that MemoryCache can choose
// what to evict by reading them alone (peekEntryString). The body length
// makes a truncated entry detectable. Data that does not start with the
// magic "smtptls-mtasts 2 " (another version, or anything else) is not an
// entry: the Client treats it as a cache miss and overwrites it.
type entry struct {
	domain  string
	id      string
	fetched time.Time
	expires time.Time
	used    time.Time
	// failAt, failID and failType record the last failed fetch, for the
	// RFC 8461 3.3 back-off across restarts; failAt is zero when none.
	failAt   time.Time
	failID   string
	failType tlsrpt.ResultType
	failKind Kind
	body     []byte
	policy   *Policy
	// warnings is policy.Lint(domain), computed once per decode or fetch.
	warnings []Warning
}

const (
	entryMagic = "smtptls-mtasts 2 "
	// entryFields is the number of header fields after the magic.
	entryFields = 11
)

// maxEntrySize bounds what a cache implementation of this package reads
// back: a header plus MaxPolicySize.
const maxEntrySize = MaxPolicySize + 4096

var errCorruptEntry = errors.New("mtasts: corrupt cache entry")

func (e *entry) marshal() []byte {
	b := make([]byte, 0, len(entryMagic)+96+len(e.domain)+len(e.id)+len(e.body))
	b = append(b, entryMagic...)
	b = appendTime(b, e.expires)
	b = append(b, ' ')
	b = append(b, e.policy.Mode...)
	b = append(b, ' ')
	b = append(b, e.domain...)
	b = append(b, ' ')
	b = append(b, e.id...)
	b = append(b, ' ')
	b = appendTime(b, e.fetched)
	b = append(b, ' ')
	b = appendTime(b, e.used)
	b = append(b, ' ')
	if e.failAt.IsZero() {
		b = append(b, "- - - 0"...)
	} else {
		b = appendTime(b, e.failAt)
		b = append(b, ' ')
		b = appendToken(b, e.failID)
		b = append(b, ' ')
		b = appendToken(b, string(e.failType))
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(e.failKind), 10)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(e.body)), 10)
	b = append(b, '\n')
	return append(b, e.body...)
}

// appendToken appends s, or "-" when s is empty or not a token.
func appendToken(b []byte, s string) []byte {
	if !isToken(s) || s == "-" {
		return append(b, '-')
	}
	return append(b, s...)
}

// appendTime appends t as Unix seconds and, when not whole, a fraction of
// up to nine digits.
func appendTime(b []byte, t time.Time) []byte {
	b = strconv.AppendInt(b, t.Unix(), 10)
	ns := t.Nanosecond()
	if ns == 0 {
		return b
	}
	var frac [9]byte
	for i := 8; i >= 0; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := 9
	for frac[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, frac[:n]...)
}

// parseTime parses what appendTime writes.
func parseTime(s string) (time.Time, bool) {
	secText, fracText, hasFrac := strings.Cut(s, ".")
	if secText == "" || secText == "-" || !allDigits(strings.TrimPrefix(secText, "-")) {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(secText, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var ns int64
	if hasFrac {
		if fracText == "" || len(fracText) > 9 || !allDigits(fracText) {
			return time.Time{}, false
		}
		n, _ := strconv.ParseInt(fracText, 10, 64)
		for range 9 - len(fracText) {
			n *= 10
		}
		ns = n
	}
	return time.Unix(sec, ns).UTC(), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isToken reports whether s is safe as one space-separated header field.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return s != ""
}

// unmarshalEntry decodes and checks an entry (header fields, body length,
// domain, id, and the mode against the parsed policy), parsing its
// policy.
func unmarshalEntry(data []byte) (*entry, error) {
	f, rest, ok := entryHeader(data)
	if !ok {
		return nil, errCorruptEntry
	}
	e := &entry{domain: f[2], id: f[3]}
	var ok1, ok2, ok3 bool
	e.expires, ok1 = parseTime(f[0])
	e.fetched, ok2 = parseTime(f[4])
	e.used, ok3 = parseTime(f[5])
	if !ok1 || !ok2 || !ok3 {
		return nil, errCorruptEntry
	}
	if f[6] != "-" {
		t, ok := parseTime(f[6])
		if !ok {
			return nil, errCorruptEntry
		}
		e.failAt = t
		if f[7] != "-" {
			e.failID = f[7]
		}
		if f[8] != "-" {
			e.failType = tlsrpt.ResultType(f[8])
		}
		k, err := strconv.ParseUint(f[9], 10, 8)
		if err != nil {
			return nil, errCorruptEntry
		}
		e.failKind = Kind(k)
	} else if f[7] != "-" || f[8] != "-" || f[9] != "0" {
		return nil, errCorruptEntry
	}
	n, err := strconv.Atoi(f[10])
	if err != nil || n != len(rest) {
		return nil, errCorruptEntry
	}
	if d, err := normalizeDomain(e.domain); err != nil || d != e.domain || !isRecordID(e.id) {
		return nil, errCorruptEntry
	}
	p, err := ParsePolicy(rest)
	if err != nil || string(p.Mode) != f[1] {
		return nil, errCorruptEntry
	}
	e.body = rest
	e.policy = p
	e.warnings = p.Lint(e.domain)
	return e, nil
}

// entryHeader splits an entry into its header fields and body.
func entryHeader(data []byte) (f [entryFields]string, body []byte, ok bool) {
	rest, found := bytes.CutPrefix(data, []byte(entryMagic))
	if !found {
		return f, nil, false
	}
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 {
		return f, nil, false
	}
	line := string(rest[:nl])
	for i := range entryFields {
		var field string
		if i < entryFields-1 {
			var more bool
			field, line, more = strings.Cut(line, " ")
			if !more {
				return f, nil, false
			}
		} else {
			field, line = line, ""
		}
		if !isToken(field) {
			return f, nil, false
		}
		f[i] = field
	}
	return f, rest[nl+1:], true
}

// peekEntryString reads the expiry and mode of an encoded entry, held as
// a string as MemoryCache holds them, without decoding the rest or
// allocating. ok is false for anything that is not an entry.
func peekEntryString(data string) (expires time.Time, mode Mode, ok bool) {
	rest, found := strings.CutPrefix(data, entryMagic)
	if !found {
		return time.Time{}, "", false
	}
	// The first two fields, within the header line.
	nl := strings.IndexByte(rest, '\n')
	if nl < 0 {
		return time.Time{}, "", false
	}
	exp, rest, ok1 := strings.Cut(rest[:nl], " ")
	m, _, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return time.Time{}, "", false
	}
	t, ok := parseTime(exp)
	if !ok {
		return time.Time{}, "", false
	}
	return t, Mode(m), true
}
