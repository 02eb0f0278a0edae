package e2e_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
)

var (
	procDomainsFlag = flag.Int("proc-domains", 2000, "distinct domains of BenchmarkColdCPU, served by a child process")
	procConcFlag    = flag.Int("proc-conc", 64, "concurrent Evaluate calls of BenchmarkColdCPU")
	procFloorFlag   = flag.Bool("proc-floor", true, "measure BenchmarkColdCPU's floors (false: the library alone, for -cpuprofile)")
)

// Targets of the library's CPU per cold domain (issue 16).
const (
	coldTargetStub       = 500 * time.Microsecond
	coldTargetValidating = 1200 * time.Microsecond
)

// BenchmarkColdCPU measures the CPU the library spends per cold domain,
// with the test World in another process (procworld_test.go): the
// parent's own user and system time (getrusage RUSAGE_SELF, every thread,
// the garbage collector included) while it evaluates the load World's
// domains (-proc-domains, a quarter each DANE, MTA-STS enforce, both and
// neither; two MX hosts each) with -proc-conc workers through one fresh
// Evaluator, as an MTA builds one: the default resolver.Cache over a Stub
// or a Validating, the default MTA-STS client and policy cache. The
// child's DNS answers, signatures and TLS server work are not counted.
//
// In the same run it measures the floor of that work, in the same
// process with the same workers:
//
//   - dns: the very queries the library sent (the child records them),
//     sent again by a bare miekg/dns client, each worker over one
//     connected UDP socket (a truncated answer's TCP retry over a new
//     TCP connection, as recorded), each answer unpacked;
//   - fetch: for each policy the library fetched, one TCP connection,
//     TLS handshake (certificate chain verified against the World's
//     root) and HTTP/1.1 GET with net/http's defaults;
//   - signatures (Validating): as many ECDSA P-256 signature checks
//     (ecdsa.VerifyASN1 of a hash, key and signature decoded: the
//     World signs with algorithm 13) as the Validating made
//     (Validating.Stats), the cryptography the validator cannot avoid.
//
// It reports lib-us/domain (the library's CPU per domain),
// floor-us/domain (dns + fetch + signatures), x-floor (their ratio),
// x-target (against 0.5 ms with the Stub, 1.2 ms with Validating),
// domains/s/core (one second over the library's CPU per domain),
// queries/domain and sigs/domain. Run
//
//	go test -run '^$' -bench ColdCPU ./internal/e2e
//	go test -run '^$' -bench ColdCPU/Stub -proc-floor=false -cpuprofile cpu.out ./internal/e2e
//
// (the profile then holds the library's work alone, and the child's
// start-up, which is not the parent's).
func BenchmarkColdCPU(b *testing.B) {
	if _, ok := cpuTime(); !ok {
		b.Skip("no getrusage on this platform")
	}
	n, conc := *procDomainsFlag, *procConcFlag
	start := time.Now()
	pw := startProcWorld(b, n)
	b.Logf("child World of %d domains ready in %v", n, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	for _, rc := range []struct {
		name       string
		validating bool
		target     time.Duration
	}{
		{"Stub", false, coldTargetStub},
		{"Validating", true, coldTargetValidating},
	} {
		b.Run(rc.name, func(b *testing.B) {
			// A first small pass warms the process (code paths, the
			// runtime's pools and heap size) so that one-off costs are
			// not charged to the domains measured.
			warm, _ := pw.evaluator(rc.validating)
			if err := runCold(ctx, warm, min(n, 4*conc), conc); err != nil {
				b.Fatal(err)
			}
			var lib, dnsFloor, fetchFloorCPU, sigFloorCPU time.Duration
			var domains, queries, fetches, sigs int
			for b.Loop() {
				b.StopTimer()
				if err := pw.reset(); err != nil {
					b.Fatal(err)
				}
				ev, val := pw.evaluator(rc.validating)
				runtime.GC()
				b.StartTimer()
				c0, _ := cpuTime()
				err := runCold(ctx, ev, n, conc)
				c1, _ := cpuTime()
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				lib += c1 - c0
				domains += n
				qs, err := pw.queries()
				if err != nil {
					b.Fatal(err)
				}
				queries += len(qs)
				pds := policyDomains(n)
				fetches += len(pds)
				nsigs := 0
				if val != nil {
					nsigs = int(val.Stats().Verifications)
					sigs += nsigs
				}
				if *procFloorFlag {
					msgs, err := floorQueries(qs)
					if err != nil {
						b.Fatal(err)
					}
					for _, f := range []struct {
						sum *time.Duration
						run func() error
					}{
						{&dnsFloor, func() error { return replayDNS(ctx, pw.info.DNS, msgs, conc) }},
						{&fetchFloorCPU, func() error { return fetchFloor(ctx, pw, pds, conc) }},
						{&sigFloorCPU, func() error { return sigFloor(nsigs, conc) }},
					} {
						d, err := measureCPU(f.run)
						if err != nil {
							b.Fatal(err)
						}
						*f.sum += d
					}
				}
				b.StartTimer()
			}
			perDomain := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(domains) }
			b.ReportMetric(perDomain(lib), "lib-us/domain")
			b.ReportMetric(1e6/perDomain(lib), "domains/s/core")
			b.ReportMetric(float64(lib)/float64(domains)/float64(rc.target), "x-target")
			b.ReportMetric(float64(queries)/float64(domains), "queries/domain")
			if rc.validating {
				b.ReportMetric(float64(sigs)/float64(domains), "sigs/domain")
			}
			if *procFloorFlag {
				floor := dnsFloor + fetchFloorCPU + sigFloorCPU
				b.ReportMetric(perDomain(dnsFloor), "dnsfloor-us/domain")
				b.ReportMetric(perDomain(fetchFloorCPU), "fetchfloor-us/domain")
				if rc.validating {
					b.ReportMetric(perDomain(sigFloorCPU), "sigfloor-us/domain")
				}
				b.ReportMetric(perDomain(floor), "floor-us/domain")
				b.ReportMetric(float64(lib)/float64(floor), "x-floor")
				b.Logf("%d domains, %d queries, %d policy fetches, %d signature checks: library %v CPU, floor %v (DNS %v, fetch %v, signatures %v)",
					domains, queries, fetches, sigs, lib.Round(time.Millisecond), floor.Round(time.Millisecond),
					dnsFloor.Round(time.Millisecond), fetchFloorCPU.Round(time.Millisecond), sigFloorCPU.Round(time.Millisecond))
			}
		})
	}
}

