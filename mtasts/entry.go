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
// Encoding, version 1: a text header of fixed lines in a fixed order,
// then the raw policy body exactly as fetched:
//
//	smtptls-mtasts 1
//	expires <RFC 3339 time>
//	mode <enforce|testing|none>
//	domain <lowercase A-labels>
//	id <record id>
//	fetched <RFC 3339 time>
//	used <RFC 3339 time>
//	fail <RFC 3339 time or -> <record id or -> <TLS-RPT result type or -> <Kind>
//	body <length in bytes>
//	<body>
//
// Expiry and mode come first so that MemoryCache can choose what to evict
// by reading two short lines (peekEntry) without parsing the policy. The
// body length makes a truncated entry detectable. A reader that finds
// another version treats the entry as a miss.
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

const entryMagic = "smtptls-mtasts 1\n"

// maxEntrySize bounds what a cache implementation of this package reads
// back: a header plus MaxPolicySize.
const maxEntrySize = MaxPolicySize + 4096

var errCorruptEntry = errors.New("mtasts: corrupt cache entry")

func (e *entry) marshal() []byte {
	var b bytes.Buffer
	b.Grow(len(entryMagic) + 300 + len(e.body))
	b.WriteString(entryMagic)
	line := func(k, v string) {
		b.WriteString(k)
		b.WriteByte(' ')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	line("expires", fmtTime(e.expires))
	line("mode", string(e.policy.Mode))
	line("domain", e.domain)
	line("id", e.id)
	line("fetched", fmtTime(e.fetched))
	line("used", fmtTime(e.used))
	failAt, failID, failType, failKind := "-", "-", "-", "0"
	if !e.failAt.IsZero() {
		failAt = fmtTime(e.failAt)
		if e.failID != "" {
			failID = e.failID
		}
		if e.failType != "" && isToken(string(e.failType)) {
			failType = string(e.failType)
		}
		failKind = strconv.Itoa(int(e.failKind))
	}
	line("fail", failAt+" "+failID+" "+failType+" "+failKind)
	line("body", strconv.Itoa(len(e.body)))
	b.Write(e.body)
	return b.Bytes()
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// isToken reports whether s is safe as one space-separated header field.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return s != ""
}

// unmarshalEntry decodes and checks an entry, parsing its policy.
func unmarshalEntry(data []byte) (*entry, error) {
	rest, ok := bytes.CutPrefix(data, []byte(entryMagic))
	if !ok {
		return nil, errCorruptEntry
	}
	var fields [8]string
	for i, k := range [...]string{"expires", "mode", "domain", "id", "fetched", "used", "fail", "body"} {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return nil, errCorruptEntry
		}
		v, ok := strings.CutPrefix(string(rest[:nl]), k+" ")
		if !ok {
			return nil, errCorruptEntry
		}
		fields[i] = v
		rest = rest[nl+1:]
	}
	e := &entry{domain: fields[2], id: fields[3]}
	var err1, err2, err3 error
	e.expires, err1 = time.Parse(time.RFC3339Nano, fields[0])
	e.fetched, err2 = time.Parse(time.RFC3339Nano, fields[4])
	e.used, err3 = time.Parse(time.RFC3339Nano, fields[5])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errCorruptEntry
	}
	fail := strings.Split(fields[6], " ")
	if len(fail) != 4 {
		return nil, errCorruptEntry
	}
	if fail[0] != "-" {
		t, err := time.Parse(time.RFC3339Nano, fail[0])
		if err != nil {
			return nil, errCorruptEntry
		}
		e.failAt = t
		if fail[1] != "-" {
			e.failID = fail[1]
		}
		if fail[2] != "-" {
			e.failType = tlsrpt.ResultType(fail[2])
		}
		k, err := strconv.ParseUint(fail[3], 10, 8)
		if err != nil {
			return nil, errCorruptEntry
		}
		e.failKind = Kind(k)
	}
	n, err := strconv.Atoi(fields[7])
	if err != nil || n != len(rest) {
		return nil, errCorruptEntry
	}
	if d, err := normalizeDomain(e.domain); err != nil || d != e.domain || !isRecordID(e.id) {
		return nil, errCorruptEntry
	}
	p, err := ParsePolicy(rest)
	if err != nil || string(p.Mode) != fields[1] {
		return nil, errCorruptEntry
	}
	e.body = rest
	e.policy = p
	e.warnings = p.Lint(e.domain)
	return e, nil
}

// peekEntry reads the expiry and mode of an encoded entry without
// decoding the rest. ok is false for anything that is not an entry of
// this version.
func peekEntry(data []byte) (expires time.Time, mode Mode, ok bool) {
	rest, found := bytes.CutPrefix(data, []byte(entryMagic))
	if !found {
		return time.Time{}, "", false
	}
	next := func(k string) (string, bool) {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return "", false
		}
		v, ok := bytes.CutPrefix(rest[:nl], []byte(k+" "))
		rest = rest[nl+1:]
		return string(v), ok
	}
	exp, ok1 := next("expires")
	m, ok2 := next("mode")
	if !ok1 || !ok2 {
		return time.Time{}, "", false
	}
	t, err := time.Parse(time.RFC3339Nano, exp)
	if err != nil {
		return time.Time{}, "", false
	}
	return t, Mode(m), true
}
