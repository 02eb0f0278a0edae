package smtptls_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"

	"github.com/miekg/dns"
	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/smtptlstest"
)

// An Evaluator decides, for each MX host of a recipient domain, what TLS
// the delivery requires. Here it runs against an offline world built with
// the test kit smtptlstest (signed DNS, a test CA, MTA-STS and SMTP servers
// on loopback): one domain protected by DANE, one by MTA-STS alone.
func ExampleEvaluator_Evaluate() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	w.AddDomain("dane.example", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, MX: 2})
	w.AddDomain("sts.example", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})

	// The zero Evaluator validates DNSSEC itself and trusts the system
	// roots; World.Evaluator points one at the world instead.
	ev := w.Evaluator()
	for _, domain := range []string{"dane.example", "sts.example"} {
		dec, err := ev.Evaluate(context.Background(), domain)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, h := range dec.Deliverable() { // the hosts to try, in order
			fmt.Println(h.Name, h.Level)
		}
	}
	// Output:
	// mx1.dane.example dane
	// mx2.dane.example dane
	// mx1.sts.example sts-enforce
}

// Deliverable is the list of hosts an MTA may try, in order; Hosts also
// holds the unusable ones, with Err set, for TLS-RPT. Here the TLSA lookup
// of the first MX host fails: it must not be used (RFC 7672 2.1.2).
func ExampleDecision_Deliverable() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	w.AddDomain("example.org", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, MX: 2})
	w.SetFault("_25._tcp.mx1.example.org", dns.TypeTLSA, smtptlstest.FaultServFail)

	dec, err := w.Evaluator().Evaluate(context.Background(), "example.org")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range dec.Hosts {
		if h.Err != nil {
			var e *smtptls.Error
			if errors.As(h.Err, &e) {
				fmt.Println("unusable:", h.Name, e.Kind, e.Result)
			}
		}
	}
	for _, h := range dec.Deliverable() {
		fmt.Println("deliverable:", h.Name, h.Level, h.Addrs)
	}
	// Output:
	// unusable: mx1.example.org host lookup failed dnssec-invalid
	// deliverable: mx2.example.org dane [127.0.0.3]
}

// TLSConfig is the *tls.Config for the STARTTLS handshake with a host: the
// SNI name (the TLSA base domain under DANE) and a VerifyConnection hook
// that aborts the handshake when the host's authentication fails, resumed
// sessions included.
func ExampleHost_TLSConfig() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	w.AddDomain("example.org", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})

	dec, err := w.Evaluator().Evaluate(context.Background(), "example.org")
	if err != nil {
		fmt.Println(err)
		return
	}
	h := dec.Deliverable()[0]
	cfg := h.TLSConfig(nil)
	fmt.Println(cfg.ServerName, cfg.VerifyConnection != nil)

	// The greeting, EHLO and STARTTLS, then the handshake with cfg.
	conn, err := w.DialContext(context.Background(), "tcp", net.JoinHostPort(h.Addrs[0].String(), "25"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	tp := textproto.NewConn(conn)
	for _, step := range []struct {
		cmd  string
		code int
	}{{"", 220}, {"EHLO client.example", 250}, {"STARTTLS", 220}} {
		if step.cmd != "" {
			tp.Cmd("%s", step.cmd)
		}
		if _, _, err := tp.ReadResponse(step.code); err != nil {
			fmt.Println(err)
			return
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		fmt.Println(err) // a DANE failure ends here
		return
	}
	verdict, err := h.Verify(tc.ConnectionState())
	fmt.Println(verdict, err)
	// Output:
	// mx1.example.org true
	// verified <nil>
}

// ParseOverride reads an operator policy in the vocabulary of Postfix's
// smtp_tls_policy_maps, for Evaluator.Overrides.
func ExampleParseOverride() {
	for _, s := range []string{"dane-only", "secure match=example.com:.example.com", "encrypt"} {
		o, err := smtptls.ParseOverride(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(o.Mode, o.Match)
	}
	if _, err := smtptls.ParseOverride("bogus"); err != nil {
		fmt.Println("bogus: rejected")
	}
	// Output:
	// dane-only []
	// secure [example.com .example.com]
	// encrypt []
	// bogus: rejected
}
