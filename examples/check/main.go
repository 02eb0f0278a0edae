// Command check is a domain checker in the spirit of posttls-finger and
// danecheck: for a mail domain it shows the MX RRset and its DNSSEC
// status, each MX host's TLSA records and their usability, the MTA-STS
// record and policy (with lint warnings), then connects to every MX with
// STARTTLS and reports which TLSA records match, the WebPKI result, and
// the verdict smtptls would reach.
//
//	go run ./examples/check [-json] [-resolver validating|HOST:PORT] [-timeout 60s] domain...
//	go run ./examples/check -demo [-json] [domain...]   # against the offline demo world
//
// Before any domain, the checker runs the start-up probe an MTA runs
// (smtptls.Evaluator.Check): with a resolver through which DANE cannot
// work (DNSSEC records blocked or stripped, a resolver that does not
// validate, no network), every answer would look bogus or insecure, so
// the checker says what the probe found instead and exits 2.
//
// For each host with usable TLSA records that presents a certificate, the
// checker names the TLSA rollover scheme it publishes ("current+next",
// "current+issuer", "issuer-only", "none", "no-match"; see package
// examples/internal/rollover) and warns when a key or CA change would
// break DANE delivery, such as with a single "3 1 1" record.
//
// A host that must not be used (a failed or bogus lookup, excluded by an
// MTA-STS enforce policy) is shown with level "unusable", as the demo
// shows it. With -json, lists are [] when empty, never null.
//
// Exit codes: 0 every usable host passed its policy; 1 some host failed its
// policy (or no host is usable); 2 the domain could not be evaluated (DNS
// failure, no such domain, null MX) or the resolver cannot support DANE;
// 3 usage error. With -demo, some domains fail by design (each shows a
// rule): the last line says whether every result was the intended one.
package main

import (
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
	"os"
	"strings"
	"time"

	"github.com/smtptls/smtptls/examples/internal/resolvercheck"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/examples/internal/demoworld"
	"github.com/smtptls/smtptls/examples/internal/rollover"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsverify"
)

// Report is the checker's JSON output for one domain.
type Report struct {
	Domain   string       `json:"domain"`
	Error    string       `json:"error,omitempty"`
	EDE      uint16       `json:"ede,omitempty"` // of a DNS failure (RFC 8914)
	MXSecure bool         `json:"mx_secure"`
	MXWhy    *Why         `json:"mx_insecure,omitempty"`
	Implicit bool         `json:"implicit_mx,omitempty"`
	STS      *STSReport   `json:"mta_sts,omitempty"`
	Hosts    []HostReport `json:"hosts"`
	OK       bool         `json:"ok"`
}

// STSReport describes the MTA-STS state of the domain.
type STSReport struct {
	Record     string   `json:"record_status"`
	ID         string   `json:"id,omitempty"`
	Mode       string   `json:"mode,omitempty"`
	MaxAge     string   `json:"max_age,omitempty"`
	MX         []string `json:"mx,omitempty"`
	Source     string   `json:"source,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	FetchError string   `json:"fetch_error,omitempty"`
}

// Why says why a DNS answer is Insecure: the Extended DNS Error code
// (RFC 8914) when one fits, and the resolver's reason naming the zone and
// the record.
type Why struct {
	EDE    uint16 `json:"ede,omitempty"`
	Reason string `json:"reason"`
}

// HostReport describes one MX host. Level is "unusable" for a host that
// must not be used (Unusable says why).
type HostReport struct {
	Name         string         `json:"name"`
	Preference   uint16         `json:"preference"`
	Addrs        []string       `json:"addrs"`
	AddrSecurity string         `json:"addr_security"`
	AddrWhy      *Why           `json:"addr_insecure,omitempty"`
	EDE          uint16         `json:"ede,omitempty"` // of the lookup failure that made the host unusable
	Level        string         `json:"level"`
	Unusable     string         `json:"unusable,omitempty"`
	TLSABase     string         `json:"tlsa_base,omitempty"`
	TLSA         []RecordReport `json:"tlsa,omitempty"`
	STARTTLS     *bool          `json:"starttls,omitempty"`
	TLSVersion   string         `json:"tls_version,omitempty"`
	Chain        []string       `json:"chain,omitempty"`
	WebPKI       string         `json:"webpki,omitempty"`
	Verdict      string         `json:"verdict,omitempty"`
	Result       string         `json:"tlsrpt_result,omitempty"`
	// Rollover is the TLSA rollover scheme judged against the live
	// certificate, for a host with usable TLSA records; RolloverWarning
	// says what a key or CA change would break, when it would.
	Rollover        string `json:"tlsa_rollover,omitempty"`
	RolloverWarning string `json:"tlsa_rollover_warning,omitempty"`
	Error           string `json:"error,omitempty"`
	OK              bool   `json:"ok"`
}

// RecordReport is one TLSA record with its status and match.
type RecordReport struct {
	Record string `json:"record"`
	Status string `json:"status"`
	Match  string `json:"match,omitempty"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, hooks{}))
}