// measureCPU returns the process's CPU time spent in f, after a
// collection so that earlier garbage is not charged to it.
func measureCPU(f func() error) (time.Duration, error) {
	runtime.GC()
	c0, _ := cpuTime()
	err := f()
	c1, _ := cpuTime()
	return c1 - c0, err
}

// runCold evaluates load domains 0..n-1 with conc workers through ev and
// checks every decision: each level right, and each MTA-STS policy
// fetched during the run (nothing was cached). It returns the first
// failure, with the number of failures.
func runCold(ctx context.Context, ev *smtptls.Evaluator, n, conc int) error {
	var (
		next  atomic.Int64
		fails atomic.Int64
		first error
		mu    sync.Mutex
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		if fails.Add(1) == 1 {
			mu.Lock()
			first = err
			mu.Unlock()
		}
	}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				dec, err := ev.Evaluate(ctx, loadDomain(i))
				if err == nil {
					err = checkLoadDecision(dec, i)
				}
				if err == nil && isPolicyDomain(i) && (dec.STS == nil || dec.STS.Source != mtasts.SourceFetch) {
					err = fmt.Errorf("%s: MTA-STS policy not fetched: %+v", dec.Domain, dec.STS)
				}
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	if k := fails.Load(); k > 0 {
		return fmt.Errorf("%d of %d evaluations failed; first: %w", k, n, first)
	}
	return nil
}

// isPolicyDomain reports whether loadDomain(i) publishes an MTA-STS
// policy (loadWorld).
func isPolicyDomain(i int) bool { return i%4 == 1 || i%4 == 2 }

// policyDomains returns the load domains below n that publish a policy.
func policyDomains(n int) []string {
	var ds []string
	for i := range n {
		if isPolicyDomain(i) {
			ds = append(ds, loadDomain(i))
		}
	}
	return ds
}

// floorQuery is one query of the DNS floor.
type floorQuery struct {
	msg *dns.Msg
	tcp bool
}

// floorQueries unpacks the recorded queries, outside the measurement:
// the library packs its own queries, the floor client packs these again.
func floorQueries(qs []procQuery) ([]floorQuery, error) {
	out := make([]floorQuery, len(qs))
	for i, q := range qs {
		m := new(dns.Msg)
		if err := m.Unpack(q.Wire); err != nil {
			return nil, fmt.Errorf("recorded query %d: %w", i, err)
		}
		out[i] = floorQuery{m, q.TCP}
	}
	return out, nil
}

// replayDNS sends qs to addr with a bare miekg/dns client and conc
// workers, each over one connected UDP socket; a query recorded over TCP
// goes over a new TCP connection. Every query must be answered.
func replayDNS(ctx context.Context, addr string, qs []floorQuery, conc int) error {
	var (
		next  atomic.Int64
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			udp := &dns.Client{Net: "udp", Timeout: loadQueryTimeout}
			tcp := &dns.Client{Net: "tcp", Timeout: loadQueryTimeout}
			conn, err := udp.DialContext(ctx, addr)
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(qs) {
					return
				}
				q := qs[i]
				q.msg.Id = dns.Id()
				var r *dns.Msg
				if q.tcp {
					r, _, err = tcp.ExchangeContext(ctx, q.msg, addr)
				} else {
					r, _, err = udp.ExchangeWithConnContext(ctx, q.msg, conn)
				}
				if err == nil && r.Rcode == dns.RcodeServerFailure {
					err = errors.New("SERVFAIL")
				}
				if err != nil {
					fail(fmt.Errorf("%s %s: %w", q.msg.Question[0].Name, dns.TypeToString[q.msg.Question[0].Qtype], err))
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// fetchFloor fetches the policy of each of domains from the child's
// MTA-STS server with net/http's defaults and conc workers: a new
// connection per fetch (no keep-alive), TLS with the certificate chain
// verified against the World's root, HTTP/1.1 GET, the body read.
func fetchFloor(ctx context.Context, pw *procWorld, domains []string, conc int) error {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", pw.info.HTTPS)
		},
		TLSClientConfig:   &tls.Config{RootCAs: pw.roots},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: loadQueryTimeout}
	var (
		next  atomic.Int64
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(domains) {
					return
				}
				if err := fetchOne(ctx, hc, domains[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func fetchOne(ctx context.Context, hc *http.Client, domain string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://mta-sts."+domain+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		return fmt.Errorf("%s: status %d, %d bytes", domain, resp.StatusCode, len(body))
	}
	return nil
}

// sigFloor makes n ECDSA P-256 signature checks with conc workers: a
// valid signature over a SHA-256 hash, key and signature decoded in
// advance, as the floor of a validator's cryptography.
func sigFloor(n, conc int) error {
	if n == 0 {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte("signature floor"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return err
	}
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		return errors.New("signature floor: a valid signature did not verify")
	}
	return nil
}
