package smtptlstest

import (
	"log/slog"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
)

// Evaluator returns an Evaluator pointed at the World, as an MTA's would
// be at the Internet: a resolver.Cache over a resolver.Validating that
// asks the World's DNS front and validates DNSSEC in-process from the
// World's root (Anchors), an MTA-STS client that fetches policies through
// HTTPClient, and the World's CA as the WebPKI roots. Each call returns a
// new Evaluator with its own caches. Set its other fields (Overrides,
// Now, Logger, ...), and those of its STS client (an *mtasts.Client, for
// example its Logger), before its first use.
func (w *World) Evaluator() *smtptls.Evaluator {
	r := &resolver.Cache{Resolver: &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}}
	return &smtptls.Evaluator{
		Resolver: r,
		STS:      &mtasts.Client{Resolver: r, HTTPClient: w.HTTPClient()},
		Roots:    w.CA().Pool(),
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
