package smtptls_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// slog handler.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPolicyWarningsLoggedOnce: a policy's lint warnings are logged when
// the policy is fetched, not once per message (issue 13 point 11).
func TestPolicyWarningsLoggedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	z := w.zone("lint.test", false)
	w.mx("mx.lint.test")
	z.MustAdd("@ MX 10 mx.lint.test.", `_mta-sts 300 IN TXT "v=STSv1; id=1"`)
	// "nmx" is a typo of "mx" that Lint flags (WarnUnknownKey).
	w.SetPolicy("lint.test", smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: mx.lint.test\nnmx: mx2.lint.test\n"})
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for _, c := range []struct {
		name string
		ev   *smtptls.Evaluator
	}{
		// The default client shares the Evaluator's Logger.
		{"default client", &smtptls.Evaluator{Resolver: w.Resolver(), Roots: w.CA().Pool(), DialContext: w.DialContext, Logger: log}},
		{"own client", &smtptls.Evaluator{Resolver: w.Resolver(), Roots: w.CA().Pool(), Logger: log,
			STS: &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: log}}},
	} {
		buf.mu.Lock()
		buf.b.Reset()
		buf.mu.Unlock()
		for range 3 {
			d, err := c.ev.Evaluate(ctx, "lint.test")
			if err != nil {
				t.Fatal(err)
			}
			if len(d.STS.Warnings) != 1 {
				t.Fatalf("%s: warnings %v", c.name, d.STS.Warnings)
			}
		}
		if n := strings.Count(buf.String(), `nmx`); n != 1 {
			t.Errorf("%s: the warning was logged %d times over 3 messages, want once:\n%s", c.name, n, buf.String())
		}
	}
}

// TestCheckReturnsWithoutLogging: Check returns its error and leaves
// logging it to the caller (issue 13 point 11).
func TestCheckReturnsWithoutLogging(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	ev := &smtptls.Evaluator{
		Resolver:   &resolver.Stub{Servers: []string{"192.0.2.53:53"}},
		DisableSTS: true,
		Logger:     slog.New(slog.NewTextHandler(&buf, nil)),
	}
	if err := ev.Check(context.Background()); !errors.Is(err, smtptls.ErrDANEUnavailable) {
		t.Fatalf("Check = %v, want ErrDANEUnavailable", err)
	}
	if s := buf.String(); s != "" {
		t.Errorf("Check logged its error as well as returning it:\n%s", s)
	}
}
