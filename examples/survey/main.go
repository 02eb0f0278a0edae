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
// starting with # are ignored; any other line that is not a mail domain
// (or whose rank is not a positive integer) is reported on stderr with
// its line number and skipped. The list is read as a stream and records
// are written as domains finish: memory grows with -concurrency and the
// summary's lists, not with the list (-resume keeps the set of the names
// already done, -merge the set of the names it has counted, and
// -starttls one outcome per MX host and address probed).
//
// # Flags
//
//	-resolver HOST:PORT  an upstream resolver (repeatable; default: those of /etc/resolv.conf)
//	-anchors FILE        trust anchors in zone-file syntax (DS or DNSKEY records), replacing
//	                     the IANA root anchors: for a private root (resolver.ParseAnchors)
//	-trust-ad            trust the resolvers' AD bit (resolver.Stub) instead of validating in-process
//	-ca FILE             PEM roots added to the system's for the MTA-STS policy fetch
//	-concurrency N       domains surveyed at once (default 32)
//	-qps N               global limit on upstream DNS queries per second, the
//	                     validator's DS and DNSKEY queries included (default 0: none)
//	-timeout D           time limit per domain (default 30s)
//	-starttls            also connect to each MX host on port 25 (see below)
//	-out FILE            write the records there (default: standard output)
//	-resume              skip the domains already in -out, and append to it
//	-shard i/n           survey only the i-th of n deterministic shards (1 <= i <= n)
//	-merge               read the JSON Lines files given instead of surveying
//	-summary FILE        write the summary as Markdown
//	-json-summary FILE   write the summary as JSON (type Summary)
//	-html FILE           write the summary as one self-contained HTML page (inline SVG charts)
//	-top N               length of the summary's lists (default 20)
//
// By default DNSSEC is validated in-process (resolver.Validating) over the
// resolvers, which need only pass DNSSEC records through. The start-up
// probe (smtptls.Evaluator.Check) runs first, and a resolver that cannot
// support DANE ends the run: every figure would be wrong. -qps waits on
// one golang.org/x/time/rate.Limiter (a burst of one) before every query
// sent upstream (resolver.Limiter); answers from the survey's cache cost
// nothing.
//
// A shard is chosen by a hash of the domain name, so that n machines
// given the same list (in any order) split it exactly; -merge of their
// outputs gives the summary of one run over the whole list. -merge counts
// each domain from the first file that has it (a file's own repeats, from
// a list that names a domain twice, count as they would in one run), and
// with -out writes the records it counted there. Without any summary flag
// it writes the Markdown summary to standard output.
//
// With -starttls each MX host that may be used (or that an MTA-STS
// enforce policy excludes) is probed at its addresses in order until one
// accepts a connection, as an MTA tries them. Each (host, address) is
// probed at most once per run, with at most one connection per address at
// a time, however many domains share it; the outcome is judged against the
// policy of each domain. A probe is EHLO and STARTTLS on one connection,
// bounded in time (30s) and in what it reads.
//
// A progress line (done/total, domains/s, errors, ETA) is written to
// stderr when it is a terminal, and nothing when it is not. An interrupt
// (SIGINT, SIGTERM) stops the run: records of the domains finished so far
// are written, those cut short are not, and -resume continues.
//
// # Records
//
// Each line of the output is a JSON object for one domain (type Record
// documents each field in full), written when the domain is done:
//
//   - domain: the domain, lowercase A-labels without the trailing dot.
//   - rank: the rank the list gave; absent when none was.
//   - mx_status: "ok", "implicit" (no MX: the domain is its own mail
//     host), "null" (a null MX, RFC 7505) or "nxdomain".
//   - mx_secure: the MX RRset, or its denial, is DNSSEC-secure.
//   - dane: "full" (mx_secure, and every MX host has usable TLSA records),
//     "partial" (mx_secure, and some but not all do) or "none".
//   - mta_sts: "enforce", "testing", "none" (the mode of the policy
//     fetched), "invalid" (a TXT record but no usable policy) or "absent".
//   - tls_rpt: exactly one valid TLS-RPT record at _smtp._tls.
//   - provider: the registered domain (public suffix list) of the most
//     preferred MX host, equal preferences broken by host name.
//   - mx: per MX host, host, preference and tlsa ("usable", "unusable",
//     "none", "bogus", "servfail"); with -starttls also addr, starttls
//     ("ok", "not-offered", "failed", "unreachable"), match (the verdict
//     of the host's policy: "verified", "trusted", "encrypted", "failed",
//     "cleartext") and for usable TLSA records rollover, the TLSA rollover
//     scheme seen ("current+next", "current+issuer", "issuer-only",
//     "none", "no-match").
//   - error: why the domain could not be surveyed; the record then has
//     only domain, rank, mx_secure and tls_rpt false, and an empty mx. A
//     null MX and NXDOMAIN are outcomes, not errors.
//
// # Summary
//
// The summary (type Summary) counts each value of mx_status, dane and
// mta_sts, and mx_secure and tls_rpt, over the domains without error,
// with their shares; lists the top domains by rank with full DANE and
// with an MTA-STS enforce policy (Domain | Rank), the domains with partial
// DANE, the providers by domains served and by DANE-protected domains
// served, and with -starttls the TLSA rollover schemes of the MX hosts
// with usable TLSA records (a host counted once per domain it serves).
//
// Exit codes: 0 done (bad lines of the list are reported, not fatal); 1
// the run failed or was interrupted (I/O, a resolver unfit for DANE); 2
// usage error.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
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
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/smtptls/smtptls/examples/internal/resolvercheck"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, hooks{})
	stop()
	os.Exit(code)
}

