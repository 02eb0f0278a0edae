// Command survey measures DANE and MTA-STS deployment over a list of mail
// domains, with the decisions smtptls makes for them, as the field's
// surveys do: how many domains are DNSSEC-signed, protect their MX hosts
// with DANE (fully or partly), publish an MTA-STS policy, which of them
// rank high on a popularity list, and which providers serve them.
//
//	go run ./examples/survey [flags] LIST
//	go run ./examples/survey -merge [flags] FILE.jsonl...
//
// LIST is a file (or - for standard input) with one domain per line, or
// "rank,domain" lines (the Tranco CSV format). Blank lines and lines
// starting with # are ignored; any other line that is not a valid mail
// domain (or whose rank is not a positive integer) is reported on stderr
// with its line number and skipped. The list is read as a stream: memory
// grows with -concurrency and the summary's lists, not with the list.
//
// # Flags
//
//	-resolver HOST:PORT  an upstream resolver (repeatable; default: resolv.conf)
//	-anchors FILE        root trust anchors, DS records in zone-file syntax (default: IANA's)
//	-trust-ad            trust the resolvers' AD bit (resolver.Stub) instead of validating in-process
//	-ca FILE             PEM roots for the MTA-STS policy fetch (default: the system roots)
//	-concurrency N       domains surveyed at once (default 32)
//	-qps N               global limit on upstream DNS queries per second, the
//	                     validator's DS and DNSKEY queries included (default: none)
//	-timeout D           time limit per domain (default 30s)
//	-starttls            also connect to each MX host on port 25 (see below)
//	-out FILE            write the records there (default: standard output)
//	-resume              skip the domains already in -out, and append
//	-shard i/n           survey only the i-th of n deterministic shards (1 <= i <= n)
//	-merge               read the JSONL files given instead of surveying
//	-summary FILE        write the summary as Markdown
//	-json-summary FILE   write the summary as JSON (type Summary)
//	-html FILE           write the summary as one self-contained HTML page (inline SVG charts)
//	-top N               length of the summary's lists (default 20)
//
// By default DNSSEC is validated in-process (resolver.Validating) over the
// resolvers, which need only pass DNSSEC records through; the start-up
// probe (smtptls.Evaluator.Check) runs first and a resolver that cannot
// support DANE ends the run, since every figure would be wrong. A shard
// is chosen by a hash of the domain name, so that n machines given the
// same list (in any order) split it exactly; -merge of their outputs
// gives the summary of one run over the whole list. With -starttls each
// (host, address) is probed once per run, at the host's first address,
// with at most one connection per address at a time, however many
// domains share it; the probes' outcomes are kept for the run.
//
// A progress line (done/total, domains/s, errors, ETA) is written to
// stderr when it is a terminal, and nothing when it is not.
//
// # Records
//
// Each line of the output is a JSON object for one domain, written as
// soon as the domain is done (so not in list order):
//
//   - domain: the domain, lowercase A-labels without the trailing dot.
//   - rank: the rank given by the list, absent when none was.
//   - mx_status: "ok" (an MX RRset), "implicit" (no MX records: the
//     domain is its own mail host, RFC 5321 5.1), "null" (a null MX, RFC
//     7505: the domain accepts no mail) or "nxdomain" (no such domain).
//     Absent when error is set.
//   - mx_secure: the MX RRset, or its denial (NODATA, NXDOMAIN), is
//     DNSSEC-secure (validated, or AD with -trust-ad).
//   - dane: "full" (mx_secure, and every MX host has usable TLSA
//     records), "partial" (mx_secure, and some but not all do) or "none"
//     (otherwise, an insecure MX RRset included).
//   - mta_sts: "enforce", "testing" or "none" (the mode of the policy
//     fetched), "invalid" (a _mta-sts TXT record, but no usable policy:
//     an invalid record, several records, or a policy that could not be
//     fetched or parsed) or "absent" (no _mta-sts record).
//   - tls_rpt: the domain publishes exactly one valid TLS-RPT record at
//     _smtp._tls (RFC 8460 3).
//   - provider: the registered domain, by the public suffix list, of the
//     most preferred MX host (equal preferences broken by host name); for
//     an implicit MX, of the domain itself. Absent for a null MX, NXDOMAIN
//     or a name the list cannot place.
//   - mx: the MX hosts (at most 50), by preference then name, each with
//     host (lowercase A-labels), preference, and tlsa: "usable" (a secure
//     TLSA RRset with usable records, RFC 7672 2.2), "unusable" (a secure
//     TLSA RRset without any: TLS without authentication), "none" (no
//     TLSA records, an insecure answer, a host without address, or an MX
//     target that is not a host name), "bogus" (an address or TLSA lookup
//     failed DNSSEC validation) or "servfail" (one could not be
//     completed); either of the last two makes the host unusable. With
//     -starttls, also starttls: "ok", "not-offered", "failed" (the
//     handshake failed) or "unreachable"; match: the verdict of the host's
//     policy on the certificate presented ("verified", "trusted",
//     "encrypted", "failed"; "cleartext" when STARTTLS was not offered and
//     the policy allows that); and, for a host with usable TLSA records,
//     rollover: the TLSA rollover scheme seen (RFC 7671 8): "current+next"
//     (a DANE-EE record for the key in use and one for another key, the
//     next), "current+issuer" (a DANE-EE record for the key in use and a
//     DANE-TA record for its issuer CA), "issuer" (DANE-TA records only)
//     or "none" (nothing to roll over to: a single "3 1 1" record, say).
//   - error: why the domain could not be surveyed (a DNS lookup of the
//     MX, _mta-sts or _smtp._tls records that failed, the time limit);
//     the record then has only domain, rank, mx_secure false, tls_rpt
//     false and an empty mx. A null MX and NXDOMAIN are outcomes, not
//     errors.
//
// The summary counts each value of mx_status, dane and mta_sts, and
// mx_secure and tls_rpt, over the domains without error; lists the top
// domains by rank with full DANE and with an MTA-STS enforce policy, the
// domains with partial DANE, the providers by domains served and by
// DANE-protected domains served, and with -starttls the rollover schemes
// of the MX hosts with usable TLSA records (counted once per domain they
// serve).
//
// Exit codes: 0 done (bad lines of the list are reported, not fatal); 1
// the run failed (I/O, a resolver unfit for DANE); 2 usage error.
package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, hooks{}))
}

