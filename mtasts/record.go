package mtasts

import (
	"strings"

	"github.com/smtptls/smtptls/internal/quote"
)

// Record is a parsed MTA-STS TXT record (RFC 8461 3.1). Its version is
// always STSv1: a record of any other version is not an MTA-STS record.
type Record struct {
	// ID identifies the policy instance: 1 to 32 letters and digits,
	// compared for equality only.
	ID string
	// Extensions holds the fields other than v and id, in record order.
	Extensions []Extension
}

// Extension is a key-value field that this package does not interpret.
type Extension struct {
	// Key is the field name, as received (case preserved).
	Key string
	// Value is the field value, without surrounding whitespace.
	Value string
}

// String returns the record in the RFC 8461 3.1 syntax, with "; " between
// the fields.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString("v=STSv1; id=")
	b.WriteString(r.ID)
	for _, e := range r.Extensions {
		b.WriteString("; ")
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
	}
	return b.String()
}

// ParseRecord parses the text of one TXT record (its strings joined with
// nothing between them) strictly by the RFC 8461 3.1 ABNF:
//
//	sts-text-record  = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//	sts-field-delim  = *WSP ";" *WSP
//	sts-version      = %s"v=STSv1"
//	sts-id           = %s"id=" 1*32(ALPHA / DIGIT)
//	sts-extension    = sts-ext-name "=" sts-ext-value
//	sts-ext-name     = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//	sts-ext-value    = 1*(%x21-3A / %x3C / %x3E-7E)
//
// The id field is required. A second id field is refused: the ABNF admits
// it, but two ids make "compare for equality" ambiguous. Errors are *Error
// with KindRecordSyntax.
func ParseRecord(txt string) (*Record, error) {
	fail := func(reason string) (*Record, error) {
		return nil, &Error{Kind: KindRecordSyntax, Reason: reason + " in " + quote.String(txt)}
	}
	const version = "v=STSv1"
	if !strings.HasPrefix(txt, version) {
		return fail("record does not start with v=STSv1")
	}
	s := txt[len(version):]
	r := &Record{}
	seenID := false
	for {
		// sts-field-delim, required before every field.
		t := trimWSP(s)
		if t == "" {
			if s != "" {
				// WSP may only trail as part of a final delimiter.
				return fail("trailing whitespace without ';'")
			}
			if !seenID {
				return fail("missing id")
			}
			return r, nil
		}
		s = t
		if s[0] != ';' {
			return fail("expected ';'")
		}
		s = trimWSP(s[1:])
		if s == "" {
			// [sts-field-delim] at the end.
			if !seenID {
				return fail("missing id")
			}
			return r, nil
		}
		// sts-field.
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return fail("field without '='")
		}
		key := s[:eq]
		s = s[eq+1:]
		end := 0
		for end < len(s) && isExtValueByte(s[end]) {
			end++
		}
		value := s[:end]
		s = s[end:]
		if key == "id" {
			if seenID {
				return fail("duplicate id")
			}
			if !isRecordID(value) {
				return fail("id must be 1 to 32 letters and digits")
			}
			seenID = true
			r.ID = value
			continue
		}
		if !isExtName(key) {
			return fail("invalid extension name")
		}
		if value == "" {
			return fail("empty extension value")
		}
		r.Extensions = append(r.Extensions, Extension{Key: key, Value: value})
	}
}

func trimWSP(s string) string {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return s[i:]
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isRecordID: 1*32(ALPHA / DIGIT).
func isRecordID(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// isExtName: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."), the
// same rule for TXT record and policy extension names.
func isExtName(s string) bool {
	if len(s) < 1 || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isExtValueByte: %x21-3A / %x3C / %x3E-7E (no ";", no "=", no WSP).
func isExtValueByte(c byte) bool {
	return c >= 0x21 && c <= 0x3a || c == 0x3c || c >= 0x3e && c <= 0x7e
}

// isSTSCandidate reports whether a TXT record is an MTA-STS record for the
// RFC 8461 3.1 discard rule ("records that do not begin with v=STSv1; are
// discarded"). The version token must be followed by the ABNF's field
// delimiter (*WSP ";"), WSP or the end, so "v=STSv12;" is discarded while
// "v=STSv1 ;" (which the ABNF admits) is kept and then parsed; a kept
// record that fails to parse means no policy, never a fallback to another.
func isSTSCandidate(txt string) bool {
	const version = "v=STSv1"
	if !strings.HasPrefix(txt, version) {
		return false
	}
	rest := txt[len(version):]
	return rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t'
}

// SelectRecord applies the RFC 8461 3.1 rule to a TXT RRset (each record's
// strings already joined): records that are not MTA-STS records are
// discarded, and exactly one must remain and parse. Errors are *Error
// with KindNoRecord, KindMultipleRecords or KindRecordSyntax; each means
// "no available policy" (a cached policy still applies, RFC 8461 5).
func SelectRecord(txts []string) (*Record, error) {
	var found string
	n := 0
	for _, t := range txts {
		if isSTSCandidate(t) {
			found = t
			n++
		}
	}
	switch {
	case n == 0:
		return nil, &Error{Kind: KindNoRecord}
	case n > 1:
		return nil, &Error{Kind: KindMultipleRecords, Reason: "RFC 8461 3.1 requires exactly one"}
	}
	return ParseRecord(found)
}
