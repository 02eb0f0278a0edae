// Command postfix-tlspolicy answers Postfix's smtp_tls_policy_maps over
// the socketmap protocol with the decisions of smtptls: DANE for SMTP
// (RFC 7672) and MTA-STS (RFC 8461) decided together, DANE first, so that
// an MTA-STS policy can never override DANE. It replaces the MTA-STS
// socketmap daemons whose "secure" answers switch off the DANE that
// Postfix would otherwise apply.
//
//	postfix-tlspolicy -config /etc/postfix-tlspolicy.conf
//
// and in Postfix's main.cf:
//
//	smtp_dns_support_level = dnssec
//	smtp_tls_security_level = may
//	smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:tlspolicy
//
// See README.md for the answers, the configuration and a systemd unit.
// Flags (or "name = value" lines of the -config file, flags winning):
//
//	-listen inet:127.0.0.1:8461    or unix:/run/postfix-tlspolicy/socket
//	-map tlspolicy                 accepted map names, comma-separated ("" = any)
//	-cache-dir DIR                 MTA-STS policy cache (DirCache); "" = memory
//	-dns ""                        resolvers host:port, comma-separated; "" = resolv.conf
//	-testing notfound|enforce      answer for MTA-STS testing policies
//	-match mx|policy               names in "secure match=..."
//	-mixed dane|dane-only          DANE on some MX hosts, MTA-STS enforce on the rest
//	-check                         run the start-up probe and exit
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

// config is the command's configuration, from flags and the config file.
type config struct {
	listen       string
	socketMode   string
	mapNames     string
	cacheDir     string
	dns          string
	trustAD      bool
	allowNoDANE  bool
	testing      TestingMode
	match        MatchMode
	mixed        MixedMode
	sni          bool
	maxConns     int
	maxInflight  int
	maxRequest   int
	queryTimeout time.Duration
	readTimeout  time.Duration
	idleTimeout  time.Duration
	drainTimeout time.Duration
	refresh      time.Duration
	logLevel     string
	logFormat    string
	check        bool
}

// maxConfigSize bounds the configuration file.
const maxConfigSize = 64 << 10

// parseConfig reads flags, then the -config file for every flag not given
// on the command line.
func parseConfig(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("postfix-tlspolicy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file of \"name = value\" lines (names are these flags); flags win")
	fs.StringVar(&cfg.listen, "listen", "inet:127.0.0.1:8461", "where to listen: inet:HOST:PORT or unix:PATH")
	fs.StringVar(&cfg.socketMode, "socket-mode", "0660", "permissions of a unix socket (octal); Postfix's smtp processes must be able to connect")
	fs.StringVar(&cfg.mapNames, "map", "tlspolicy", "accepted socketmap names, comma-separated; empty accepts any")
	fs.StringVar(&cfg.cacheDir, "cache-dir", "/var/lib/postfix-tlspolicy/mtasts", "MTA-STS policy cache directory; empty keeps policies in memory only (lost on restart: trust on first use again)")
	fs.StringVar(&cfg.dns, "dns", "", "recursive resolvers (host:port, comma-separated); empty means /etc/resolv.conf, as Postfix")
	fs.BoolVar(&cfg.trustAD, "trust-ad", false, "trust the AD bit of non-loopback resolvers (only over a protected path)")
	fs.BoolVar(&cfg.allowNoDANE, "allow-no-dane", false, "start even when the resolver cannot validate DNSSEC; DANE is then off")
	fs.Var(&cfg.testing, "testing", "answer for MTA-STS testing policies: notfound or enforce")
	fs.Var(&cfg.match, "match", "names in secure answers: mx (matching MX hosts) or policy (policy patterns, wider)")
	fs.Var(&cfg.mixed, "mixed", "DANE on some MX hosts and MTA-STS enforce: dane or dane-only")
	fs.BoolVar(&cfg.sni, "sni", true, "add servername=hostname to secure answers (Postfix 3.4 and later)")
	fs.IntVar(&cfg.maxConns, "max-conns", DefaultMaxConns, "maximum open connections")
	fs.IntVar(&cfg.maxInflight, "max-inflight", DefaultMaxInflight, "maximum lookups at once")
	fs.IntVar(&cfg.maxRequest, "max-request", DefaultMaxRequest, "maximum request size in bytes (netstring length cap)")
	fs.DurationVar(&cfg.queryTimeout, "query-timeout", DefaultQueryTimeout, "time budget of one lookup")
	fs.DurationVar(&cfg.readTimeout, "read-timeout", DefaultReadTimeout, "time to receive one request")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", DefaultIdleTimeout, "idle time before a connection is closed")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, time to finish the requests in progress")
	fs.DurationVar(&cfg.refresh, "refresh", mtasts.DefaultRefreshInterval, "proactive MTA-STS refresh interval (RFC 8461 10.2); 0 disables")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&cfg.check, "check", false, "run the start-up probe (DNSSEC support of the resolver) and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *configPath != "" {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if err := loadConfigFile(fs, *configPath, given); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// loadConfigFile sets the flags named in path's "name = value" lines,
