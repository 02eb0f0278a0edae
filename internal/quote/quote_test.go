package quote

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"mx.example", `"mx.example"`},
		{"a\r\nb", `"a\r\nb"`},
		{"a\x00b", `"a\x00b"`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"\xff\xfe.example", `"\xff\xfe.example"`},
		{`say "hi" \o/`, `"say \"hi\" \\o/"`},
		{"bücher\u202e.example", `"bücher\u202e.example"`},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if got, err := strconv.Unquote(String(tc.in)); err != nil || got != tc.in {
			t.Errorf("String(%q) does not unquote to the input: %q, %v", tc.in, got, err)
		}
	}
}

func TestBounded(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		strings.Repeat("a", 100<<10),
		strings.Repeat("\x00", 100<<10),
		strings.Repeat("\r\n\x1b[31m", 10<<10),
		strings.Repeat("é", 50<<10),
		strings.Repeat("\xff", 100<<10),
	} {
		for name, f := range map[string]func(string) string{"String": String, "Name": Name, "Text": Text} {
			out := f(in)
			if len(out) > MaxText+32 {
				t.Errorf("%s: %d bytes out of %d", name, len(out), len(in))
			}
			if strings.ContainsAny(out, "\r\n\x00\x1b") {
				t.Errorf("%s: raw control character in %q", name, out[:40])
			}
			if !strings.HasSuffix(out, "...("+strconv.Itoa(len(in))+" bytes)") {
				t.Errorf("%s: no length note: %q", name, out[len(out)-40:])
			}
		}
	}
	if got := String(strings.Repeat("é", 150)); len(got) > Max+2+20 || !strings.HasPrefix(got, `"éé`) {
		t.Errorf("String cut inside a character or too long: %q", got)
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"mx1.example.org", "mx1.example.org"},
		{"_25._tcp.mx.example.", "_25._tcp.mx.example."},
		{"*.example", "*.example"},
		{"", `""`},
		{"a b", `"a b"`},
		{"x: verified", `"x: verified"`},
		{"a\r\nb.example", `"a\r\nb.example"`},
	} {
		if got := Name(tc.in); got != tc.want {
			t.Errorf("Name(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`dane: "x": tlsa`, `dane: "x": tlsa`},
		{"550 no\r\nRCPT TO:<x>", `550 no\r\nRCPT TO:<x>`},
		{"a\x00\x1b[0m\x7f\xff", `a\x00\x1b[0m\x7f\xff`},
	} {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if got := Text(Text(tc.in)); got != Text(tc.in) {
			t.Errorf("Text is not idempotent on %q: %s", tc.in, got)
		}
	}
}

// wordedJoin has parts but words them itself: Err keeps its wording.
type wordedJoin []error

func (w wordedJoin) Error() string   { return "both: " + w[0].Error() + " and\n" + w[1].Error() }
func (w wordedJoin) Unwrap() []error { return w }

func TestErr(t *testing.T) {
	t.Parallel()
	a, b, c := errors.New("a"), errors.New("b\nforged: line"), errors.New("c")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", a, "a"},
		{"a line break inside an error is escaped", b, `b\nforged: line`},
		{"errors.Join parts are joined by semicolons", errors.Join(a, b, c), `a; b\nforged: line; c`},
		{"nested joins", errors.Join(a, errors.Join(c, a)), "a; c; a"},
		{"a join of one is that error", errors.Join(b), `b\nforged: line`},
		{"a join inside a wrap is text", fmt.Errorf("w: %w", errors.Join(a, c)), `w: a\nc`},
		{"a join under a wrap, wrapped in a join", errors.Join(a, fmt.Errorf("w: %w", errors.Join(a, c))), `a; w: a\nc`},
		{"an error with its own wording keeps it", wordedJoin{a, c}, `both: a and\nc`},
	} {
		if got := Err(tc.err); got != tc.want {
			t.Errorf("%s: Err = %s, want %s", tc.name, got, tc.want)
		}
	}
	// Bounded as Text is, however many parts.
	parts := make([]error, 1000)
	for i := range parts {
		parts[i] = errors.New(strings.Repeat("x", 100))
	}
	if got := Err(errors.Join(parts...)); len(got) > MaxText+32 {
		t.Errorf("Err of a 1000-part join is %d bytes, want at most %d", len(got), MaxText+32)
	}
}
