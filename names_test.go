package smtptls_test

import (
	"context"
	"errors"
	"testing"

	"github.com/smtptls/smtptls"
)

// TestEvaluateInvalidName checks that a domain or relay host that is not a
// mail domain is refused with KindInvalidDomain before any lookup, never
// rewritten into another name (invalid UTF-8 used to become the A-label of
// U+FFFD) nor taken for a host when it spells an address.
func TestEvaluateInvalidName(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ev := w.evaluator()
	for _, name := range []string{
		"\xff\xfe.example",   // invalid UTF-8: was xn--zn7ca.example
		"bücher\xff.example", // invalid UTF-8 beside a U-label
		"127.1",              // inet_aton reads 127.0.0.1: was a name
		"x.1.2.3.4",          // all-numeric top-level label: was a name
		"-mx.example",        // RFC 5321 4.1.2: was a name
		"a b.example",
		"example.com..",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for what, eval := range map[string]func() (*smtptls.Decision, error){
				"Evaluate":      func() (*smtptls.Decision, error) { return ev.Evaluate(context.Background(), name) },
				"EvaluateRelay": func() (*smtptls.Decision, error) { return ev.EvaluateRelay(context.Background(), name, 25) },
			} {
				d, err := eval()
				var e *smtptls.Error
				if d != nil || !errors.As(err, &e) || e.Kind != smtptls.KindInvalidDomain {
					t.Errorf("%s(%q) = %v, %v; want KindInvalidDomain", what, name, d, err)
				}
			}
		})
	}
}