// hooks are what tests replace: the dialer of SMTP probes and policy
// fetches (the test kit's World maps its addresses to loopback servers),
// and the resolvers' time limits (the World's DNS front answers from the
// tests' own process, so on a loaded machine its answers queue behind
// the survey's work, which a real resolver's would not).
type hooks struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// queryTimeout and lookupTimeout, when set, replace the resolvers'
	// (resolver.Stub.Timeout, resolver.Validating.Timeout and
	// LookupTimeout).
	queryTimeout, lookupTimeout time.Duration
}

// maxMX bounds the MX hosts surveyed per domain.
const maxMX = 50

// The golang.org/x/time/rate limiter -qps builds is a resolver.Limiter.
var _ resolver.Limiter = (*rate.Limiter)(nil)

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

// newFlags defines the command's flags on a new FlagSet writing to stderr.
func newFlags(c *config, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("survey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: survey [flags] LIST\n       survey -merge [flags] FILE.jsonl...\nflags:")
		fs.PrintDefaults()
	}
	fs.Var(&c.resolvers, "resolver", "upstream resolver `HOST:PORT` (repeatable; default: the nameservers of /etc/resolv.conf)")
	fs.StringVar(&c.anchors, "anchors", "", "trust anchors `FILE` (DS or DNSKEY records in zone-file syntax) replacing the IANA root anchors, for a private root")
	fs.BoolVar(&c.trustAD, "trust-ad", false, "trust the resolvers' AD bit (resolver.Stub) instead of validating DNSSEC in-process")
	fs.StringVar(&c.ca, "ca", "", "PEM `FILE` of roots to add to the system's for the MTA-STS policy fetch")
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
	return fs
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, hk hooks) int {
	var c config
	fs := newFlags(&c, stderr)
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
	case c.merge && (c.resume || c.shard != ""):
		return usage("-merge takes neither -resume nor -shard")
	case !c.merge && fs.NArg() != 1:
		return usage("give one LIST (a file, or - for standard input)")
	case c.resume && c.out == "":
		return usage("-resume needs -out")
	case c.trustAD && c.anchors != "":
		return usage("-anchors is for in-process validation, not -trust-ad")
	case c.concurrency < 1 || c.top < 1 || c.qps < 0 || c.timeout <= 0:
		return usage("-concurrency, -top and -timeout must be positive, -qps not negative")
	}
	for _, r := range c.resolvers {
		if _, _, err := net.SplitHostPort(r); err != nil {
			return usage("-resolver " + quote.String(r) + ": want HOST:PORT")
		}
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "survey:", err)
		return 1
	}
	agg := newAggregator(c.top)
	if c.merge {
		if err := merge(fs.Args(), c.out, agg); err != nil {
			return fail(err)
		}
		if c.summary == "" && c.jsonSummary == "" && c.html == "" {
			s := agg.summary()
			if err := s.writeMarkdown(stdout); err != nil {
				return fail(err)
			}
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
		{c.jsonSummary, s.writeJSON},
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

// buildSurveyor builds the resolver, the Evaluator and the MTA-STS client.
func buildSurveyor(ctx context.Context, c *config, hk hooks) (*surveyor, error) {
	var lim resolver.Limiter
	if c.qps > 0 {
		lim = rate.NewLimiter(rate.Limit(c.qps), 1)
	}
	var up resolver.Resolver
	if c.trustAD {
		up = &resolver.Stub{Servers: c.resolvers, TrustAD: true, Limiter: lim, Timeout: hk.queryTimeout}
	} else {
		v := &resolver.Validating{Servers: c.resolvers, Limiter: lim, Timeout: hk.queryTimeout, LookupTimeout: hk.lookupTimeout}
		if c.anchors != "" {
			f, err := os.Open(c.anchors)
			if err != nil {
				return nil, err
			}
			v.Anchors, err = resolver.ParseAnchors(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("-anchors: %w", err)
			}
		}
		up = v
	}
	// The cache's default bound (resolver.DefaultCacheEntries) keeps its
	// memory constant over the list; it serves the names domains share:
	// providers' MX hosts, their TLSA records, policy hosts.
	res := &resolver.Cache{Resolver: up}
	var roots *x509.CertPool
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, err
		}
		// The roots are added to the system's: a survey of public
		// domains with a private CA for some of them must not lose
		// the public ones.
		roots, err = x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate", quote.String(c.ca))
		}
	}
	dial := hk.dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 20 * time.Second}).DialContext
	}
	logger := slog.New(slog.DiscardHandler)
	sts := &mtasts.Client{Resolver: res, HTTPClient: policyClient(res, roots, dial), Logger: logger}
	ev := &smtptls.Evaluator{Resolver: res, STS: sts, Roots: roots, MaxMX: maxMX, Logger: logger}
	sv := &surveyor{res: res, ev: ev, sts: sts}
	if c.starttls {
		sv.probes = newProber(ctx, dial)
	}
	return sv, nil
}

