// Command deliver is a minimal sending MTA hop built on smtptls and
// github.com/emersion/go-smtp: for each recipient domain it evaluates the
// DANE and MTA-STS policy, tries the MX hosts in order with the TLS
// requirement of each, records every session in a TLS-RPT Aggregator, and
// finally prints the day's TLS-RPT reports as JSON.
//
//	go run ./examples/deliver -demo                      # every domain of the offline demo world
//	go run ./examples/deliver -demo -to a@dane-ee.test,b@sts-testing.test
//	go run ./examples/deliver -from me@example.org -to you@example.net < message.eml
//
// The session logic is smtptlstest.Send, the project's reference client:
// copy it into an MTA as the pattern for STARTTLS with a smtptls.Host.
//
// Exit codes: 0 every message delivered; 1 some message deferred or
// bounced; 3 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/smtptls/smtptls"
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
		ev = demoworld.Evaluator(w, slog.New(slog.DiscardHandler))
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
	ctx := context.Background()
	code := 0
	for _, rcpt := range rcpts {
		_, domain, ok := strings.Cut(rcpt, "@")
		if !ok {
			fmt.Fprintf(stderr, "deliver: %q is not an address\n", rcpt)
			return 3
		}
		a := smtptls.Attempt{TLSRequiredNo: *tlsRequiredNo}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		status := deliver(dctx, ev, dial, agg, a, domain, smtptlstest.Message{From: *from, To: []string{rcpt}, Data: data})
		cancel()
		fmt.Fprintf(stdout, "%-28s %s\n", rcpt, status)
		if !strings.HasPrefix(status, "delivered") {
			code = 1
		}
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

// deliver is one message's trip: evaluate, then try hosts in order.
func deliver(ctx context.Context, ev *smtptls.Evaluator, dial func(context.Context, string, string) (net.Conn, error),
	agg *tlsrpt.Aggregator, a smtptls.Attempt, domain string, msg smtptlstest.Message) string {
	d, err := ev.Evaluate(ctx, domain)
	switch {
	case errors.Is(err, smtptls.ErrNullMX), errors.Is(err, smtptls.ErrNoSuchDomain):
		return "bounced: " + err.Error()
	case err != nil:
		return "deferred: " + err.Error()
	}
	now := time.Now()
	last := "no usable MX host"
	for _, h := range d.Hosts {
		if h.Err != nil {
			h.RecordSession(agg, a, netip0(h), h.Err, now)
			last = h.Err.Error()
			continue
		}
		o := smtptlstest.Send(ctx, dial, h, 25, a, msg)
		sessErr := o.Err
		if sessErr == nil {
			sessErr = o.VerifyErr // a delivered session that failed a check (testing)
		}
		h.RecordSession(agg, a, o.Addr, sessErr, now)
		if o.Delivered {
			v := o.Verdict.String()
			if !o.TLS {
				v = "cleartext"
			}
			return fmt.Sprintf("delivered via %s (%s, %s)", h.Name, h.Level, v)
		}
		last = fmt.Sprintf("%s: %v", h.Name, o.Err)
	}
	return "deferred: " + last
}

func netip0(h *smtptls.Host) (a netip.Addr) {
	if len(h.Addrs) > 0 {
		a = h.Addrs[0]
	}
	return a
}
