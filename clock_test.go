package smtptls_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// These tests stay in the root package: TestEvaluatorClockDefaults uses
// PointDefaults from export_test.go.

var clockLog = slog.New(slog.DiscardHandler)

// testClock is a settable clock, safe for concurrent use.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// TestEvaluatorClockCertificate: the verifiers an Evaluator builds check
// certificate validity with its Now. A year ahead, the MX hosts'
// certificates (90 days) are expired: a DANE-TA(2) host and an operator
// "verify" (WebPKI) host then fail with certificate-expired; on the real
// clock both deliver.
func TestEvaluatorClockCertificate(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddDomain("ta.test", smtptlstest.Scenario{DANE: smtptlstest.DANETrustAnchor})
	w.AddDomain("verify.test", smtptlstest.Scenario{})
	yearAhead := func() time.Time { return time.Now().Add(365 * 24 * time.Hour) }
	for _, tc := range []struct {
		domain string
		level  smtptls.Level
	}{
		{"ta.test", smtptls.DANE},
		{"verify.test", smtptls.PKIX},
	} {
		for _, clock := range []struct {
			name string
			now  func() time.Time
			want tlsrpt.ResultType
		}{
			{"real-clock", nil, ""},
			{"year-ahead", yearAhead, tlsrpt.CertificateExpired},
		} {
			t.Run(tc.domain+"/"+clock.name, func(t *testing.T) {
				t.Parallel()
				ev := &smtptls.Evaluator{
					Resolver:   w.Resolver(),
					DisableSTS: true,
					Roots:      w.CA().Pool(),
					Overrides:  map[string]smtptls.Override{"verify.test": {Mode: smtptls.OverrideVerify}},
					Now:        clock.now,
					Logger:     clockLog,
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				d, err := ev.Evaluate(ctx, tc.domain)
				if err != nil {
					t.Fatal(err)
				}
				h := d.Deliverable()
				if len(h) == 0 || h[0].Level != tc.level {
					t.Fatalf("hosts %v, want one of level %v", d.Hosts, tc.level)
				}
				o := smtptlstest.Send(ctx, w.DialContext, h[0], 0, smtptls.Attempt{},
					smtptlstest.Message{From: "a@sender.test", To: []string{"b@" + tc.domain}, Data: []byte("Subject: clock\r\n\r\nhi\r\n")})
				if o.Result != clock.want || o.Delivered != (clock.want == "") {
					t.Errorf("delivered %v, result %q (err %v); want result %q", o.Delivered, o.Result, o.Err, clock.want)
				}
			})
		}
	}
}

// TestEvaluatorClockDefaults: the resolver and MTA-STS client an Evaluator
// builds by default follow its Now.
func TestEvaluatorClockDefaults(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddDomain("sts.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Signature validity: a year ahead, every RRSIG of the World has
	// expired, and the default resolver.Validating says Bogus.
	t.Run("signature-validity", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			now   func() time.Time
			bogus bool
		}{
			{"real-clock", nil, false},
			{"year-ahead", func() time.Time { return time.Now().Add(365 * 24 * time.Hour) }, true},
		} {
			ev := &smtptls.Evaluator{DisableSTS: true, Now: tc.now, Logger: clockLog}
			ev.PointDefaults([]string{w.DNSAddr()}, w.Anchors(), nil)
			_, err := ev.Evaluate(ctx, "sts.test")
			re, ok := errors.AsType[*resolver.Error](err)
			if bogus := ok && re.Kind == resolver.KindBogus; bogus != tc.bogus {
				t.Errorf("%s: Evaluate error %v, want bogus %v", tc.name, err, tc.bogus)
			}
		}
	})

	// Cache TTL and MTA-STS policy expiry: the default resolver.Cache
	// answers again from memory until its clock passes the TTLs, and the
	// default MTA-STS client keeps its cached policy (max_age 7 days)
	// until its clock passes max_age, then fetches again.
	t.Run("cache-expiry", func(t *testing.T) {
		var clock testClock
		ev := &smtptls.Evaluator{Roots: w.CA().Pool(), Now: clock.Now, Logger: clockLog}
		ev.PointDefaults([]string{w.DNSAddr()}, w.Anchors(), w.HTTPClient())
		evaluate := func(what string, wantFetches int) {
			t.Helper()
			d, err := ev.Evaluate(ctx, "sts.test")
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if d.STSPolicy() == nil {
				t.Fatalf("%s: no MTA-STS policy", what)
			}
			if n := w.PolicyFetches("sts.test"); n != wantFetches {
				t.Errorf("%s: %d policy fetches, want %d", what, n, wantFetches)
			}
		}
		evaluate("first", 1)
		queries := w.QueryCount()
		evaluate("cached", 1)
		if n := w.QueryCount(); n != queries {
			t.Errorf("cached: %d DNS queries, want none", n-queries)
		}
		// Eight days on: within the signatures' lifetime, past every TTL
		// and past max_age.
		clock.Advance(8 * 24 * time.Hour)
		evaluate("eight days on", 2)
		if n := w.QueryCount(); n == queries {
			t.Error("eight days on: no DNS queries; the resolver cache ignored the clock")
		}
	})
}