// hooks are what tests replace: the upstream servers of the in-process
// validator (nil: /etc/resolv.conf's), or a whole World's Evaluator and
// dialler instead of the Internet's.
type hooks struct {
	servers []string
	ev      *smtptls.Evaluator
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

type options struct {
	asJSON, demo bool
	resolver     string
	timeout      time.Duration
}

// newFlags defines the command's flags on a new FlagSet writing to stderr.
func newFlags(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: check [flags] domain...\n       check -demo [flags] [domain...]\nflags:")
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON array of reports")
	fs.StringVar(&o.resolver, "resolver", "validating", `"validating" (in-process DNSSEC validation over /etc/resolv.conf), or HOST:PORT of a validating resolver whose AD bit is trusted`)
	fs.BoolVar(&o.demo, "demo", false, "check domains of the offline demo world (all of them when none is given)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "time limit per domain (and for the start-up probe)")
	return fs
}

func run(args []string, stdout, stderr io.Writer, hk hooks) int {
	var o options
	fs := newFlags(&o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 3
	}
	domains := fs.Args()
	ctx := context.Background()
	ev, dial := hk.ev, hk.dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 20 * time.Second}).DialContext
	}
	switch {
	case ev != nil:
	case o.demo:
		w := smtptlstest.NewWorld()
		defer w.Close()
		demoworld.Build(w)
		ev = w.Evaluator()
		ev.Logger = slog.New(slog.DiscardHandler)
		ev.STS.Logger = ev.Logger
		dial = w.DialContext
		if len(domains) == 0 {
			for _, c := range demoworld.Cases {
				domains = append(domains, c.Domain)
			}
		}
	default:
		var r resolver.Resolver = &resolver.Validating{Servers: hk.servers}
		if o.resolver != "validating" {
			if _, _, err := net.SplitHostPort(o.resolver); err != nil {
				fmt.Fprintln(stderr, "check: -resolver:", err)
				return 3
			}
			r = &resolver.Stub{Servers: []string{o.resolver}, TrustAD: true}
		}
		r = &resolver.Cache{Resolver: r}
		ev = &smtptls.Evaluator{Resolver: r, STS: &mtasts.Client{Resolver: r}, Logger: slog.New(slog.DiscardHandler)}
	}
	if len(domains) == 0 {
		fs.Usage()
		return 3
	}
	reports := []Report{}
	code := 0
	// The start-up probe first: through a resolver that cannot support
	// DANE, every domain would show a misleading bogus or insecure MX.
	pctx, cancel := context.WithTimeout(ctx, o.timeout)
	err := ev.Check(pctx)
	cancel()
	if err != nil {
		msg := "the resolver cannot support DANE, so no domain can be checked: " + resolvercheck.Finding(err)
		fmt.Fprintln(stderr, "check:", msg)
		fmt.Fprintln(stderr, `check: use a network that passes DNSSEC records, or -resolver HOST:PORT with a validating resolver`)
		for _, d := range domains {
			reports = append(reports, Report{Domain: d, Error: msg, Hosts: []HostReport{}})
		}
		code = 2
	} else {
		for _, d := range domains {
			dctx, cancel := context.WithTimeout(ctx, o.timeout)
			rep, c := check(dctx, ev, dial, d)
			cancel()
			code = max(code, c)
			reports = append(reports, rep)
			if !o.asJSON {
				printReport(stdout, rep)
			}
		}
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(reports)
	}
	if o.demo && hk.ev == nil && err == nil {
		w := stdout
		if o.asJSON {
			w = stderr // stdout is the JSON document
		}
		fmt.Fprintln(w, demoVerdict(reports))
	}
	return code
}

