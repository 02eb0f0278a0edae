// Package quote makes untrusted text safe to put in an error message or a
// log line: quoted or escaped, so that it cannot forge a line break, a
// NUL, a terminal escape or a field separator, and bounded, so that a
// 100 kB name from a peer or a caller yields a message of a few hundred
// bytes. Every package of the module formats untrusted text with it; it
// imports only the standard library, so that every package may use it.
package quote

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Max bounds the output of String and Name: the escaped text between the
// quotes is at most Max bytes.
const Max = 128

// MaxText bounds the output of Text (before the length note).
const MaxText = 320

// String returns s quoted as by strconv.Quote, with at most Max bytes of
// escaped text between the quotes. A longer s is cut on a character
// boundary and marked: `"abc"...(102400 bytes)`.
func String(s string) string {
	b := make([]byte, 0, min(len(s), Max)+24)
	b = append(b, '"')
	b, n := appendEscaped(b, s, Max, true)
	b = append(b, '"')
	return string(appendCut(b, n, len(s)))
}

// Name returns s unchanged when it looks like a plain DNS name (letters,
// digits, '-', '_', '.' and '*', at most 255 bytes), which is what every
// name is once internal/dnsname has normalised it; anything else is
// String(s). Messages stay readable for valid names and safe for the rest.
func Name(s string) string {
	if s != "" && len(s) <= 255 && plain(s) {
		return s
	}
	return String(s)
}

// Text returns s with control characters, invalid UTF-8 and other
// non-printing characters escaped as strconv.Quote escapes them, but
// without quotes and leaving '"' and '\' alone, cut to at most MaxText
// bytes with the same marker as String. It is for text that is already a
// message (a foreign error's text, a server's reply) and reads badly
// quoted, and for slog attribute values, which the handler quotes itself.
// Text of Text(s) is Text(s) when nothing was cut.
func Text(s string) string {
	b := make([]byte, 0, min(len(s), MaxText)+24)
	b, n := appendEscaped(b, s, MaxText, false)
	return string(appendCut(b, n, len(s)))
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '*') {
			return false
		}
	}
	return true
}

// appendEscaped appends s escaped to b, stopping before the escaped text
// would exceed limit bytes; it returns b and the number of bytes of s
// consumed. quoted selects strconv.Quote's escaping of '"' and '\'.
func appendEscaped(b []byte, s string, limit int, quoted bool) ([]byte, int) {
	start := len(b)
	var tmp [16]byte
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		var esc []byte
		switch {
		case r == utf8.RuneError && size == 1:
			esc = append(tmp[:0], '\\', 'x', hex[s[i]>>4], hex[s[i]&0xf])
		case r == '"' || r == '\\':
			if quoted {
				esc = append(tmp[:0], '\\', byte(r))
			} else {
				esc = append(tmp[:0], byte(r))
			}
		case r < utf8.RuneSelf && r >= ' ' && r != 0x7f || r >= utf8.RuneSelf && strconv.IsPrint(r):
			esc = append(tmp[:0], s[i:i+size]...)
		default:
			q := strconv.AppendQuoteRune(tmp[:0], r) // '\x1b'
			esc = q[1 : len(q)-1]
		}
		if len(b)-start+len(esc) > limit {
			break
		}
		b = append(b, esc...)
		i += size
	}
	return b, i
}

const hex = "0123456789abcdef"

func appendCut(b []byte, consumed, total int) []byte {
	if consumed == total {
		return b
	}
	b = append(b, "...("...)
	b = strconv.AppendInt(b, int64(total), 10)
	return append(b, " bytes)"...)
}

// Err returns Text(err.Error()), except that the parts of an errors.Join
// (an error whose message is its parts' messages joined by newlines) are
// joined by "; ": the line breaks that errors.Join itself puts between
// them would otherwise show as `\n` in a one-line message, while a line
// break inside a part is still escaped. The result is bounded as Text's.
func Err(err error) string {
	if err == nil {
		return ""
	}
	if parts := joined(err); parts != nil {
		s := make([]string, 0, len(parts))
		for _, p := range parts {
			s = append(s, Err(p))
		}
		return Text(strings.Join(s, "; "))
	}
	return Text(err.Error())
}

// joined returns the parts of err when err renders as errors.Join does,
// nil otherwise (an error with its own wording of its parts keeps it).
func joined(err error) []error {
	u, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	parts := u.Unwrap()
	if len(parts) < 2 {
		return nil
	}
	msg := err.Error()
	for i, p := range parts {
		if p == nil {
			return nil
		}
		ps := p.Error()
		if !strings.HasPrefix(msg, ps) {
			return nil
		}
		msg = msg[len(ps):]
		if i < len(parts)-1 {
			if !strings.HasPrefix(msg, "\n") {
				return nil
			}
			msg = msg[1:]
		}
	}
	if msg != "" {
		return nil
	}
	return parts
}