// except those in skip. Blank lines and lines starting with "#" are
// ignored.
func loadConfigFile(fs *flag.FlagSet, path string, skip map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxConfigSize))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, found := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !found || name == "" {
			return fmt.Errorf("%s:%d: want \"name = value\"", path, n)
		}
		if name == "config" || fs.Lookup(name) == nil {
			return fmt.Errorf("%s:%d: unknown setting %q", path, n, name)
		}
		if skip[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %v", path, n, name, err)
		}
	}
	return sc.Err()
}

// run is main without os.Exit: it serves until ctx ends or SIGTERM/SIGINT
// arrives, and returns the exit code.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "postfix-tlspolicy:", err)
		return 2
	}
	logger, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "postfix-tlspolicy:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	ev, sts := newEvaluator(cfg, logger)
	probeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = ev.Check(probeCtx)
	cancel()
	if cfg.check {
		if err != nil {
			fmt.Fprintln(stderr, "postfix-tlspolicy: DANE cannot work with this resolver:", err)
			return 1
		}
		fmt.Fprintln(stderr, "postfix-tlspolicy: the resolver validates DNSSEC; DANE decisions are possible")
		return 0
	}
	if err != nil {
		if !cfg.allowNoDANE {
			logger.Error("refusing to start: the resolver cannot support DANE, so DANE domains would get MTA-STS answers; run a local validating resolver (the one Postfix uses), or pass -allow-no-dane", "error", err)
			return 1
		}
		logger.Warn("DANE is off: the resolver cannot validate DNSSEC (-allow-no-dane)", "error", err)
		ev = &smtptls.Evaluator{Resolver: ev.Resolver, STS: sts, Logger: logger, DisableDANE: true}
	}

	l, err := listen(cfg)
	if err != nil {
		logger.Error("cannot listen", "listen", cfg.listen, "error", err)
		return 1
	}
	resp := &Responder{Evaluator: ev, Testing: cfg.testing, Match: cfg.match, Mixed: cfg.mixed, NoSNI: !cfg.sni, Logger: logger}
	srv := &Server{
		Lookup:       resp.Lookup,
		MaxConns:     cfg.maxConns,
		MaxInflight:  cfg.maxInflight,
		MaxRequest:   cfg.maxRequest,
		QueryTimeout: cfg.queryTimeout,
		ReadTimeout:  cfg.readTimeout,
		IdleTimeout:  cfg.idleTimeout,
		Logger:       logger,
	}
	if cfg.mapNames != "" {
		for n := range strings.SplitSeq(cfg.mapNames, ",") {
			if n = strings.TrimSpace(n); n != "" {
				srv.MapNames = append(srv.MapNames, n)
			}
		}
	}
	if cfg.refresh > 0 {
		go sts.RefreshLoop(ctx, cfg.refresh)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	logger.Info("serving", "listen", cfg.listen, "maps", cfg.mapNames, "cache_dir", cfg.cacheDir,
		"testing", cfg.testing.String(), "match", cfg.match.String(), "mixed", cfg.mixed.String())

	select {
	case err := <-served:
		logger.Error("serving failed", "error", err)
		return 1
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining connections", "timeout", cfg.drainTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		logger.Warn("drain timed out; closed the remaining connections", "error", err)
	}
	<-served
	logger.Info("stopped")
	return 0
}

