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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/examples/internal/demoworld"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

func main() {
	verbose := flag.Bool("v", false, "log library warnings")
	flag.Parse()
	os.Exit(run(os.Stdout, *verbose))
}

func run(out io.Writer, verbose bool) int {
	start := time.Now()
	w := smtptlstest.NewWorld()
	defer w.Close()
	demoworld.Build(w)
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.Default()
	}
	ev := w.Evaluator()
	ev.Logger, ev.STS.Logger = logger, logger
	client := w.Client()
	client.Evaluator = ev
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ev.Check(ctx); err != nil {
		fmt.Fprintln(out, "resolver check failed:", err)
		return 1
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tMX\tMECHANISM\tOUTCOME\tVERDICT\tTLS-RPT\tOK\tWHY")
	failed := 0
	for _, c := range demoworld.Cases {
		r := deliverTo(ctx, client, c.Domain)
		ok := r.outcome == c.Want && (c.Verdict == "" || r.verdict == c.Verdict) && r.result == c.Result
		mark := "yes"
		if !ok {
			mark = "NO"
			failed++
		}
		res := string(r.result)
		if res == "" {
			res = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Domain, r.mx, r.mechanism, r.outcome, dash(r.verdict), res, mark, c.Why)
		if !ok {
			fmt.Fprintf(tw, "\t\t\twant %s\t%s\t%s\t\t%v\n", c.Want, dash(c.Verdict), dash(string(c.Result)), r.err)
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "\n%d cases, %d as the RFCs say, %d not, in %v\n", len(demoworld.Cases), len(demoworld.Cases)-failed, failed, time.Since(start).Round(time.Millisecond))
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

// deliverTo is one delivery attempt with package deliver; the decision
// (from the Evaluator's cache) names the mechanism of the host used and
// the TLS-RPT result of an unusable host.
func deliverTo(ctx context.Context, c *deliver.Client, domain string) result {
	r := result{outcome: "deferred", mx: "-", mechanism: "-"}
	body := "From: demo@sender.test\r\nTo: postmaster@" + domain + "\r\nSubject: smtptls demo\r\n\r\nHello.\r\n"
	res, err := c.Deliver(ctx, &deliver.Message{From: "demo@sender.test", To: []string{"postmaster@" + domain},
		Body: strings.NewReader(body), Size: int64(len(body))})
	if err != nil {
		r.err = err
		return r
	}
	rc := res.Rcpts[0]
	r.outcome = rc.Status.String()
	if rc.Status != deliver.Delivered {
		r.err = errors.New(rc.Text)
	}
	for _, t := range res.Tries {
		if t.Result != "" && r.result == "" {
			r.result = t.Result
		}
	}
	d, err := c.Evaluator.Evaluate(ctx, domain)
	if err != nil {
		return r
	}
	for _, h := range d.Hosts {
		if h.Err != nil && len(res.Tries) == 0 {
			if r.mx == "-" {
				r.mx, r.mechanism = h.Name, "unusable"
			}
			var e *smtptls.Error
			if errors.As(h.Err, &e) && r.result == "" {
				r.result = e.Result
			}
		}
		if h.Err == nil && h.Name == res.Host {
			r.mx, r.mechanism = h.Name, h.Level.String()
		}
	}
	if rc.Status == deliver.Delivered {
		r.verdict = res.Verdict.String()
		if !res.TLS {
			r.verdict = "cleartext"
		}
	}
	return r
}
