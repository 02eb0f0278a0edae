package smtptls_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// discard silences the Evaluators whose logs a test does not read.
var discard = slog.New(slog.DiscardHandler)

// world is a test world with helpers to publish DANE and MTA-STS domains.
type world struct {
	t *testing.T
	*smtptlstest.World
}

func newWorld(t *testing.T) *world { return &world{t, smtptlstest.New(t)} }

func (w *world) zone(name string, signed bool) *smtptlstest.Zone {
	cfg := smtptlstest.ZoneConfig{}
	if signed {
		cfg.Signing = smtptlstest.NSEC
	}
	return w.AddZone(name, cfg)
}

// mx starts an SMTP server for host with a CA-issued certificate and
// returns it with the certificate.
func (w *world) mx(host string) (*smtptlstest.SMTPServer, *tls.Certificate) {
	cert, err := w.CA().Issue(smtptlstest.CertOptions{}, host)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.AddMX(host, smtptlstest.SMTPConfig{Certificate: cert}), cert
}

// sts publishes an MTA-STS record and policy for domain in zone z.
func (w *world) sts(z *smtptlstest.Zone, domain, mode string, mx ...string) {
	z.MustAdd(`_mta-sts 300 IN TXT "v=STSv1; id=20261128"`)
	body := "version: STSv1\nmode: " + mode + "\nmax_age: 86400\n"
	for _, m := range mx {
		body += "mx: " + m + "\n"
	}
	w.SetPolicy(domain, smtptlstest.Policy{Body: body})
}

func (w *world) evaluator() *smtptls.Evaluator {
	return &smtptls.Evaluator{
		Resolver: w.Resolver(),
		STS:      &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient()},
		Roots:    w.CA().Pool(),
	}
}

// validatingEvaluator validates DNSSEC in-process (the Evaluator's
// default) over the world's DNS front, which then acts as a plain
// recursive resolver asked with CD=1.
func (w *world) validatingEvaluator() *smtptls.Evaluator {
	r := &resolver.Cache{Resolver: &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}}
	return &smtptls.Evaluator{
		Resolver: r,
		STS:      &mtasts.Client{Resolver: r, HTTPClient: w.HTTPClient()},
		Roots:    w.CA().Pool(),
	}
}

// sendResult is what one delivery attempt through a Host did.
type sendResult struct {
	verdict smtptls.Verdict // Failed for a cleartext session
	verr    error           // the verification error, for reporting
	err     error           // why the message was not delivered
	tls     bool
}

