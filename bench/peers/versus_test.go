package peers

import (
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	moxdane "github.com/mjl-/mox/dane"
	moxdns "github.com/mjl-/mox/dns"
	moxmtasts "github.com/mjl-/mox/mtasts"
	moxtlsrpt "github.com/mjl-/mox/tlsrpt"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/tlsrpt"
	"github.com/smtptls/smtptls/tlsverify"
)

// versusOp is one operation both implementations perform, on the same
// input as the per-side benchmarks: each function runs it once and
// reports whether the result is the expected one.
type versusOp struct {
	name      string
	ours, mox func() bool
}

// versusOps lists the operations BenchmarkVersus compares. Each pair
// does the same work as the corresponding pair of the per-side
// benchmarks (BenchmarkMatch/smtptls-preparsed against
// BenchmarkMatch/mox-preparsed, and so on).
func versusOps(tb testing.TB) []versusOp {
	ours, err := mtasts.ParsePolicy([]byte(benchPolicy))
	if err != nil {
		tb.Fatal(err)
	}
	theirs, err := moxmtasts.ParsePolicy(benchPolicy)
	if err != nil {
		tb.Fatal(err)
	}
	body, large := []byte(benchPolicy), benchPolicyLarge()
	largeBody := []byte(large)
	ops := []versusOp{
		{"ParseRecord",
			func() bool { _, err := mtasts.ParseRecord(benchRecord); return err == nil },
			func() bool { _, _, err := moxmtasts.ParseRecord(benchRecord); return err == nil }},
		{"ParsePolicy",
			func() bool { _, err := mtasts.ParsePolicy(body); return err == nil },
			func() bool { _, err := moxmtasts.ParsePolicy(benchPolicy); return err == nil }},
		{"ParsePolicyLarge",
			func() bool { _, err := mtasts.ParsePolicy(largeBody); return err == nil },
			func() bool { _, err := moxmtasts.ParsePolicy(large); return err == nil }},
		{"TLSRPTParseRecord",
			func() bool { _, err := tlsrpt.ParseRecord(benchTLSRPT); return err == nil },
			func() bool { _, _, err := moxtlsrpt.ParseRecord(benchTLSRPT); return err == nil }},
	}
	for _, m := range []struct {
		name string
		host string
		want bool
	}{{"Match", benchHit, true}, {"MatchMiss", benchMiss, false}} {
		host, want := m.host, m.want
		oursHost, err := mtasts.ParseHostName(host)
		if err != nil {
			tb.Fatal(err)
		}
		moxHost, err := moxdns.ParseDomainLax(host)
		if err != nil {
			tb.Fatal(err)
		}
		ops = append(ops,
			versusOp{m.name,
				func() bool { return ours.Match(host) == want },
				func() bool {
					d, err := moxdns.ParseDomainLax(strings.TrimSuffix(host, "."))
					return err == nil && theirs.Matches(d) == want
				}},
			versusOp{m.name + "Preparsed",
				func() bool { return ours.MatchHost(oursHost) == want },
				func() bool { return theirs.Matches(moxHost) == want }})
	}
	chain := newChain(tb)
	cs := tls.ConnectionState{PeerCertificates: chain}
	host := moxdns.Domain{ASCII: benchHost}
	names := []string{benchHost}
	for _, d := range []struct {
		name   string
		record func(chain []*x509.Certificate) tlsverify.TLSA
	}{
		{"DANE311", func(c []*x509.Certificate) tlsverify.TLSA { return spkiSHA256(tlsverify.DANEEE, c[0]) }},
		{"DANE211", func(c []*x509.Certificate) tlsverify.TLSA { return spkiSHA256(tlsverify.DANETA, c[1]) }},
		{"DANE211Root", func(c []*x509.Certificate) tlsverify.TLSA { return spkiSHA256(tlsverify.DANETA, c[2]) }},
	} {
		recs := []tlsverify.TLSA{d.record(chain)}
		moxRecs := moxUsable(moxRecords(recs))
		if len(moxRecs) != 1 {
			tb.Fatal("mox finds the record unusable")
		}
		mox := func() bool {
			ok, _, _ := moxdane.Verify(discard, moxRecs, cs, host, nil, nil)
			return ok
		}
		reused := &tlsverify.DANE{Records: recs, Names: names}
		ops = append(ops,
			versusOp{d.name, func() bool {
				_, err := (&tlsverify.DANE{Records: recs, Names: names}).VerifyChain(chain)
				return err == nil
			}, mox},
			versusOp{d.name + "Reused", func() bool {
				_, err := reused.VerifyChain(chain)
				return err == nil
			}, mox})
	}
	return ops
}

// Parameters of BenchmarkVersus.
const (
	// versusBatch is the time one batch of one side should take: long
	// enough for the clock, short enough that a scheduling stall of the
	// shared machine spoils few batches.
	versusBatch = time.Millisecond
	// versusMinRounds is the fewest rounds whose medians are compared.
	versusMinRounds = 10
)

// BenchmarkVersus runs each operation of smtptls and of mox interleaved:
// every iteration is one round, a batch of smtptls then a batch of mox
// (the other way round in odd rounds), so that the load of a shared
// machine hits both sides alike. Each batch is the same number of
// operations, sized so that smtptls's takes about versusBatch. It reports
// the median time per operation of each side over the rounds, and x-mox,
// smtptls's median over mox's (below 1: smtptls is faster; the target is
// at most 1.1 for every operation). At least versusMinRounds rounds must
// run (the default -benchtime gives hundreds). Run
//
//	go test -run '^$' -bench Versus -count 10
//
// for ten runs, and take the median x-mox of each operation.
func BenchmarkVersus(b *testing.B) {
	for _, op := range versusOps(b) {
		b.Run(op.name, func(b *testing.B) {
			if !op.ours() || !op.mox() {
				b.Fatal("wrong result: the two sides would not do the same work")
			}
			n := batchSize(op.ours)
			run := func(f func() bool) float64 {
				start := time.Now()
				for range n {
					if !f() {
						b.Fatal("wrong result")
					}
				}
				return float64(time.Since(start)) / float64(n)
			}
			var ours, theirs []float64
			for b.Loop() {
				if len(ours)%2 == 0 {
					ours = append(ours, run(op.ours))
					theirs = append(theirs, run(op.mox))
				} else {
					theirs = append(theirs, run(op.mox))
					ours = append(ours, run(op.ours))
				}
			}
			if len(ours) < versusMinRounds {
				b.Fatalf("%d rounds, want at least %d: raise -benchtime", len(ours), versusMinRounds)
			}
			mo, mm := medianOf(ours), medianOf(theirs)
			b.ReportMetric(mo, "smtptls-ns/op")
			b.ReportMetric(mm, "mox-ns/op")
			b.ReportMetric(mo/mm, "x-mox")
			b.ReportMetric(float64(len(ours)), "rounds")
			b.ReportMetric(0, "ns/op") // a round's time says nothing
		})
	}
}

// batchSize returns how many runs of f take about versusBatch.
func batchSize(f func() bool) int {
	for n := 1; ; n *= 2 {
		start := time.Now()
		for range n {
			f()
		}
		if d := time.Since(start); d >= versusBatch/4 || n >= 1<<24 {
			return max(1, int(float64(n)*float64(versusBatch)/float64(max(d, 1))))
		}
	}
}

// medianOf returns the median of xs (the upper one of an even count).
func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