// demoVerdict is the last line of a -demo run: whether every domain's
// result is the one the demo world intends (deliverable domains pass, the
// others fail as their case says), so that the failures above read as the
// demonstrations they are.
func demoVerdict(reports []Report) string {
	intended := map[string]bool{}
	for _, c := range demoworld.Cases {
		intended[c.Domain] = c.Want == "delivered"
	}
	var wrong []string
	failures := 0
	for _, r := range reports {
		want, known := intended[r.Domain]
		if !r.OK {
			failures++
		}
		if known && r.OK != want {
			wrong = append(wrong, r.Domain)
		}
	}
	if len(wrong) > 0 {
		return fmt.Sprintf("demo: NOT as intended: %s", strings.Join(wrong, ", "))
	}
	return fmt.Sprintf("demo: %d of %d domains FAIL, each by design: every result above is the intended one (see the demo's WHY column: go run ./examples/demo)", failures, len(reports))
}

func check(ctx context.Context, ev *smtptls.Evaluator, dial func(context.Context, string, string) (net.Conn, error), domain string) (Report, int) {
	rep := Report{Domain: domain, Hosts: []HostReport{}}
	dec, err := ev.Evaluate(ctx, domain)
	if err != nil {
		rep.Error, rep.EDE = err.Error(), edeOf(err)
		return rep, 2
	}
	rep.Domain, rep.MXSecure, rep.Implicit = dec.Domain, dec.MXSecure, dec.ImplicitMX
	if !dec.MXSecure && !dec.Relay {
		rep.MXWhy = why(ctx, ev.Resolver, dec.Domain, dns.TypeMX)
	}
	if s := dec.STS; s != nil {
		sr := &STSReport{Record: s.RecordStatus.String(), ID: s.ID, Source: s.Source.String()}
		if s.Mode != "" {
			sr.Mode = string(s.Mode)
		}
		if p := s.Policy; p != nil {
			sr.MaxAge, sr.MX = p.MaxAge.String(), p.MX
		}
		for _, w := range s.Warnings {
			sr.Warnings = append(sr.Warnings, w.String())
		}
		if s.FetchError != nil {
			sr.FetchError = s.FetchError.Error()
		}
		rep.STS = sr
	}
	usable := 0
	allOK := true
	for _, h := range dec.Hosts {
		hr := checkHost(ctx, dial, ev.Roots, h)
		if h.Err == nil && h.AddrSecurity == resolver.Insecure {
			hr.AddrWhy = why(ctx, ev.Resolver, h.Name, dns.TypeA)
		}
		if h.Err == nil {
			usable++
			allOK = allOK && hr.OK
		}
		rep.Hosts = append(rep.Hosts, hr)
	}
	rep.OK = allOK && usable > 0
	if !rep.OK {
		return rep, 1
	}
	return rep, 0
}