// send delivers a message via h the way an MTA would: STARTTLS when
// offered; cleartext only where the host's level allows it.
func send(ctx context.Context, w *smtptlstest.World, h *smtptls.Host, a smtptls.Attempt) sendResult {
	msg := "Subject: test\r\n\r\nhello\r\n"
	if a.TLSRequiredNo {
		msg = "TLS-Required: No\r\n" + msg
	}
	addr := net.JoinHostPort(h.Addrs[0].String(), "25")
	conn, err := w.DialContext(ctx, "tcp", addr)
	if err != nil {
		return sendResult{err: err}
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("sender.example"); err != nil {
		return sendResult{err: err}
	}
	var res sendResult
	if ok, _ := c.Extension("STARTTLS"); !ok || !h.UseTLS() {
		if h.UseTLS() && h.RequireTLSFor(a) {
			c.Quit()
			return sendResult{err: smtptls.ErrSTARTTLSNotOffered}
		}
		// Cleartext: no session to judge. Failed (and tls false), as
		// smtptlstest.Send reports it, never Encrypted.
		res.verdict = smtptls.Failed
	} else {
		// go-smtp's client starts TLS only on a fresh connection.
		c.Quit()
		conn, err = w.DialContext(ctx, "tcp", addr)
		if err != nil {
			return sendResult{err: err}
		}
		c, err = smtp.NewClientStartTLS(conn, h.TLSConfigFor(nil, a))
		if err == nil {
			err = c.Hello("sender.example")
		}
		if err != nil {
			return sendResult{err: err}
		}
		cs, ok := c.TLSConnectionState()
		if !ok {
			return sendResult{err: errors.New("no TLS session after STARTTLS")}
		}
		res.tls = true
		res.verdict, res.verr = h.Verify(cs)
	}
	if err := c.SendMail("sender@sender.example", []string{"rcpt@" + strings.TrimPrefix(h.Name, "mx.")}, strings.NewReader(msg)); err != nil {
		res.err = err
	}
	c.Quit()
	return res
}

// TestDecisionTable runs every row with the AD-trusting Stub and with the
// in-process validator.
func TestDecisionTable(t *testing.T) {
	t.Parallel()
	t.Run("stub", func(t *testing.T) { t.Parallel(); decisionTable(t, false) })
	t.Run("validating", func(t *testing.T) { t.Parallel(); decisionTable(t, true) })
}

func decisionTable(t *testing.T, validating bool) {
	w := newWorld(t)
	ctx := context.Background()

	// both.test: DANE-EE and MTA-STS enforce, both valid.
	z := w.zone("both.test", true)
	z.MustAdd("@ MX 10 mx.both.test.")
	bothMX, cert := w.mx("mx.both.test")
	z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx.both.test.", cert.Leaf, 3, 1, 1))
	w.sts(z, "both.test", "enforce", "mx.both.test")

	// danefail.test: the TLSA record does not match the (WebPKI-valid)
	// certificate, while MTA-STS enforce would accept it: must fail.
	z = w.zone("danefail.test", true)
	z.MustAdd("@ MX 10 mx.danefail.test.")
	failMX, _ := w.mx("mx.danefail.test")
	z.MustAdd("_25._tcp.mx 300 IN TLSA 3 1 1 " + strings.Repeat("ab", 32))
	w.sts(z, "danefail.test", "enforce", "mx.danefail.test")

	// stsmismatch.test: unsigned, MTA-STS enforce does not list the MX.
	z = w.zone("stsmismatch.test", false)
	z.MustAdd("@ MX 10 mx.stsmismatch.test.")
	w.mx("mx.stsmismatch.test")
	w.sts(z, "stsmismatch.test", "enforce", "mail.stsmismatch.test")

	// servfail.test: the first MX's TLSA lookup fails, the second is fine.
	z = w.zone("servfail.test", true)
	z.MustAdd("@ MX 10 mx1.servfail.test.", "@ MX 20 mx2.servfail.test.")
	_, c1 := w.mx("mx1.servfail.test")
	_, c2 := w.mx("mx2.servfail.test")
	z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx1.servfail.test.", c1.Leaf, 3, 1, 1),
		smtptlstest.TLSARecord("_25._tcp.mx2.servfail.test.", c2.Leaf, 3, 1, 1))
	w.SetFault("_25._tcp.mx1.servfail.test", dns.TypeTLSA, smtptlstest.FaultServFail)

	// insecuremx.test: unsigned MX RRset pointing at a host with DANE in
	// a signed zone; insecuremxsts.test: the same attacker-style MX, but
	// the domain's MTA-STS enforce policy lists only its real MX.
	hz := w.zone("signedhost.test", true)
	_, hc := w.mx("mx.signedhost.test")
	hz.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx.signedhost.test.", hc.Leaf, 3, 1, 1))
	z = w.zone("insecuremx.test", false)
	z.MustAdd("@ MX 10 mx.signedhost.test.")
	z = w.zone("insecuremxsts.test", false)
	z.MustAdd("@ MX 10 mx.signedhost.test.")
	w.sts(z, "insecuremxsts.test", "enforce", "mx.insecuremxsts.test")

	// nullmx.test, nodata.test (implicit MX), plain.test (no policy).
	w.zone("nullmx.test", true).MustAdd("@ MX 0 .")
	w.zone("nodata.test", true)
	w.mx("nodata.test")
	z = w.zone("plain.test", false)
	z.MustAdd("@ MX 10 mx.plain.test.")
	w.mx("mx.plain.test")

	// relay.test: a smart host with TLSA at port 587.
	z = w.zone("relay.test", true)
	_, rc := w.mx("smtp.relay.test")
	z.MustAdd(smtptlstest.TLSARecord("_587._tcp.smtp.relay.test.", rc.Leaf, 2, 1, 1))

	ev := w.evaluator()
	if validating {
		ev = w.validatingEvaluator()
		if err := ev.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	evaluate := func(t *testing.T, domain string) *smtptls.Decision {
		t.Helper()
		d, err := ev.Evaluate(ctx, domain)
		if err != nil {
			t.Fatalf("Evaluate(%s): %v", domain, err)
		}
		return d
	}
	only := func(t *testing.T, d *smtptls.Decision) *smtptls.Host {
		t.Helper()
		if len(d.Hosts) != 1 {
			t.Fatalf("%d hosts, want 1", len(d.Hosts))
		}
		return d.Hosts[0]
	}

	t.Run("dane and sts both valid", func(t *testing.T) {
		t.Parallel()
		d := evaluate(t, "Both.Test.")
		h := only(t, d)
		if !d.MXSecure || h.Level != smtptls.DANE || h.Err != nil {
			t.Fatalf("MXSecure=%v level=%v err=%v", d.MXSecure, h.Level, h.Err)
		}
		if d.STSPolicy() == nil || d.STSPolicy().Mode != mtasts.Enforce {
			t.Errorf("STS policy not found: %+v", d.STS)
		}
		r := send(ctx, w.World, h, smtptls.Attempt{})
		if r.err != nil || r.verdict != smtptls.Verified {
			t.Errorf("send: verdict %v err %v", r.verdict, r.err)
		}
		got := bothMX.Deliveries()
		if len(got) == 0 || !got[0].TLS || got[0].ServerName != "mx.both.test" {
			t.Errorf("server saw %+v; want a TLS delivery with SNI = the TLSA base domain", got)
		}
	})
	t.Run("dane failing while sts valid must fail", func(t *testing.T) {
		t.Parallel()
		h := only(t, evaluate(t, "danefail.test"))
		if h.Level != smtptls.DANE {
			t.Fatalf("level %v, want dane", h.Level)
		}
		r := send(ctx, w.World, h, smtptls.Attempt{})
		if r.err == nil {
			t.Fatal("delivered despite a DANE failure")
		}
		for _, dl := range failMX.Deliveries() {
			if !strings.Contains(string(dl.Data), "TLS-Required") {
				t.Fatalf("message delivered to the impostor: %+v", dl)
			}
		}
		if got := h.FailureResult(r.err); got != tlsrpt.ValidationFailure {
			t.Errorf("TLS-RPT result %q, want validation-failure", got)
		}
	})
	t.Run("sts enforce with non-matching mx", func(t *testing.T) {
		t.Parallel()
		d := evaluate(t, "stsmismatch.test")
		h := only(t, d)
		var e *smtptls.Error
		if !h.Excluded || !errors.As(h.Err, &e) || e.Kind != smtptls.KindNotInPolicy {
			t.Fatalf("excluded=%v err=%v", h.Excluded, h.Err)
		}
		if len(d.Deliverable()) != 0 {
			t.Error("a host outside the enforce policy is deliverable")
		}
	})
	t.Run("tlsa servfail on first mx", func(t *testing.T) {
		t.Parallel()
		d := evaluate(t, "servfail.test")
		if len(d.Hosts) != 2 || d.Hosts[0].Name != "mx1.servfail.test" {
			t.Fatalf("hosts %v", d.Hosts)
		}
		var e *smtptls.Error
		if !errors.As(d.Hosts[0].Err, &e) || e.Result != tlsrpt.DNSSECInvalid {
			t.Fatalf("first host err %v, want a dnssec-invalid host error", d.Hosts[0].Err)
		}
		del := d.Deliverable()
		if len(del) != 1 || del[0].Name != "mx2.servfail.test" || del[0].Level != smtptls.DANE {
			t.Fatalf("deliverable %v", del)
		}
		if r := send(ctx, w.World, del[0], smtptls.Attempt{}); r.err != nil || r.verdict != smtptls.Verified {
			t.Errorf("send via mx2: %v %v", r.verdict, r.err)
		}
	})
	t.Run("insecure mx with tlsa is trusted, not verified", func(t *testing.T) {
		t.Parallel()
		d := evaluate(t, "insecuremx.test")
		h := only(t, d)
		if d.MXSecure || h.Level != smtptls.DANE || h.Err != nil {
			t.Fatalf("MXSecure=%v level=%v err=%v", d.MXSecure, h.Level, h.Err)
		}
		if r := send(ctx, w.World, h, smtptls.Attempt{}); r.err != nil || r.verdict != smtptls.Trusted {
			t.Errorf("send: %v %v, want trusted", r.verdict, r.err)
		}
	})
	t.Run("insecure mx with tlsa outside an sts enforce policy must fail", func(t *testing.T) {
		t.Parallel()
		d := evaluate(t, "insecuremxsts.test")
		h := only(t, d)
		if !h.Excluded || len(d.Deliverable()) != 0 {
			t.Fatalf("attacker's MX accepted: level=%v err=%v", h.Level, h.Err)
		}
	})
	t.Run("null mx", func(t *testing.T) {
		t.Parallel()
		if _, err := ev.Evaluate(ctx, "nullmx.test"); !errors.Is(err, smtptls.ErrNullMX) {
			t.Errorf("err %v, want ErrNullMX", err)
		}
	})
	t.Run("mx nxdomain vs nodata", func(t *testing.T) {
		t.Parallel()
		if _, err := ev.Evaluate(ctx, "nosuch.test"); !errors.Is(err, smtptls.ErrNoSuchDomain) {
			t.Errorf("nxdomain: err %v, want ErrNoSuchDomain", err)
		}
		d := evaluate(t, "nodata.test")
		h := only(t, d)
		if !d.ImplicitMX || h.Name != "nodata.test" || h.Err != nil || len(h.Addrs) == 0 {
			t.Fatalf("implicit MX: %+v", h)
		}
		if r := send(ctx, w.World, h, smtptls.Attempt{}); r.err != nil || !r.tls || r.verdict != smtptls.Encrypted {
			t.Errorf("send: tls %v verdict %v err %v", r.tls, r.verdict, r.err)
		}
	})
	t.Run("tls-required no", func(t *testing.T) {
		t.Parallel()
		h := only(t, evaluate(t, "danefail.test"))
		r := send(ctx, w.World, h, smtptls.Attempt{TLSRequiredNo: true})
		if r.err != nil || !r.tls {
			t.Fatalf("TLS-Required: No: err %v tls %v", r.err, r.tls)
		}
		if r.verdict != smtptls.Failed || h.FailureResult(r.verr) != tlsrpt.ValidationFailure {
			t.Errorf("verdict %v (%v): the failure must still be reported", r.verdict, r.verr)
		}
	})
	t.Run("requiretls", func(t *testing.T) {
		t.Parallel()
		h := only(t, evaluate(t, "plain.test"))
		var e *smtptls.Error
		if err := h.CheckAttempt(smtptls.Attempt{RequireTLS: true}); !errors.As(err, &e) || e.Kind != smtptls.KindRequireTLS || e.EnhancedCode() != "5.7.30" {
			t.Errorf("REQUIRETLS via an unauthenticated MX: %v", err)
		}
		h = only(t, evaluate(t, "both.test"))
		if err := h.CheckAttempt(smtptls.Attempt{RequireTLS: true}); err != nil {
			t.Errorf("REQUIRETLS via DANE+secure MX: %v", err)
		}
		if r := send(ctx, w.World, h, smtptls.Attempt{RequireTLS: true}); r.err != nil || r.verdict != smtptls.Verified {
			t.Errorf("send: %v %v", r.verdict, r.err)
		}
	})
	t.Run("operator override", func(t *testing.T) {
		t.Parallel()
		o := w.evaluator()
		if validating {
			o = w.validatingEvaluator()
		}
		parse := func(s string) smtptls.Override {
			t.Helper()
			ov, err := smtptls.ParseOverride(s)
			if err != nil {
				t.Fatalf("ParseOverride(%q): %v", s, err)
			}
			return ov
		}
		do := parse("dane-only")
		o.Overrides = map[string]smtptls.Override{"both.test": do, "nodata.test": do,
			"PLAIN.test": parse("secure match=.plain.test"), "stsmismatch.test": parse("none")}
		evaluate := func(domain string) *smtptls.Decision {
			t.Helper()
			d, err := o.Evaluate(ctx, domain)
			if err != nil {
				t.Fatalf("Evaluate(%s): %v", domain, err)
			}
			return d
		}
		var e *smtptls.Error
		if h := only(t, evaluate("nodata.test")); !errors.As(h.Err, &e) || e.Result != tlsrpt.DANERequired {
			t.Errorf("dane-only without TLSA: %v", h.Err)
		}
		d := evaluate("both.test")
		if h := only(t, d); h.Level != smtptls.DANE || d.STS != nil {
			t.Errorf("dane-only with TLSA: level %v, STS consulted %v", h.Level, d.STS != nil)
		}
		h := only(t, evaluate("plain.test"))
		if h.Level != smtptls.PKIX {
			t.Fatalf("secure: level %v", h.Level)
		}
		if r := send(ctx, w.World, h, smtptls.Attempt{}); r.err != nil || !r.tls || r.verdict != smtptls.Verified {
			t.Errorf("send: %v %v", r.verdict, r.err)
		}
		// "none" wins over the enforce policy: cleartext although the
		// server offers STARTTLS, and no verdict claims encryption.
		h = only(t, evaluate("stsmismatch.test"))
		if h.Level != smtptls.NoTLS || h.Err != nil {
			t.Fatalf("none: level %v err %v", h.Level, h.Err)
		}
		if r := send(ctx, w.World, h, smtptls.Attempt{}); r.err != nil || r.tls || r.verdict != smtptls.Failed {
			t.Errorf("none: send: tls %v verdict %v err %v; want a cleartext delivery", r.tls, r.verdict, r.err)
		}
	})
	t.Run("relay with port", func(t *testing.T) {
		t.Parallel()
		d, err := ev.EvaluateRelay(ctx, "SMTP.relay.test", 587)
		if err != nil {
			t.Fatal(err)
		}
		h := only(t, d)
		if !d.Relay || h.Level != smtptls.DANE || h.DANE.TLSAName != "_587._tcp.smtp.relay.test" {
			t.Fatalf("relay: level %v policy %+v", h.Level, h.DANE)
		}
	})
}

// TestEvaluateNameWithoutMTASTS: a domain with an underscore is a mail
// domain (dnsname.Mail accepts '_' as Postfix does): Evaluate decides,
// and without a published policy none applies.
func TestEvaluateNameWithoutMTASTS(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("odd.test", smtptlstest.ZoneConfig{})
	w.AddMX("mx.odd.test", smtptlstest.SMTPConfig{})
	z.MustAdd("under_score MX 10 mx.odd.test.")
	ev := &smtptls.Evaluator{Resolver: w.Resolver(), STS: &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: discard}, Roots: w.CA().Pool(), Logger: discard}
	d, err := ev.Evaluate(context.Background(), "under_score.odd.test")
	if err != nil {
		t.Fatal(err)
	}
	if d.STS != nil && d.STS.Policy != nil || len(d.Deliverable()) != 1 {
		t.Errorf("decision %+v", d)
	}
}
