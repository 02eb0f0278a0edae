// Command demo runs the main job of smtptls on an embedded offline world:
// it builds a dozen mail domains covering DANE, MTA-STS, both, neither and
// their failure modes (signed DNS, HTTPS policy hosts and STARTTLS SMTP
// servers, all on loopback), evaluates each domain, delivers a message
// through the chosen host with a real SMTP client, and prints a table of
// what happened with the TLS-RPT result of every failure.
//
// It exits 0 when every case behaves as the RFCs say, 1 otherwise.
//
//	go run ./examples/demo [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// A demo case: a domain built from a scenario and what must happen.
type demoCase struct {
	domain   string
	scenario smtptlstest.Scenario
	nullMX   bool
	want     string // delivered, deferred or bounced
	verdict  string // expected verdict of the delivering session, or ""
	result   tlsrpt.ResultType
	why      string
}

var cases = []demoCase{
	{domain: "dane-ee.test", scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity}, want: "delivered", verdict: "verified",
		why: "DANE-EE 3 1 1 matches the server key (RFC 7672 3.1.1)"},
	{domain: "dane-ta.test", scenario: smtptlstest.Scenario{DANE: smtptlstest.DANETrustAnchor, MX: 2}, want: "delivered", verdict: "verified",
		why: "DANE-TA 2 1 1 names the issuing CA; the leaf matches the MX name (RFC 7672 3.1.2)"},
	{domain: "sts-enforce.test", scenario: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true}, want: "delivered", verdict: "verified",
		why: "MTA-STS enforce: MX listed, WebPKI certificate valid (RFC 8461 4)"},
	{domain: "both.test", scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce}, want: "delivered", verdict: "verified",
		why: "DANE and MTA-STS both valid: DANE decides (RFC 8461 2)"},
	{domain: "plain.test", scenario: smtptlstest.Scenario{Unsigned: true}, want: "delivered", verdict: "encrypted",
		why: "neither DANE nor MTA-STS: opportunistic TLS (RFC 7435)"},
	{domain: "dane-unusable.test", scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEUnusable}, want: "delivered", verdict: "encrypted",
		why: "secure TLSA RRset with no usable record: TLS mandatory, no authentication (RFC 7672 2.2)"},
	{domain: "sts-testing.test", scenario: smtptlstest.Scenario{STS: smtptlstest.STSTesting, Unsigned: true, Misconfig: smtptlstest.MisWrongNameCert},
		want: "delivered", verdict: "failed", result: tlsrpt.CertificateHostMismatch,
		why: "MTA-STS testing: deliver anyway, report the failure (RFC 8461 5)"},
	{domain: "dane-mismatch.test", scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEMismatch, STS: smtptlstest.STSEnforce},
		want: "deferred", result: tlsrpt.ValidationFailure,
		why: "DANE fails; a valid MTA-STS policy must not rescue it (RFC 8461 2)"},
	{domain: "dane-stripped.test", scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisNoSTARTTLS},
		want: "deferred", result: tlsrpt.StartTLSNotSupported,
		why: "STARTTLS stripped under DANE: no cleartext fallback (RFC 7672 2.2)"},
	{domain: "sts-stripped.test", scenario: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisNoSTARTTLS},
		want: "deferred", result: tlsrpt.StartTLSNotSupported,
		why: "STARTTLS stripped under MTA-STS enforce (RFC 8461 5)"},
	{domain: "sts-mismatch.test", scenario: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSTSMXMismatch},
		want: "deferred", result: tlsrpt.ValidationFailure,
		why: "MTA-STS enforce: the MX is not in the policy (RFC 8461 4.1)"},
	{domain: "tlsa-servfail.test", scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisTLSAServFail},
		want: "deferred", result: tlsrpt.DNSSECInvalid,
		why: "TLSA lookup fails: the host must not be used (RFC 7672 2.1.2)"},
	{domain: "nullmx.test", nullMX: true, want: "bounced",
		why: "null MX: the domain accepts no mail (RFC 7505)"},
}

func main() {
	verbose := flag.Bool("v", false, "log library warnings")
	flag.Parse()
	os.Exit(run(os.Stdout, *verbose))
}

func run(out io.Writer, verbose bool) int {
	start := time.Now()
	w := smtptlstest.NewWorld()
	defer w.Close()
	for _, c := range cases {
		if c.nullMX {
			w.AddZone(c.domain, smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("@ MX 0 .")
			continue
		}
		w.AddDomain(c.domain, c.scenario)
	}
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.Default()
	}
	ev := &smtptls.Evaluator{
		Resolver: w.Resolver(),
		STS:      &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: logger},
		Roots:    w.CA().Pool(),
		Logger:   logger,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ev.Check(ctx); err != nil {
		fmt.Fprintln(out, "resolver check failed:", err)
		return 1
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tMX\tMECHANISM\tOUTCOME\tVERDICT\tTLS-RPT\tOK\tWHY")
	failed := 0
	for _, c := range cases {
		r := deliver(ctx, w, ev, c.domain)
		ok := r.outcome == c.want && (c.verdict == "" || r.verdict == c.verdict) && r.result == c.result
		mark := "yes"
		if !ok {
			mark = "NO"
			failed++
		}
		res := string(r.result)
		if res == "" {
			res = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.domain, r.mx, r.mechanism, r.outcome, dash(r.verdict), res, mark, c.why)
		if !ok {
			fmt.Fprintf(tw, "\t\t\twant %s\t%s\t%s\t\t%v\n", c.want, dash(c.verdict), dash(string(c.result)), r.err)
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "\n%d cases, %d as the RFCs say, %d not, in %v\n", len(cases), len(cases)-failed, failed, time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		return 1
	}
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type result struct {
	mx, mechanism, outcome, verdict string
	result                          tlsrpt.ResultType
	err                             error
}

// deliver is the MTA's loop: evaluate, try the deliverable hosts in
// order, and stop at the first that accepts the message.
func deliver(ctx context.Context, w *smtptlstest.World, ev *smtptls.Evaluator, domain string) result {
	d, err := ev.Evaluate(ctx, domain)
	if err != nil {
		r := result{mx: "-", mechanism: "-", outcome: "deferred", err: err}
		if errors.Is(err, smtptls.ErrNullMX) || errors.Is(err, smtptls.ErrNoSuchDomain) {
			r.outcome = "bounced"
		}
		return r
	}
	r := result{outcome: "deferred", mx: "-", mechanism: "-"}
	for _, h := range d.Hosts {
		if h.Err != nil {
			if r.mx == "-" {
				r.mx, r.mechanism = h.Name, "unusable"
			}
			var e *smtptls.Error
			if errors.As(h.Err, &e) && r.result == "" {
				r.result = e.Result
			}
			r.err = h.Err
			continue
		}
		o := smtptlstest.Send(ctx, w.DialContext, h, 25, smtptls.Attempt{}, smtptlstest.Message{
			From: "demo@sender.test",
			To:   []string{"postmaster@" + domain},
			Data: []byte("From: demo@sender.test\r\nTo: postmaster@" + domain + "\r\nSubject: smtptls demo\r\n\r\nHello.\r\n"),
		})
		r.mx, r.mechanism = h.Name, h.Level.String()
		if o.Result != "" && r.result == "" {
			r.result = o.Result
		}
		if o.Delivered {
			r.outcome = "delivered"
			r.verdict = o.Verdict.String()
			if !o.TLS {
				r.verdict = "cleartext"
			}
			return r
		}
		r.err = o.Err
	}
	return r
}
