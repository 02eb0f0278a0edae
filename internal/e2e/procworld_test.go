package e2e_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/resolver"
)

// The load World in a child process: the test binary runs itself again
// with procWorldEnv set to a number of domains, builds the load World
// (loadWorld) there, and serves it on loopback until its standard input
// closes. The parent builds Evaluators against it and measures only its
// own CPU: the World's DNS answers, signatures, TLS handshakes and HTTP
// responses are the child's (BenchmarkColdCPU).
//
// The two processes talk in lines. The child prints
//
//	procworld-ready {JSON procWorldInfo}
//
// once the World is built and signed, then answers each command read
// from its standard input:
//
//	reset  -> procworld-ok                   (forget the queries seen)
//	log    -> procworld-log {JSON []procQuery} (the queries since reset)
//
// and exits when its standard input closes, which also happens when the
// parent dies.

// procWorldEnv is the environment variable that turns the test binary
// into a child World: its value is the number of load domains to serve.
const procWorldEnv = "SMTPTLS_E2E_PROC_WORLD"

// Line prefixes of the child's answers.
const (
	procReady = "procworld-ready "
	procOK    = "procworld-ok"
	procLog   = "procworld-log "
)

// procWorldInfo is what the parent needs to reach the child's World.
type procWorldInfo struct {
	// DNS is the address of the child's recording DNS front (UDP and
	// TCP), which forwards every query to the World's own front.
	DNS string
	// HTTPS is the real address of the World's MTA-STS server; every
	// policy host of the load World resolves to loadPolicyAddr, port
	// 443, which the parent maps to it.
	HTTPS string
	// Anchors are the World's root trust anchors, DS records in
	// presentation format.
	Anchors []string
	// CARoot is the DER of the World CA's root certificate.
	CARoot []byte
	// Domains is the number of load domains served (loadDomain(0) to
	// loadDomain(Domains-1)).
	Domains int
}

// procQuery is one query the child's DNS front received.
type procQuery struct {
	// Wire is the query message as the client packed it.
	Wire []byte
	// TCP is true when it came over TCP (after a truncated UDP answer).
	TCP bool
}

