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
	ev := demoworld.Evaluator(w, logger)
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
		r := deliver(ctx, w, ev, c.Domain)
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
