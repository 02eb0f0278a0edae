package deliver_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// benchWorld is a DANE-EE domain on loopback, a warm Client (one delivery
// done: DNS, DANE verifier cached) and the bare session's parameters.
func benchWorld(b *testing.B) (c *deliver.Client, bare func() error, m func() *deliver.Message) {
	w := smtptlstest.New(b)
	d := w.AddDomain("bench.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	c = w.Client()
	c.Reports = &tlsrpt.Aggregator{}
	c.Logger = slog.New(slog.DiscardHandler)
	body := "From: a@sender.test\r\nSubject: bench\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 64)
	m = func() *deliver.Message {
		return &deliver.Message{From: "a@sender.test", To: []string{"b@bench.test"}, Body: strings.NewReader(body), Size: int64(len(body))}
	}
	ctx := context.Background()
	res, err := c.Deliver(ctx, m())
	if err != nil || res.Rcpts[0].Status != deliver.Delivered {
		b.Fatalf("warm-up: %v %+v", err, res)
	}
	addr := net.JoinHostPort(res.Addr.String(), "25")
	bare = func() error {
		// No policy: encrypt, verify nothing (what an MTA without DANE or
		// MTA-STS does), same server, same message, same client code.
		cfg := &tls.Config{InsecureSkipVerify: true, ServerName: d.MX[0].Host()}
		return deliver.BareSession(ctx, w.DialContext, addr, cfg, "client.smtptlstest.invalid", m())
	}
	return c, bare, m
}

// BenchmarkDeliverWarm is one warm delivery through Client.Deliver:
// cached evaluation, DANE-verified STARTTLS, TLS-RPT recording.
func BenchmarkDeliverWarm(b *testing.B) {
	c, _, m := benchWorld(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Deliver(ctx, m())
		if err != nil || res.Rcpts[0].Status != deliver.Delivered {
			b.Fatalf("%v %+v", err, res.Rcpts)
		}
	}
}

// BenchmarkBareSession is the same session with no policy work.
func BenchmarkBareSession(b *testing.B) {
	_, bare, _ := benchWorld(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := bare(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliverVsBare interleaves the two, one of each per iteration,
// and reports the median of each and the ratio of the medians (the cost of
// the policy work: target at most 1.1).
func BenchmarkDeliverVsBare(b *testing.B) {
	c, bare, m := benchWorld(b)
	ctx := context.Background()
	var full, base []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if res, err := c.Deliver(ctx, m()); err != nil || res.Rcpts[0].Status != deliver.Delivered {
			b.Fatalf("%v %+v", err, res.Rcpts)
		}
		t1 := time.Now()
		if err := bare(); err != nil {
			b.Fatal(err)
		}
		full, base = append(full, t1.Sub(t0)), append(base, time.Since(t1))
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	mf, mb := median(full), median(base)
	b.ReportMetric(float64(mf.Microseconds()), "deliver-µs")
	b.ReportMetric(float64(mb.Microseconds()), "bare-µs")
	b.ReportMetric(float64(mf)/float64(mb), "ratio")
	b.ReportMetric(0, "ns/op")
}