func checkHost(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), roots *x509.CertPool, h *smtptls.Host) HostReport {
	hr := HostReport{Name: h.Name, Preference: h.Preference, Level: h.Level.String(), AddrSecurity: h.AddrSecurity.String(), Addrs: []string{}}
	if h.Err != nil {
		hr.Level = "unusable" // Level is meaningless then; the demo's word
	}
	for _, a := range h.Addrs {
		hr.Addrs = append(hr.Addrs, a.String())
	}
	if h.DANE != nil {
		hr.TLSABase = h.DANE.Base
		for _, r := range h.DANE.RRset {
			hr.TLSA = append(hr.TLSA, RecordReport{Record: r.String(), Status: r.Status().String()})
		}
	}
	if h.Err != nil {
		hr.Unusable, hr.EDE = h.Err.Error(), edeOf(h.Err)
		hr.Result = string(h.FailureResult(h.Err))
		return hr
	}
	if len(h.Addrs) == 0 {
		hr.Error = "no address"
		return hr
	}
	// Probe: take whatever the server presents, then judge it with the
	// host's verifiers; the handshake itself must not abort here.
	var cs tls.ConnectionState
	probe := tlsverify.Config(nil, h.ServerName(), captureVerifier{&cs})
	conn, err := dial(ctx, "tcp", net.JoinHostPort(h.Addrs[0].String(), "25"))
	if err != nil {
		hr.Error = err.Error()
		return hr
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("check.smtptls.invalid"); err != nil {
		hr.Error = err.Error()
		return hr
	}
	offered, _ := c.Extension("STARTTLS")
	hr.STARTTLS = &offered
	c.Quit()
	if !offered {
		hr.Result = string(h.FailureResult(h.STARTTLSNotOffered()))
		hr.OK = !h.RequireTLS()
		hr.Verdict = "cleartext"
		return hr
	}
	conn, err = dial(ctx, "tcp", net.JoinHostPort(h.Addrs[0].String(), "25"))
	if err != nil {
		hr.Error = err.Error()
		return hr
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	tc, err := smtp.NewClientStartTLS(conn, probe)
	if err == nil {
		defer tc.Close()
		err = tc.Hello("check.smtptls.invalid")
	} else {
		conn.Close()
	}
	if err != nil {
		hr.Error = "TLS handshake: " + err.Error()
		hr.Result = string(h.FailureResult(err))
		return hr
	}
	tc.Quit()
	hr.TLSVersion = tls.VersionName(cs.Version)
	for _, cert := range cs.PeerCertificates {
		hr.Chain = append(hr.Chain, describe(cert))
	}
	if h.DANE != nil {
		for i, r := range h.DANE.RRset {
			if !r.Usable() {
				continue
			}
			v := &tlsverify.DANE{Records: []tlsverify.TLSA{r}, Names: []string{h.DANE.Base, h.Name}}
			if m, err := v.VerifyChain(cs.PeerCertificates); err == nil {
				hr.TLSA[i].Match = fmt.Sprintf("matches at depth %d", m.Depth)
			} else {
				hr.TLSA[i].Match = "no: " + err.Error()
			}
		}
		if len(h.DANE.Records) > 0 {
			sc := rollover.Of(h.DANE.Records, []string{h.DANE.Base, h.Name}, h.DANE.DigestPreference, cs.PeerCertificates)
			hr.Rollover, hr.RolloverWarning = string(sc), rollover.Advice(sc)
		}
	}
	if err := (&tlsverify.PKIX{Roots: roots, Host: h.Name}).Verify(cs); err == nil {
		hr.WebPKI = "valid for " + h.Name
	} else {
		hr.WebPKI = err.Error()
	}
	verdict, verr := h.Verify(cs)
	hr.Verdict = verdict.String()
	if verr != nil {
		hr.Error = verr.Error()
		hr.Result = string(h.FailureResult(verr))
	}
	hr.OK = verr == nil || !h.Level.Authenticates()
	return hr
}

// why asks the resolver again (the Evaluator's Cache answers) why an
// answer is Insecure.
func why(ctx context.Context, r resolver.Resolver, name string, qtype uint16) *Why {
	if r == nil {
		return nil
	}
	a, err := r.Lookup(ctx, name, qtype)
	if err != nil || a.Security != resolver.Insecure {
		return nil
	}
	return &Why{EDE: a.EDE, Reason: a.Reason}
}

// edeOf returns the Extended DNS Error code of a resolver failure, or 0.
func edeOf(err error) uint16 {
	var e *resolver.Error
	if errors.As(err, &e) {
		return e.EDE
	}
	return 0
}

type captureVerifier struct{ cs *tls.ConnectionState }

func (c captureVerifier) Verify(cs tls.ConnectionState) error { *c.cs = cs; return nil }

func describe(c *x509.Certificate) string {
	s := "subject=" + c.Subject.String()
	if len(c.DNSNames) > 0 {
		s += " san=" + strings.Join(c.DNSNames, ",")
	}
	return s + " issuer=" + c.Issuer.String() + " notAfter=" + c.NotAfter.UTC().Format(time.DateOnly)
}

// edeText shows an Extended DNS Error code (RFC 8914) with its name.
func edeText(code uint16) string {
	if code == 0 {
		return ""
	}
	name := dns.ExtendedErrorCodeToString[code]
	if name == "" {
		name = "unassigned"
	}
	return fmt.Sprintf(" [EDE %d: %s]", code, name)
}

func printReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "== %s\n", r.Domain)
	if r.Error != "" {
		fmt.Fprintf(w, "   error: %s%s\n\n", r.Error, edeText(r.EDE))
		return
	}
	sec := "insecure"
	if r.MXSecure {
		sec = "secure (DNSSEC)"
	}
	fmt.Fprintf(w, "   MX RRset: %s%s\n", sec, map[bool]string{true: ", implicit MX", false: ""}[r.Implicit])
	if r.MXWhy != nil {
		fmt.Fprintf(w, "     insecure: %s%s\n", r.MXWhy.Reason, edeText(r.MXWhy.EDE))
	}
	if s := r.STS; s != nil {
		fmt.Fprintf(w, "   MTA-STS: record %s", s.Record)
		if s.Mode != "" {
			fmt.Fprintf(w, ", id %s, mode %s, max_age %s, mx %s (%s)", s.ID, s.Mode, s.MaxAge, strings.Join(s.MX, " "), s.Source)
		}
		fmt.Fprintln(w)
		for _, wn := range s.Warnings {
			fmt.Fprintf(w, "     warning: %s\n", wn)
		}
		if s.FetchError != "" {
			fmt.Fprintf(w, "     fetch error: %s\n", s.FetchError)
		}
	}
	for _, h := range r.Hosts {
		fmt.Fprintf(w, "   MX %d %s [%s] addresses %s: level %s\n", h.Preference, h.Name, strings.Join(h.Addrs, " "), h.AddrSecurity, h.Level)
		if h.AddrWhy != nil {
			fmt.Fprintf(w, "     insecure: %s%s\n", h.AddrWhy.Reason, edeText(h.AddrWhy.EDE))
		}
		if h.Unusable != "" {
			fmt.Fprintf(w, "     UNUSABLE: %s%s (tls-rpt %s)\n", h.Unusable, edeText(h.EDE), h.Result)
			continue
		}
		for _, t := range h.TLSA {
			fmt.Fprintf(w, "     TLSA %s [%s] %s\n", t.Record, t.Status, t.Match)
		}
		if h.STARTTLS != nil && !*h.STARTTLS {
			fmt.Fprintln(w, "     STARTTLS not offered")
		}
		if h.TLSVersion != "" {
			fmt.Fprintf(w, "     %s, WebPKI: %s\n", h.TLSVersion, h.WebPKI)
			for i, c := range h.Chain {
				fmt.Fprintf(w, "     cert[%d] %s\n", i, c)
			}
		}
		if h.Rollover != "" {
			fmt.Fprintf(w, "     TLSA rollover: %s\n", h.Rollover)
			if h.RolloverWarning != "" {
				fmt.Fprintf(w, "     WARNING: %s\n", h.RolloverWarning)
			}
		}
		fmt.Fprintf(w, "     verdict: %s", h.Verdict)
		if h.Result != "" {
			fmt.Fprintf(w, " (tls-rpt %s)", h.Result)
		}
		if h.Error != "" {
			fmt.Fprintf(w, ": %s", h.Error)
		}
		fmt.Fprintf(w, " -> %s\n", map[bool]string{true: "OK", false: "FAIL"}[h.OK])
	}
	fmt.Fprintf(w, "   result: %s\n\n", map[bool]string{true: "OK", false: "FAIL"}[r.OK])
}