// TestProcWorld is the child World's entry point when procWorldEnv is
// set. Otherwise it tests the harness: a child World of a few domains,
// every decision through it right with the Stub and with Validating, the
// queries recorded, and the floor's bare client getting an answer to
// each of them.
func TestProcWorld(t *testing.T) {
	if spec := os.Getenv(procWorldEnv); spec != "" {
		serveProcWorld(t, spec)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process that builds a World")
	}
	t.Parallel()
	const n = 8
	pw := startProcWorld(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, validating := range []bool{false, true} {
		if err := pw.reset(); err != nil {
			t.Fatal(err)
		}
		ev, v := pw.evaluator(validating)
		if err := runCold(ctx, ev, n, 4); err != nil {
			t.Fatalf("validating=%v: %v", validating, err)
		}
		qs, err := pw.queries()
		if err != nil {
			t.Fatal(err)
		}
		// At least MX, A, AAAA for two hosts per domain.
		if len(qs) < 5*n {
			t.Fatalf("validating=%v: %d queries recorded for %d domains", validating, len(qs), n)
		}
		msgs, err := floorQueries(qs)
		if err != nil {
			t.Fatal(err)
		}
		if err := replayDNS(ctx, pw.info.DNS, msgs, 4); err != nil {
			t.Fatalf("validating=%v: floor replay: %v", validating, err)
		}
		if err := fetchFloor(ctx, pw, policyDomains(n), 4); err != nil {
			t.Fatalf("validating=%v: fetch floor: %v", validating, err)
		}
		if v != nil {
			// At least the MX and the two hosts' addresses of each
			// domain are signed.
			sigs := int(v.Stats().Verifications)
			if sigs < 3*n {
				t.Fatalf("%d signature verifications for %d domains", sigs, n)
			}
			if err := sigFloor(sigs, 4); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// serveProcWorld is the child: it builds the load World of spec domains,
// signs it by evaluating every domain once through the Stub and through
// Validating, starts the recording front, announces itself and serves
// until its standard input closes.
func serveProcWorld(t *testing.T, spec string) {
	n, err := strconv.Atoi(spec)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number of domains", procWorldEnv, spec)
	}
	w := loadWorld(t, n)
	ctx := context.Background()
	// Real authoritative zones are signed in advance: one pass through
	// each resolver signs every RRset, denial and key set asked for.
	if st := runLoad(ctx, loadEvaluator(w), n, 64); st.errors > 0 {
		t.Fatalf("signing pass: %d errors; first: %v", st.errors, st.firstErr)
	}
	val := loadEvaluator(w)
	val.Resolver = &resolver.Cache{Resolver: &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors(), Timeout: loadQueryTimeout}}
	if st := runLoad(ctx, val, min(n, 64), 16); st.errors > 0 {
		t.Fatalf("validating signing pass: %d errors; first: %v", st.errors, st.firstErr)
	}

	rec := &recordingFront{upstream: w.DNSAddr()}
	addr, err := rec.start()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.stop()
	info := procWorldInfo{DNS: addr, HTTPS: w.PolicyAddr(), CARoot: w.CA().Root.Raw, Domains: n}
	for _, ds := range w.Anchors() {
		info.Anchors = append(info.Anchors, ds.String())
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(prefix string, v any) {
		out.WriteString(prefix)
		if v != nil {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(b)
		}
		out.WriteByte('\n')
		if err := out.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	say(procReady, info)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "reset":
			rec.reset()
			say(procOK, nil)
		case "log":
			say(procLog, rec.log())
		default:
			t.Fatalf("unknown command %q", in.Text())
		}
	}
}

// recordingFront is a DNS server on loopback that records each query and
// forwards it, on the transport it came on, to the World's front.
type recordingFront struct {
	upstream string
	udp, tcp *dns.Server

	mu      sync.Mutex // guards queries
	queries []procQuery
}

func (f *recordingFront) start() (string, error) {
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 50 {
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			return "", err
		}
		if ln, err = net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		return "", fmt.Errorf("no UDP/TCP port pair: %w", err)
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
	}
	udp := &dns.Client{Net: "udp", Timeout: loadQueryTimeout}
	tcp := &dns.Client{Net: "tcp", Timeout: loadQueryTimeout}
	handler := func(isTCP bool) dns.HandlerFunc {
		c := udp
		if isTCP {
			c = tcp
		}
		return func(rw dns.ResponseWriter, req *dns.Msg) {
			wire, err := req.Pack()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.queries = append(f.queries, procQuery{Wire: wire, TCP: isTCP})
			f.mu.Unlock()
			resp, _, err := c.Exchange(req, f.upstream)
			if err != nil {
				resp = new(dns.Msg)
				resp.SetRcode(req, dns.RcodeServerFailure)
			}
			rw.WriteMsg(resp)
		}
	}
	started := make(chan error, 2)
	f.udp = &dns.Server{PacketConn: pc, Handler: handler(false), UDPSize: dns.MaxMsgSize, NotifyStartedFunc: func() { started <- nil }}
	f.tcp = &dns.Server{Listener: ln, Handler: handler(true), NotifyStartedFunc: func() { started <- nil }}
	for _, s := range []*dns.Server{f.udp, f.tcp} {
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				started <- err
			}
		}()
	}
	for range 2 {
		if err := <-started; err != nil {
			return "", err
		}
	}
	return pc.LocalAddr().String(), nil
}

func (f *recordingFront) stop() {
	f.udp.Shutdown()
	f.tcp.Shutdown()
}

func (f *recordingFront) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = nil
}

func (f *recordingFront) log() []procQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries
}

// procWorld is the parent's handle on a child World.
type procWorld struct {
	info    procWorldInfo
	anchors []*dns.DS
	roots   *x509.CertPool

	mu    sync.Mutex // guards the conversation: in, lines
	in    io.WriteCloser
	lines chan string // the child's answers, read from its standard output
}

// procWorldStart bounds the child's start: building and signing the
// World takes a few seconds per thousand domains.
const procWorldStart = 10 * time.Minute