func newLogger(cfg *config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format: want text or json, not %q", cfg.logFormat)
}

// newEvaluator wires the library: one cached resolver for DNS (DANE and
// the MTA-STS TXT records), an MTA-STS client with a DirCache.
func newEvaluator(cfg *config, logger *slog.Logger) (*smtptls.Evaluator, *mtasts.Client) {
	stub := &resolver.Stub{TrustAD: cfg.trustAD}
	for s := range strings.SplitSeq(cfg.dns, ",") {
		if s = strings.TrimSpace(s); s != "" {
			stub.Servers = append(stub.Servers, s)
		}
	}
	res := &resolver.Cache{Resolver: stub}
	sts := &mtasts.Client{Resolver: res, Logger: logger}
	if cfg.cacheDir != "" {
		sts.Cache = mtasts.DirCache(cfg.cacheDir)
	}
	return &smtptls.Evaluator{Resolver: res, STS: sts, Logger: logger}, sts
}

// listen opens "inet:host:port" or "unix:/path" (Postfix's notation).
func listen(cfg *config) (net.Listener, error) {
	kind, addr, _ := strings.Cut(cfg.listen, ":")
	switch kind {
	case "inet":
		return net.Listen("tcp", addr)
	case "unix":
		mode, err := strconv.ParseUint(cfg.socketMode, 8, 32)
		if err != nil || mode > 0o777 {
			return nil, fmt.Errorf("-socket-mode: bad octal mode %q", cfg.socketMode)
		}
		if !filepath.IsAbs(addr) {
			return nil, fmt.Errorf("unix socket path must be absolute: %q", addr)
		}
		// A socket left by a crash: remove it, but never another file.
		if st, err := os.Lstat(addr); err == nil && st.Mode().Type() == fs.ModeSocket {
			os.Remove(addr)
		}
		l, err := net.Listen("unix", addr)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(addr, fs.FileMode(mode)); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	}
	return nil, fmt.Errorf("-listen: want inet:HOST:PORT or unix:PATH, not %q", cfg.listen)
}

// Set parses "notfound" or "enforce" (flag.Value).
func (m *TestingMode) Set(s string) error {
	switch s {
	case "notfound":
		*m = TestingNotFound
	case "enforce":
		*m = TestingEnforce
	default:
		return fmt.Errorf("want notfound or enforce")
	}
	return nil
}

// String returns the flag spelling of m.
func (m TestingMode) String() string {
	if m == TestingEnforce {
		return "enforce"
	}
	return "notfound"
}

// Set parses "mx" or "policy" (flag.Value).
func (m *MatchMode) Set(s string) error {
	switch s {
	case "mx":
		*m = MatchMX
	case "policy":
		*m = MatchPolicy
	default:
		return fmt.Errorf("want mx or policy")
	}
	return nil
}

// String returns the flag spelling of m.
func (m MatchMode) String() string {
	if m == MatchPolicy {
		return "policy"
	}
	return "mx"
}

// Set parses "dane" or "dane-only" (flag.Value).
func (m *MixedMode) Set(s string) error {
	switch s {
	case "dane":
		*m = MixedDANE
	case "dane-only":
		*m = MixedDANEOnly
	default:
		return fmt.Errorf("want dane or dane-only")
	}
	return nil
}

// String returns the flag spelling of m.
func (m MixedMode) String() string {
	if m == MixedDANEOnly {
		return "dane-only"
	}
	return "dane"
}
