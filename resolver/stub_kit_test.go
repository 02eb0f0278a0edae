package resolver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestStubWithKit is a downstream-style test: it uses only the public API
// of smtptlstest, as a user of this module testing a Stub-based MTA would.
func TestStubWithKit(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	s := w.AddZone("signed.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3})
	u := w.AddZone("unsigned.test", smtptlstest.ZoneConfig{})
	s.MustAdd(
		"mx A 192.0.2.1",
		"www CNAME mx",
		"out CNAME host.unsigned.test.",
		"big TXT \""+string(make([]byte, 200))+"\"",
		"trunc A 192.0.2.7",
		"spoofed A 192.0.2.8",
	)
	u.MustAdd("host A 192.0.2.2", "back CNAME mx.signed.test.")
	w.SetFault("trunc.signed.test", dns.TypeA, smtptlstest.FaultTruncate)
	w.SetFault("spoofed.signed.test", dns.TypeA, smtptlstest.FaultWrongID)
	w.SetFault("broken.signed.test", 0, smtptlstest.FaultServFail)
	w.SetFault("bogus.signed.test", 0, smtptlstest.FaultBadSignature)
	s.MustAdd("bogus A 192.0.2.9")
	r := w.Resolver()
	ctx := context.Background()

	for _, c := range []struct {
		name   string
		qtype  uint16
		n      int
		sec    resolver.Security
		nx     bool
		chain  int
		kind   resolver.Kind
		reason string
	}{
		{name: "mx.signed.test", qtype: dns.TypeA, n: 1, sec: resolver.Secure, reason: "secure answer"},
		{name: "www.signed.test", qtype: dns.TypeA, n: 1, sec: resolver.Secure, chain: 1, reason: "secure CNAME chain"},
		{name: "out.signed.test", qtype: dns.TypeA, n: 1, sec: resolver.Insecure, chain: 1, reason: "chain into an unsigned zone: insecure link"},
		{name: "back.unsigned.test", qtype: dns.TypeA, n: 1, sec: resolver.Insecure, chain: 1, reason: "chain from an unsigned zone"},
		{name: "nosuch.signed.test", qtype: dns.TypeA, sec: resolver.Secure, nx: true, reason: "secure NXDOMAIN"},
		{name: "mx.signed.test", qtype: dns.TypeTLSA, sec: resolver.Secure, reason: "secure NODATA"},
		{name: "nosuch.unsigned.test", qtype: dns.TypeA, sec: resolver.Insecure, nx: true, reason: "insecure NXDOMAIN"},
		{name: "trunc.signed.test", qtype: dns.TypeA, n: 1, sec: resolver.Secure, reason: "TC over UDP, retried over TCP"},
		{name: "spoofed.signed.test", qtype: dns.TypeA, n: 1, sec: resolver.Secure, reason: "wrong-ID and wrong-question replies ignored"},
		{name: "broken.signed.test", qtype: dns.TypeA, kind: resolver.KindServFail, reason: "SERVFAIL is an error, never insecure"},
		{name: "bogus.signed.test", qtype: dns.TypeA, kind: resolver.KindServFail, reason: "a bogus answer (SERVFAIL from the validator) is an error"},
	} {
		t.Run(c.reason, func(t *testing.T) {
			a, err := r.Lookup(ctx, c.name, c.qtype)
			if c.kind != 0 {
				var e *resolver.Error
				if !errors.As(err, &e) || e.Kind != c.kind || a != nil {
					t.Fatalf("got %v, %v; want a %v error", a, err, c.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Records) != c.n || a.Security != c.sec || a.NXDomain != c.nx || len(a.CNAMEs) != c.chain {
				t.Errorf("records %d security %v nx %v chain %v", len(a.Records), a.Security, a.NXDomain, a.CNAMEs)
			}
		})
	}

	t.Run("timeout via context", func(t *testing.T) {
		w.SetFault("silent.signed.test", 0, smtptlstest.FaultTimeout)
		ctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := r.Lookup(ctx, "silent.signed.test", dns.TypeA)
		var e *resolver.Error
		if !errors.As(err, &e) || e.Kind != resolver.KindTimeout || time.Since(start) > 2*time.Second {
			t.Errorf("err %v after %v", err, time.Since(start))
		}
	})
}
