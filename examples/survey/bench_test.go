package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

var (
	tpDomains = flag.Int("tp-domains", 2000, "domains per pass of BenchmarkThroughput")
	tpConc    = flag.Int("tp-conc", 32, "concurrency of BenchmarkThroughput (survey and bare client)")
)

// tpWorld is the throughput World: n domains in one signed zone, each
// with its own MX host, address and TLSA record, and nothing else, so
// that a survey of one domain asks exactly six questions: MX, the
// _mta-sts and _smtp._tls TXT records, then A and AAAA of the host, then
// its TLSA records.
func tpWorld(b *testing.B, n int) (*smtptlstest.World, []string) {
	w := smtptlstest.New(b)
	z := w.AddZone("tp.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	var zb strings.Builder
	domains := make([]string, n)
	for i := range n {
		d := label(i)
		fmt.Fprintf(&zb, "%s MX 10 mx.%s\nmx.%s A 192.0.2.1\n_25._tcp.mx.%s TLSA 3 1 1 %s\n", d, d, d, d, digest)
		domains[i] = d + ".tp.test"
	}
	z.MustAdd(zb.String())
	return w, domains
}

// bareQuestions are the questions a survey of domain asks, in the rounds
// in which they depend on each other.
func bareQuestions(domain string) [][]dns.Question {
	q := func(name string, t uint16) dns.Question {
		return dns.Question{Name: name + ".", Qtype: t, Qclass: dns.ClassINET}
	}
	mx := "mx." + domain
	return [][]dns.Question{
		{q(domain, dns.TypeMX), q("_mta-sts."+domain, dns.TypeTXT), q("_smtp._tls."+domain, dns.TypeTXT)},
		{q(mx, dns.TypeA), q(mx, dns.TypeAAAA)},
		{q("_25._tcp."+mx, dns.TypeTLSA)},
	}
}

// bareSurvey sends the questions of every domain with a bare miekg/dns
// client, conc domains at a time and each round's questions at once, as
// the survey does, with the flags a Stub sets (RD, AD, DO).
func bareSurvey(ctx context.Context, server string, domains []string, conc int) error {
	c := &dns.Client{Timeout: 30 * time.Second}
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(domains) {
					return
				}
				for _, round := range bareQuestions(domains[i]) {
					var rw sync.WaitGroup
					for _, q := range round {
						rw.Go(func() {
							m := new(dns.Msg)
							m.SetQuestion(q.Name, q.Qtype)
							m.RecursionDesired, m.AuthenticatedData = true, true
							m.SetEdns0(1232, true)
							r, _, err := c.ExchangeContext(ctx, m, server)
							if err == nil && r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
								err = fmt.Errorf("%s: %s", q.Name, dns.RcodeToString[r.Rcode])
							}
							if err != nil {
								mu.Lock()
								firstErr = cmpOr(firstErr, err)
								mu.Unlock()
							}
						})
					}
					rw.Wait()
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// BenchmarkThroughput surveys the same domains with -trust-ad (the Stub,
// trusting the AD bit of the World's validating front) and with a bare
// miekg/dns client that sends the same questions at the same concurrency
// to the same resolver, one pass of each per iteration, interleaved so
// that the machine's load hits both alike. It reports the median rate of
// each and the ratio of the medians (target: at least 0.5), and the
// queries per domain each sent.
func BenchmarkThroughput(b *testing.B) {
	w, domains := tpWorld(b, *tpDomains)
	dir := b.TempDir()
	list := filepath.Join(dir, "list")
	if err := os.WriteFile(list, []byte(strings.Join(domains, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// A first pass lets the World sign every RRset, as real zones are
	// signed in advance.
	if err := bareSurvey(ctx, w.DNSAddr(), domains, *tpConc); err != nil {
		b.Fatal(err)
	}
	args := []string{"-resolver", w.DNSAddr(), "-trust-ad", "-concurrency", fmt.Sprint(*tpConc), "-out", filepath.Join(dir, "out.jsonl"), list}
	hk := hooks{dial: w.DialContext, queryTimeout: 30 * time.Second}
	var surveyRate, bareRate []float64
	var surveyQ, bareQ int64
	n := float64(len(domains))
	for b.Loop() {
		q0, t0 := w.QueryCount(), time.Now()
		if code := run(ctx, args, nil, io.Discard, io.Discard, hk); code != 0 {
			b.Fatalf("survey: exit %d", code)
		}
		q1, t1 := w.QueryCount(), time.Now()
		if err := bareSurvey(ctx, w.DNSAddr(), domains, *tpConc); err != nil {
			b.Fatal(err)
		}
		surveyRate = append(surveyRate, n/t1.Sub(t0).Seconds())
		bareRate = append(bareRate, n/time.Since(t1).Seconds())
		surveyQ, bareQ = q1-q0, w.QueryCount()-q1
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	ms, mb := median(surveyRate), median(bareRate)
	b.ReportMetric(ms, "survey-domains/s")
	b.ReportMetric(mb, "bare-domains/s")
	b.ReportMetric(ms/mb, "ratio")
	b.ReportMetric(float64(surveyQ)/n, "survey-queries/domain")
	b.ReportMetric(float64(bareQ)/n, "bare-queries/domain")
	b.ReportMetric(0, "ns/op")
}

// heapObjects is the heap metric sampled: bytes of live and not yet
// swept objects, read without stopping the world.
const heapObjects = "/memory/classes/heap/objects:bytes"

// envChild makes the test binary run the survey command instead of the
// tests, with the arguments after "--", and report its peak heap on the
// last line of stderr: BenchmarkMemory measures the survey alone, apart
// from the World that serves it.
const envChild = "SURVEY_BENCH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "1" {
		os.Exit(m.Run())
	}
	args := os.Args[slices.Index(os.Args, "--")+1:]
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		s := []metrics.Sample{{Name: heapObjects}}
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	hk := hooks{queryTimeout: 30 * time.Second, lookupTimeout: 2 * time.Minute}
	code := run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr, hk)
	close(stop)
	wg.Wait()
	fmt.Fprintf(os.Stderr, "peak-heap %d\n", peak.Load())
	os.Exit(code)
}
