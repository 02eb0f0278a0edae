package smtptlstest

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
)

// Evaluator returns an Evaluator pointed at the World, as an MTA's would
// be at the Internet: a resolver.Cache over a resolver.Validating that
// asks the World's DNS front and validates DNSSEC in-process from the
// World's root (Anchors), an MTA-STS client that fetches policies as the
// Evaluator's default does (an mtasts.FetchTransport: HTTP/1.1, X25519,
// one connection per fetch, the World's CA as its roots, mta-sts.<domain>
// resolved through that same resolver), and the World's CA as the WebPKI
// roots. Each call returns a
// new Evaluator with its own caches. Set its other fields (Overrides,
// Now, Logger, ...), and those of its STS client (an *mtasts.Client, for
// example its Logger), before its first use.
func (w *World) Evaluator() *smtptls.Evaluator {
	r := &resolver.Cache{Resolver: &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}}
	return &smtptls.Evaluator{
		Resolver: r,
		STS: &mtasts.Client{Resolver: r, HTTPClient: &http.Client{
			Transport: &mtasts.FetchTransport{RootCAs: w.CA().Pool(), DialContext: w.DialContextWith(r)},
			Timeout:   60 * time.Second,
		}},
		Roots: w.CA().Pool(),
	}
}

// Client returns a deliver.Client pointed at the World: Evaluator(), the
// World's DialContext, the EHLO name "client.smtptlstest.invalid" and a
// logger that discards. Set Reports, Timeouts and the rest before its
// first use.
func (w *World) Client() *deliver.Client {
	return &deliver.Client{
		Evaluator: w.Evaluator(),
		Dial:      w.DialContext,
		HelloName: "client.smtptlstest.invalid",
		Logger:    slog.New(slog.DiscardHandler),
	}
}