// hooks are what tests replace: the dialer of SMTP probes and policy
// fetches (the test kit's World maps its addresses to loopback servers).
type hooks struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// probeTimeout bounds one STARTTLS probe.
const probeTimeout = 30 * time.Second

// maxMX bounds the MX hosts surveyed per domain.
const maxMX = 50

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

type config struct {
	resolvers                        stringList
	anchors, ca, out, shard          string
	summary, jsonSummary, html       string
	trustAD, starttls, resume, merge bool
	concurrency, top                 int
	qps                              float64
	timeout                          time.Duration
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, hk hooks) int {
	var c config
	fs := flag.NewFlagSet("survey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: survey [flags] LIST\n       survey -merge [flags] FILE.jsonl...\nflags:")
		fs.PrintDefaults()
	}
	fs.Var(&c.resolvers, "resolver", "upstream resolver `HOST:PORT` (repeatable; default: the nameservers of /etc/resolv.conf)")
	fs.StringVar(&c.anchors, "anchors", "", "root trust anchors: DS records in zone-file syntax (default: the IANA root anchors)")
	fs.BoolVar(&c.trustAD, "trust-ad", false, "trust the resolvers' AD bit (resolver.Stub) instead of validating DNSSEC in-process")
	fs.StringVar(&c.ca, "ca", "", "PEM `FILE` of roots for the MTA-STS policy fetch (default: the system roots)")
	fs.IntVar(&c.concurrency, "concurrency", 32, "domains surveyed at once")
	fs.Float64Var(&c.qps, "qps", 0, "limit on upstream DNS queries per second, DS and DNSKEY queries included (0: none)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit per domain")
	fs.BoolVar(&c.starttls, "starttls", false, "connect to each MX host on port 25 and check its certificate (each host and address once per run)")
	fs.StringVar(&c.out, "out", "", "write JSON Lines records to `FILE` (default: standard output)")
	fs.BoolVar(&c.resume, "resume", false, "skip the domains already in -out and append to it")
	fs.StringVar(&c.shard, "shard", "", "survey only shard `i/n` of the list (1 <= i <= n)")
	fs.BoolVar(&c.merge, "merge", false, "read the JSON Lines files given as arguments instead of surveying")
	fs.StringVar(&c.summary, "summary", "", "write the summary as Markdown to `FILE`")
	fs.StringVar(&c.jsonSummary, "json-summary", "", "write the summary as JSON to `FILE`")
	fs.StringVar(&c.html, "html", "", "write the summary as a self-contained HTML page to `FILE`")
	fs.IntVar(&c.top, "top", 20, "length of the summary's lists")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "survey:", msg)
		return 2
	}
	sh, err := parseShard(c.shard)
	switch {
	case err != nil:
		return usage(err.Error())
	case c.merge && fs.NArg() == 0:
		return usage("-merge needs JSON Lines files")
	case !c.merge && fs.NArg() != 1:
		return usage("give one LIST (a file, or - for standard input)")
	case c.resume && c.out == "":
		return usage("-resume needs -out")
	case c.concurrency < 1 || c.top < 1 || c.qps < 0 || c.timeout <= 0:
		return usage("-concurrency, -top and -timeout must be positive, -qps not negative")
	}
	for _, r := range c.resolvers {
		if _, _, err := net.SplitHostPort(r); err != nil {
			return usage("-resolver " + strconv.Quote(r) + ": want HOST:PORT")
		}
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "survey:", err)
		return 1
	}
	agg := newAggregator(c.top)
	if c.merge {
		if err := merge(fs.Args(), c.out, stdout, agg); err != nil {
			return fail(err)
		}
	} else if code := survey(ctx, &c, fs.Arg(0), stdin, stdout, stderr, hk, sh, agg); code != 0 {
		return code
	}
	s := agg.summary()
	for _, o := range []struct {
		file  string
		write func(io.Writer) error
	}{
		{c.summary, s.writeMarkdown},
		{c.jsonSummary, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(s)
		}},
		{c.html, s.writeHTML},
	} {
		if o.file == "" {
			continue
		}
		if err := writeFile(o.file, o.write); err != nil {
			return fail(err)
		}
	}
	return 0
}

