// Command deliver is a minimal sending MTA hop built on package deliver:
// for each recipient it makes one delivery attempt with
// deliver.Client.Deliver (which evaluates the DANE and MTA-STS policy,
// tries the MX hosts in order with the TLS requirement of each and
// records every session in a TLS-RPT Aggregator), prints the outcome,
// and finally prints the day's TLS-RPT reports as JSON.
//
//	go run ./examples/deliver -demo                      # every domain of the offline demo world
//	go run ./examples/deliver -demo -to a@dane-ee.test,b@sts-testing.test
//	go run ./examples/deliver -from me@example.org -to you@example.net < message.eml
//
// Exit codes: 0 every message delivered; 1 some message deferred or
// bounced; 3 usage error.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/examples/internal/demoworld"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deliver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "deliver inside the offline demo world")
	from := fs.String("from", "sender@sender.example", "envelope sender")
	to := fs.String("to", "", "comma-separated recipients (demo: every demo domain when empty)")
	tlsRequiredNo := fs.Bool("tls-required-no", false, `honour "TLS-Required: No" (RFC 8689): report but ignore DANE/MTA-STS failures`)
	if err := fs.Parse(args); err != nil {
		return 3
	}
	var rcpts []string
	for r := range strings.SplitSeq(*to, ",") {
		if r = strings.TrimSpace(r); r != "" {
			rcpts = append(rcpts, r)
		}
	}
	var (
		ev   *smtptls.Evaluator
		dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
		data []byte
	)
	if *demo {
		w := smtptlstest.NewWorld()
		defer w.Close()
		demoworld.Build(w)
		ev = w.Evaluator()
		ev.Logger = slog.New(slog.DiscardHandler)
		ev.STS.Logger = ev.Logger
		dial = w.DialContext
		if len(rcpts) == 0 {
			for _, c := range demoworld.Cases {
				rcpts = append(rcpts, "postmaster@"+c.Domain)
			}
		}
		data = []byte("From: " + *from + "\r\nSubject: smtptls deliver demo\r\n\r\nHello.\r\n")
	} else {
		if len(rcpts) == 0 {
			fmt.Fprintln(stderr, "usage: deliver -from ADDR -to ADDR[,ADDR...] < message")
			return 3
		}
		b, err := io.ReadAll(io.LimitReader(stdin, 32<<20))
		if err != nil {
			fmt.Fprintln(stderr, "deliver:", err)
			return 3
		}
		data = b
		r := &resolver.Cache{Resolver: &resolver.Validating{}}
		ev = &smtptls.Evaluator{Resolver: r, STS: &mtasts.Client{Resolver: r}}
	}
	agg := &tlsrpt.Aggregator{}
	client := &deliver.Client{Evaluator: ev, Reports: agg, Dial: dial, HelloName: "sender.example",
		Logger: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	code := 0
	// One column per field, as wide as its widest entry, however long
	// the addresses: the table is written when every attempt is done.
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, rcpt := range rcpts {
		if !strings.Contains(rcpt, "@") {
			fmt.Fprintf(stderr, "deliver: %q is not an address\n", rcpt)
			return 3
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		res, err := client.Deliver(dctx, &deliver.Message{From: *from, To: []string{rcpt},
			Body: bytes.NewReader(data), Size: int64(len(data)), TLSRequiredNo: *tlsRequiredNo})
		cancel()
		if err != nil {
			fmt.Fprintln(stderr, "deliver:", err)
			return 3
		}
		r := res.Rcpts[0]
		status := fmt.Sprintf("%s: %d %s %s", r.Status, r.Code, r.Enhanced, r.Text)
		if r.Status == deliver.Delivered {
			v := res.Verdict.String()
			if !res.TLS {
				v = "cleartext"
			}
			status = fmt.Sprintf("delivered via %s (%s)", res.Host, v)
		} else {
			code = 1
		}
		// A tab in a server's reply text would start a column of its own.
		fmt.Fprintf(tw, "%s\t%s\n", rcpt, strings.ReplaceAll(status, "\t", " "))
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintln(stderr, "deliver:", err)
		return 1
	}
	now := time.Now()
	for _, rep := range agg.Reports(now, "smtptls deliver example", "mailto:tlsrpt@sender.example") {
		b, err := rep.JSON()
		if err != nil {
			fmt.Fprintln(stderr, "deliver:", err)
			return 1
		}
		fmt.Fprintf(stdout, "\nTLS-RPT report %s:\n%s\n", rep.FileName("sender.example", false), b)
	}
	return code
}