// policyClient is the MTA-STS fetch client: the policy host is resolved
// with the survey's resolver, so the dialler only sees addresses. The
// mtasts.Client adds its own checks (WebPKI name, no redirects, size and
// time bounds; RFC 8461 3.3).
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
		// Policy hosts are distinct per domain: keeping idle
		// connections would only hold memory and sockets.
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
		TLSHandshakeTimeout:    20 * time.Second,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}
	return &http.Client{Transport: t, Timeout: time.Minute}
}

// survey runs the survey of the list into the output and agg.
func survey(ctx context.Context, c *config, list string, stdin io.Reader, stdout, stderr io.Writer, hk hooks, sh shard, agg *aggregator) int {
	con := &console{w: stderr}
	fail := func(err error) int {
		con.println("survey: " + err.Error())
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
	sv, err := buildSurveyor(ctx, c, hk)
	if err != nil {
		return fail(err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	err = sv.ev.Check(cctx)
	cancel()
	if err != nil {
		return fail(errors.New("the resolver cannot support DANE, so the figures would be wrong: " + resolvercheck.Finding(err)))
	}

	// The output, and with -resume the domains already in it.
	var done map[string]struct{}
	out := stdout
	if c.out != "" {
		f, d, err := openOut(c.out, c.resume, agg)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		out, done = f, d
	}
	skip := func(domain string) bool {
		_, ok := done[domain]
		return ok || !sh.has(domain)
	}

	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		con.prog = startProgress(con)
		defer con.prog.stop()
		if list != "-" {
			go con.prog.setTotal(countList(ctx, list, skip))
		}
	}

	entries := make(chan entry, c.concurrency)
	results := make(chan Record, c.concurrency)
	var readErr error
	go func() {
		defer close(entries)
		readErr = readList(in, func(n int, reason string) {
			con.println(fmt.Sprintf("survey: %s:%d: %s (skipped)", quote.Text(listName), n, reason))
		}, func(e entry) error {
			if skip(e.domain) {
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
				if ctx.Err() != nil {
					continue // cut short by the interrupt, not by its time limit
				}
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
		if con.prog != nil {
			con.prog.add(r.Error != "")
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
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("interrupted; the records of the domains done are written (-resume continues): %w", err))
	}
	if err := errors.Join(readErr, werr); err != nil {
		return fail(err)
	}
	return 0
}

// openOut opens the output file. With resume it reads the records already
// there into agg, returns their domains, drops a last line cut short and
// positions the file to append.
func openOut(name string, resume bool, agg *aggregator) (*os.File, map[string]struct{}, error) {
	if !resume {
		f, err := os.Create(name)
		return f, nil, err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, err
	}
	done := map[string]struct{}{}
	var end int64
	err = readRecords(f, name, func(r *Record, off int64) {
		done[r.Domain] = struct{}{}
		agg.add(r)
		end = off
	})
	if err == nil {
		err = f.Truncate(end) // a line cut short by a crash
	}
	if err == nil {
		_, err = f.Seek(end, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, done, nil
}

// countList counts the domains a run will survey, for the progress line;
// -1 when the list cannot be read again.
func countList(ctx context.Context, list string, skip func(string) bool) int {
	f, err := os.Open(list)
	if err != nil {
		return -1
	}
	defer f.Close()
	n := 0
	err = readList(f, func(int, string) {}, func(e entry) error {
		if !skip(e.domain) {
			n++
		}
		return ctx.Err()
	})
	if err != nil {
		return -1
	}
	return n
}