// startProcWorld runs the test binary again as a child World of n load
// domains and waits until it serves. The child ends with tb.
func startProcWorld(tb testing.TB, n int) *procWorld {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestProcWorld$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), procWorldEnv+"="+strconv.Itoa(n))
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	pw := &procWorld{in: in, lines: make(chan string, 1)}
	exited := make(chan struct{})
	go func() {
		// Lines the protocol does not know (the test framework's own
		// output, which says why a child failed) are kept with its
		// standard error; closing lines tells the parent the child is
		// gone.
		defer close(pw.lines)
		r := bufio.NewReaderSize(out, 1<<20)
		for {
			line, err := r.ReadString('\n')
			if strings.HasPrefix(line, "procworld-") {
				pw.lines <- strings.TrimSuffix(line, "\n")
			} else {
				cmd.Stderr.Write([]byte(line))
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		in.Close()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	var line string
	select {
	case l, ok := <-pw.lines:
		if !ok {
			<-exited
			tb.Fatalf("child World exited before serving: %v\n%s", cmd.ProcessState, stderr.String())
		}
		line = l
	case <-time.After(procWorldStart):
		tb.Fatalf("child World not ready after %v", procWorldStart)
	}
	js, ok := strings.CutPrefix(line, procReady)
	if !ok {
		tb.Fatalf("child World: unexpected first line %q", line)
	}
	if err := json.Unmarshal([]byte(js), &pw.info); err != nil {
		tb.Fatal(err)
	}
	for _, s := range pw.info.Anchors {
		rr, err := dns.NewRR(s)
		if err != nil {
			tb.Fatal(err)
		}
		ds, ok := rr.(*dns.DS)
		if !ok {
			tb.Fatalf("anchor %q is not a DS", s)
		}
		pw.anchors = append(pw.anchors, ds)
	}
	root, err := x509.ParseCertificate(pw.info.CARoot)
	if err != nil {
		tb.Fatal(err)
	}
	pw.roots = x509.NewCertPool()
	pw.roots.AddCert(root)
	return pw
}

// ask sends a command to the child and returns its answer.
func (pw *procWorld) ask(cmd, prefix string) (string, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if _, err := io.WriteString(pw.in, cmd+"\n"); err != nil {
		return "", err
	}
	line, ok := <-pw.lines
	if !ok {
		return "", errors.New("child World exited")
	}
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return "", fmt.Errorf("child World answered %q to %q", line, cmd)
	}
	return rest, nil
}

// reset makes the child forget the queries it has seen.
func (pw *procWorld) reset() error {
	_, err := pw.ask("reset", procOK)
	return err
}

// queries returns the queries the child has seen since reset.
func (pw *procWorld) queries() ([]procQuery, error) {
	js, err := pw.ask("log", procLog)
	if err != nil {
		return nil, err
	}
	var qs []procQuery
	err = json.Unmarshal([]byte(js), &qs)
	return qs, err
}

// dial connects the policy fetches: every policy host of the load World
// resolves to loadPolicyAddr, which stands for the child's MTA-STS
// server.
func (pw *procWorld) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != net.JoinHostPort(loadPolicyAddr, "443") {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("not a policy host of the load World")}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", pw.info.HTTPS)
}

// evaluator returns a cold Evaluator against the child World, built as an
// MTA builds one: a resolver.Cache with its defaults over a Stub or a
// Validating (from the World's anchors, returned too for its Stats), and
// the default MTA-STS client (Roots, DialContext). Per-query timeouts are
// raised as in the load runs: the child shares the machine's cores with
// the parent.
func (pw *procWorld) evaluator(validating bool) (*smtptls.Evaluator, *resolver.Validating) {
	var r resolver.Resolver = &resolver.Stub{Servers: []string{pw.info.DNS}, Timeout: loadQueryTimeout}
	var v *resolver.Validating
	if validating {
		v = &resolver.Validating{Servers: []string{pw.info.DNS}, Anchors: pw.anchors,
			Timeout: loadQueryTimeout, LookupTimeout: 2 * loadQueryTimeout}
		r = v
	}
	return &smtptls.Evaluator{
		Resolver:    &resolver.Cache{Resolver: r},
		Roots:       pw.roots,
		DialContext: pw.dial,
		Logger:      discard,
	}, v
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	mu sync.Mutex
	w  io.Writer
	n  int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k := min(len(p), l.n); k > 0 {
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