func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readRecords calls fn with each record of a JSON Lines file and the
// offset just past it; a last line without its newline (a run cut short)
// is ignored.
func readRecords(r io.Reader, name string, fn func(*Record, int64)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		off += int64(len(line))
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil || rec.Domain == "" {
			return fmt.Errorf("%s:%d: not a survey record", name, n)
		}
		fn(&rec, off)
	}
}

// merge aggregates JSON Lines files, each domain once (the first record
// seen), and copies the records to out when it is set.
func merge(files []string, out string, stdout io.Writer, agg *aggregator) error {
	var w *bufio.Writer
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = bufio.NewWriter(f)
	}
	seen := map[string]struct{}{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		var werr error
		err = readRecords(f, name, func(r *Record, _ int64) {
			if _, dup := seen[r.Domain]; dup {
				return
			}
			seen[r.Domain] = struct{}{}
			agg.add(r)
			if w != nil && werr == nil {
				b, _ := json.Marshal(r)
				_, werr = w.Write(append(b, '\n'))
			}
		})
		f.Close()
		if err = errors.Join(err, werr); err != nil {
			return err
		}
	}
	if w != nil {
		return w.Flush()
	}
	return nil
}

// buildSurveyor builds the resolver, the Evaluator and the MTA-STS client.
func buildSurveyor(c *config, hk hooks) (*surveyor, error) {
	var lim resolver.Limiter
	if c.qps > 0 {
		lim = newBucket(c.qps)
	}
	var up resolver.Resolver
	if c.trustAD {
		up = &resolver.Stub{Servers: c.resolvers, TrustAD: true, Limiter: lim}
	} else {
		v := &resolver.Validating{Servers: c.resolvers, Limiter: lim}
		if c.anchors != "" {
			f, err := os.Open(c.anchors)
			if err != nil {
				return nil, err
			}
			v.Anchors, err = parseAnchors(f, c.anchors)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("-anchors: %w", err)
			}
		}
		up = v
	}
	res := &resolver.Cache{Resolver: up}
	var roots *x509.CertPool
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, err
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate", c.ca)
		}
	}
	dial := hk.dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 20 * time.Second}).DialContext
	}
	logger := slog.New(slog.DiscardHandler)
	sts := &mtasts.Client{Resolver: res, HTTPClient: policyClient(res, roots, dial), Logger: logger}
	ev := &smtptls.Evaluator{Resolver: res, STS: sts, Roots: roots, MaxMX: maxMX, Logger: logger}
	return &surveyor{res: res, ev: ev, sts: sts, starttls: c.starttls, dial: dial, probes: newProber()}, nil
}

// policyClient is the MTA-STS fetch client: the policy host is resolved
// with the survey's resolver, so the dialler only sees addresses.
func policyClient(res resolver.Resolver, roots *x509.CertPool, dial func(context.Context, string, string) (net.Conn, error)) *http.Client {
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			addrs, _, err := resolver.LookupAddrs(ctx, res, dns.Fqdn(host))
			if err != nil {
				return nil, err
			}
			if len(addrs) == 0 {
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}
			p, _ := strconv.ParseUint(port, 10, 16)
			return dial(ctx, network, netip.AddrPortFrom(addrs[0], uint16(p)).String())
		},
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        5 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		TLSHandshakeTimeout:    20 * time.Second,
	}
	if roots != nil {
		t.TLSClientConfig = newTLSConfig(roots)
	}
	return &http.Client{Transport: t, Timeout: time.Minute}
}

// survey runs the survey of the list into the output and agg.
func survey(ctx context.Context, c *config, list string, stdin io.Reader, stdout, stderr io.Writer, hk hooks, sh shard, agg *aggregator) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "survey:", err)
		return 1
	}
	in, listName := stdin, "stdin"
	if list != "-" {
		f, err := os.Open(list)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		in, listName = f, list
	}
	sv, err := buildSurveyor(c, hk)
	if err != nil {
		return fail(err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	err = sv.ev.Check(cctx)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("the resolver cannot support DANE, so the figures would be wrong: %w", err))
	}

	// The output, and with -resume the domains already in it.
	done := map[string]struct{}{}
	out := stdout
	if c.out != "" {
		flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if c.resume {
			flags = os.O_CREATE | os.O_RDWR
		}
		f, err := os.OpenFile(c.out, flags, 0o644)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if c.resume {
			var end int64
			err := readRecords(f, c.out, func(r *Record, off int64) {
				if _, dup := done[r.Domain]; !dup {
					done[r.Domain] = struct{}{}
					agg.add(r)
				}
				end = off
			})
			if err == nil {
				err = f.Truncate(end) // drop a line cut short
			}
			if err == nil {
				_, err = f.Seek(end, io.SeekStart)
			}
			if err != nil {
				return fail(err)
			}
		}
		out = f
	}

	var prog *progress
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		total := -1
		if list != "-" {
			total = countList(list, sh, done)
		}
		prog = startProgress(f, total)
		defer prog.stop()
	}

	entries := make(chan entry, c.concurrency)
	results := make(chan Record, c.concurrency)
	var readErr error
	go func() {
		defer close(entries)
		readErr = readList(in, func(n int, reason string) {
			fmt.Fprintf(stderr, "survey: %s:%d: %s (skipped)\n", listName, n, reason)
		}, func(e entry) error {
			if _, ok := done[e.domain]; ok || !sh.has(e.domain) {
				return nil
			}
			select {
			case entries <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var wg sync.WaitGroup
	for range c.concurrency {
		wg.Go(func() {
			for e := range entries {
				dctx, cancel := context.WithTimeout(ctx, c.timeout)
				r := sv.survey(dctx, e.domain, e.rank)
				cancel()
				results <- r
			}
		})
	}
	go func() { wg.Wait(); close(results) }()

	bw := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(bw)
	var werr error
	for r := range results {
		agg.add(&r)
		if prog != nil {
			prog.add(r.Error != "")
		}
		if werr != nil {
			continue
		}
		werr = enc.Encode(&r)
		if werr == nil && len(results) == 0 {
			werr = bw.Flush() // streamed: nothing is held back while workers are busy
		}
	}
	if werr == nil {
		werr = bw.Flush()
	}
	if err := errors.Join(readErr, werr); err != nil {
		return fail(err)
	}
	return 0
}

// countList counts the domains a run will survey, for the progress line.
func countList(list string, sh shard, done map[string]struct{}) int {
	f, err := os.Open(list)
	if err != nil {
		return -1
	}
	defer f.Close()
	n := 0
	readList(f, func(int, string) {}, func(e entry) error {
		if _, ok := done[e.domain]; !ok && sh.has(e.domain) {
			n++
		}
		return nil
	})
	return n
}

// progress writes a progress line to a terminal.
type progress struct {
	w      io.Writer
	total  int
	start  time.Time
	n, bad atomic.Int64
	quit   chan struct{}
	wg     sync.WaitGroup
}

func startProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now(), quit: make(chan struct{})}
	p.wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.print()
			case <-p.quit:
				p.print()
				fmt.Fprintln(p.w)
				return
			}
		}
	})
	return p
}

func (p *progress) add(failed bool) {
	p.n.Add(1)
	if failed {
		p.bad.Add(1)
	}
}

func (p *progress) print() {
	n := p.n.Load()
	el := time.Since(p.start).Seconds()
	rate := float64(n) / max(el, 1e-3)
	line := fmt.Sprintf("%d", n)
	if p.total >= 0 {
		line += fmt.Sprintf("/%d", p.total)
	}
	line += fmt.Sprintf(" domains, %.1f/s, %d errors", rate, p.bad.Load())
	if p.total >= 0 && rate > 0 && int(n) <= p.total {
		eta := time.Duration(float64(p.total-int(n)) / rate * float64(time.Second))
		line += ", ETA " + eta.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
}

func (p *progress) stop() {
	close(p.quit)
	p.wg.Wait()
}
