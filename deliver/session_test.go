package deliver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// TestHostsAndAddressesInOrder: a 4xx or 5xx greeting moves on to the
// next address; hosts are tried in MX order.
func TestHostsAndAddressesInOrder(t *testing.T) {
	t.Parallel()
	for _, greet := range []string{"421 4.3.2 busy", "554 5.7.1 go away"} {
		w := smtptlstest.New(t)
		d := w.AddDomain("two.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, MX: 2})
		d.MX[0].SetConfig(smtptlstest.SMTPConfig{Replies: map[string]string{"greeting": greet}})
		res := run(t, w.Client(), msg("b@two.test"))
		wantStatus(t, res, deliver.Delivered, "")
		if len(res.Tries) != 2 || res.Tries[0].Host != "mx1.two.test" || res.Host != "mx2.two.test" {
			t.Fatalf("%s: tries %+v", greet, res.Tries)
		}
		var re *deliver.ReplyError
		if !errorsAs(res.Tries[0].Err, &re) || re.Command != "greeting" || re.Code/100 != int(greet[0]-'0') {
			t.Errorf("%s: first try error %v", greet, res.Tries[0].Err)
		}
	}
}

// TestAddressesInOrder: each host's validated addresses in the decision's
// order, then the next host.
func TestAddressesInOrder(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("two.test", smtptlstest.Scenario{MX: 2})
	busy := smtptlstest.SMTPConfig{Replies: map[string]string{"greeting": "421 4.3.2 busy"}}
	d.MX[0].SetConfig(busy)
	other := w.AddMX("other.two.test", busy)
	d.Zone.MustAdd("mx1 300 IN A 127.0.0.250")
	w.Register(netip.MustParseAddr("127.0.0.250"), 25, other.Addr())
	c := w.Client()
	dec, err := c.Evaluator.Evaluate(context.Background(), "two.test")
	if err != nil || len(dec.Hosts[0].Addrs) != 2 {
		t.Fatalf("%v %+v", err, dec)
	}
	res := run(t, c, msg("b@two.test"))
	wantStatus(t, res, deliver.Delivered, "")
	want := append(slices.Clone(dec.Hosts[0].Addrs), dec.Hosts[1].Addrs[0])
	if len(res.Tries) != 3 {
		t.Fatalf("tries %+v", res.Tries)
	}
	for i, tr := range res.Tries {
		if tr.Addr != want[i] {
			t.Errorf("try %d: %v, want %v", i, tr.Addr, want[i])
		}
	}
	if other.Connections() != 1 || d.MX[0].Connections() != 1 {
		t.Errorf("connections %d %d", other.Connections(), d.MX[0].Connections())
	}
}

// TestConnectionFailureMovesOn: a refused connection moves on to the next
// host and is not a TLS-RPT failure.
func TestConnectionFailureMovesOn(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("dead.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	// A more preferred MX whose address nothing listens on.
	d.Zone.MustAdd("@ 300 IN MX 5 dead.dead.test.", "dead 300 IN A 127.0.0.251")
	c := w.Client()
	agg := withReports(c)
	res := run(t, c, msg("b@dead.test"))
	wantStatus(t, res, deliver.Delivered, "")
	if len(res.Tries) != 2 || res.Tries[0].Host != "dead.dead.test" || res.Tries[0].Err == nil || res.Tries[0].Result != "" {
		t.Errorf("tries %+v", res.Tries)
	}
	if f, ok := failures(agg); len(f) != 0 || ok != 1 {
		t.Errorf("TLS-RPT %v %d", f, ok)
	}
}

// TestMaxAddrs bounds the addresses tried per message.
func TestMaxAddrs(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("three.test", smtptlstest.Scenario{MX: 3})
	for _, s := range d.MX {
		s.SetConfig(smtptlstest.SMTPConfig{Replies: map[string]string{"greeting": "421 4.3.2 busy"}})
	}
	c := w.Client()
	c.MaxAddrs = 2
	res := run(t, c, msg("b@three.test"))
	wantStatus(t, res, deliver.Deferred, "4.3.2")
	if len(res.Tries) != 2 || d.MX[2].Connections() != 0 {
		t.Errorf("tries %+v", res.Tries)
	}
}

// TestHELOFallback: HELO only after a 500/502 to EHLO; without
// extensions there is no STARTTLS, so only an opportunistic host takes
// the message.
func TestHELOFallback(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("old.test", smtptlstest.Scenario{Unsigned: true})
	d.MX[0].SetConfig(smtptlstest.SMTPConfig{EHLO: []string{}, Replies: map[string]string{"EHLO": "502 5.5.2 what?"}})
	c := w.Client()
	agg := withReports(c)
	res := run(t, c, msg("b@old.test"))
	wantStatus(t, res, deliver.Delivered, "")
	if res.TLS || len(d.MX[0].Deliveries()) != 1 {
		t.Errorf("result %+v", res)
	}
	if f, _ := failures(agg); len(f) != 1 || f[0] != tlsrpt.StartTLSNotSupported {
		t.Errorf("TLS-RPT %v", f)
	}
}

// TestTLSFailuresDefer: a stripped STARTTLS and a wrong certificate
// defer, move on to the next host, and are recorded with their TLS-RPT
// result; nothing is sent in clear.
func TestTLSFailuresDefer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		s    smtptlstest.Scenario
		want tlsrpt.ResultType
		enh  string // X.7.4 security features not supported, X.7.5 cryptographic failure (RFC 3463)
	}{
		{"stripped", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, MX: 2, Misconfig: smtptlstest.MisNoSTARTTLS}, tlsrpt.StartTLSNotSupported, "4.7.4"},
		{"sts stripped", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, MX: 2, Misconfig: smtptlstest.MisNoSTARTTLS}, tlsrpt.StartTLSNotSupported, "4.7.4"},
		{"dane mismatch", smtptlstest.Scenario{DANE: smtptlstest.DANEMismatch, MX: 2}, tlsrpt.ValidationFailure, "4.7.5"},
		{"wrong name", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, MX: 2, Misconfig: smtptlstest.MisWrongNameCert}, tlsrpt.CertificateHostMismatch, "4.7.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := smtptlstest.New(t)
			d := w.AddDomain("tls.test", tc.s)
			c := w.Client()
			agg := withReports(c)
			res := run(t, c, msg("b@tls.test"))
			wantStatus(t, res, deliver.Deferred, tc.enh)
			if len(res.Tries) != 2 || res.Tries[0].Result != tc.want || res.Tries[1].Result != tc.want {
				t.Errorf("tries %+v", res.Tries)
			}
			for _, s := range d.MX {
				if len(s.Deliveries()) != 0 {
					t.Error("delivered")
				}
			}
			if f, _ := failures(agg); len(f) != 2 || f[0] != tc.want {
				t.Errorf("TLS-RPT %v", f)
			}
		})
	}
}

// TestOpportunistic: without a policy a server without STARTTLS gets the
// message in clear, and an STS testing failure is ignored but reported.
func TestOpportunistic(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddDomain("plain.test", smtptlstest.Scenario{Unsigned: true, Misconfig: smtptlstest.MisNoSTARTTLS})
	w.AddDomain("testing.test", smtptlstest.Scenario{STS: smtptlstest.STSTesting, Misconfig: smtptlstest.MisSelfSignedCert})
	c := w.Client()
	agg := withReports(c)
	res := run(t, c, msg("b@plain.test"))
	wantStatus(t, res, deliver.Delivered, "")
	if res.TLS {
		t.Error("TLS")
	}
	res = run(t, c, msg("b@testing.test"))
	wantStatus(t, res, deliver.Delivered, "")
	if !res.TLS || res.Verdict.String() != "failed" || res.Tries[0].Result != tlsrpt.CertificateNotTrusted || res.Tries[0].Err == nil {
		t.Errorf("result %+v", res.Tries)
	}
	if f, _ := failures(agg); len(f) != 2 {
		t.Errorf("TLS-RPT %v", f)
	}
}

// TestStallingServer: the context bounds every stage; a server that
// stops answering cannot hold the attempt past it, and a stage timeout
// moves on without it.
func TestStallingServer(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{"greeting", "EHLO", "STARTTLS", "DATA"} {
		for _, cancelled := range []bool{false, true} {
			name := stage + "/deadline"
			if cancelled {
				name = stage + "/cancel"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				w := smtptlstest.New(t)
				s := smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity}
				if stage == "DATA" {
					s = smtptlstest.Scenario{Unsigned: true}
				}
				d := w.AddDomain("stall.test", s)
				d.MX[0].SetConfig(smtptlstest.SMTPConfig{Stall: stage, EHLO: []string{"8BITMIME", "STARTTLS"}})
				if stage == "DATA" {
					d.MX[0].SetConfig(smtptlstest.SMTPConfig{Stall: stage, EHLO: []string{"8BITMIME"}})
				}
				c := w.Client()
				if _, err := c.Evaluator.Evaluate(context.Background(), "stall.test"); err != nil { // warm: the stall, not DNS, is timed
					t.Fatal(err)
				}
				var ctx context.Context
				var cancel context.CancelFunc
				if cancelled {
					ctx, cancel = context.WithCancel(context.Background())
					time.AfterFunc(500*time.Millisecond, cancel)
				} else {
					ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
				}
				defer cancel()
				start := time.Now()
				res, err := c.Deliver(ctx, msg("b@stall.test"))
				if err != nil {
					t.Fatal(err)
				}
				if el := time.Since(start); el > 2*time.Second {
					t.Errorf("took %v with a 500 ms context", el)
				}
				wantStatus(t, res, deliver.Deferred, "")
			})
		}
	}
	t.Run("stage timeout", func(t *testing.T) {
		t.Parallel()
		w := smtptlstest.New(t)
		d := w.AddDomain("stall.test", smtptlstest.Scenario{MX: 2})
		d.MX[0].SetConfig(smtptlstest.SMTPConfig{Stall: "greeting"})
		c := w.Client()
		c.Timeouts.Greeting = 300 * time.Millisecond
		start := time.Now()
		res := run(t, c, msg("b@stall.test"))
		wantStatus(t, res, deliver.Delivered, "")
		if el := time.Since(start); el > 5*time.Second || len(res.Tries) != 2 {
			t.Errorf("took %v, tries %+v", el, res.Tries)
		}
	})
}

// TestRequireTLS: REQUIRETLS goes only to a validated host whose EHLO
// after STARTTLS lists it, and bounces 5.7.30 when no host qualifies,
// without MAIL FROM to a server that cannot honour it.
func TestRequireTLS(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	ok := w.AddDomain("dane.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	plain := w.AddDomain("plain.test", smtptlstest.Scenario{Unsigned: true})
	insecure := w.AddDomain("insecure.test", smtptlstest.Scenario{Unsigned: true})
	// An insecure MX pointing at a DANE host: not enough (RFC 8689 4.2.1).
	insecure.Zone.Remove("@", 15)
	insecure.Zone.MustAdd("@ 300 IN MX 10 mx1.dane.test.")
	norequire := w.AddDomain("norequire.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	norequire.MX[0].SetConfig(smtptlstest.SMTPConfig{Certificate: norequire.Certs[0], NoREQUIRETLS: true})
	// An operator override is not a validated MX either.
	over := w.AddDomain("override.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	c := w.Client()
	o, err := smtptls.ParseOverride("encrypt")
	if err != nil {
		t.Fatal(err)
	}
	c.Evaluator.Overrides = map[string]smtptls.Override{"override.test": o}
	m := func(to string) *deliver.Message { m := msg(to); m.RequireTLS = true; return m }

	wantStatus(t, run(t, c, m("b@dane.test")), deliver.Delivered, "")
	if dl := ok.MX[0].Deliveries(); len(dl) != 1 || !dl[0].Mail.RequireTLS {
		t.Errorf("deliveries %+v", dl)
	}
	for _, to := range []string{"b@plain.test", "b@insecure.test", "b@norequire.test", "b@override.test"} {
		res := run(t, c, m(to))
		wantStatus(t, res, deliver.Bounced, "5.7.30")
	}
	if plain.MX[0].Connections() != 0 || over.MX[0].Connections() != 0 || len(ok.MX[0].Deliveries()) != 1 || len(norequire.MX[0].Deliveries()) != 0 {
		t.Error("a server that cannot honour REQUIRETLS was used")
	}
}

// TestRelaxed: TLS-Required: No delivers despite a DANE failure (and
// reports it); a TLS-RPT report is delivered despite TLS failures,
// cleartext included, and never counted.
func TestRelaxed(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("mismatch.test", smtptlstest.Scenario{DANE: smtptlstest.DANEMismatch})
	w.AddDomain("stripped.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisNoSTARTTLS})
	broken := w.AddDomain("broken.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisBrokenHandshake})
	w.AddDomain("excluded.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Misconfig: smtptlstest.MisSTSMXMismatch})
	c := w.Client()
	agg := withReports(c)

	m := msg("b@mismatch.test")
	m.TLSRequiredNo = true
	res := run(t, c, m)
	wantStatus(t, res, deliver.Delivered, "")
	if !res.TLS || res.Verdict.String() != "failed" || len(d.MX[0].Deliveries()) != 1 {
		t.Errorf("result %+v", res)
	}
	if f, _ := failures(agg); len(f) != 1 || f[0] != tlsrpt.ValidationFailure {
		t.Errorf("TLS-RPT %v", f)
	}

	before, _ := json.Marshal(agg.Stats())
	for _, to := range []string{"b@mismatch.test", "b@stripped.test", "b@broken.test", "b@excluded.test"} {
		m := msg(to)
		m.Report = true
		res := run(t, c, m)
		wantStatus(t, res, deliver.Delivered, "")
	}
	if dl := broken.MX[0].Deliveries(); len(dl) != 1 || dl[0].TLS {
		t.Errorf("broken handshake: %+v, want one cleartext delivery", dl)
	}
	if after, _ := json.Marshal(agg.Stats()); !bytes.Equal(before, after) {
		t.Errorf("reports counted: %s -> %s", before, after)
	}
}

// TestReplies: 2xx delivered, 4xx deferred, 5xx bounced, per recipient,
// with the server's code, enhanced code and (escaped, bounded) text: a
// terminal escape, a NUL, invalid UTF-8 and 1500 bytes from the server
// reach RcptResult.Text escaped and cut.
func TestReplies(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("r.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	c := w.Client()
	long := strings.Repeat("x", 1500)
	d.MX[0].SetConfig(smtptlstest.SMTPConfig{Certificate: d.Certs[0], Replies: map[string]string{
		"RCPT later@r.test": "450 4.2.1 mailbox busy",
		"RCPT gone@r.test":  "550 5.1.1 no such user \x1b[31m\x00\xff " + long,
	}})
	res := run(t, c, msg("ok@r.test", "later@r.test", "gone@r.test"))
	want := []struct {
		st   deliver.Status
		code int
		enh  string
	}{{deliver.Delivered, 250, "2.0.0"}, {deliver.Deferred, 450, "4.2.1"}, {deliver.Bounced, 550, "5.1.1"}}
	for i, r := range res.Rcpts {
		if r.Status != want[i].st || r.Code != want[i].code || r.Enhanced != want[i].enh || r.Text == "" ||
			strings.ContainsAny(r.Text, "\r\n\x00\x1b") || !utf8.ValidString(r.Text) || len(r.Text) > 400 {
			t.Errorf("%d: %+v", i, r)
		}
	}
	if dl := d.MX[0].Deliveries(); len(dl) != 1 || len(dl[0].To) != 1 {
		t.Errorf("deliveries %+v", dl)
	}
	for stage, st := range map[string]deliver.Status{"MAIL": deliver.Bounced, "DATA": deliver.Deferred} {
		reply := "550 5.7.1 no"
		if st == deliver.Deferred {
			reply = "452 4.3.1 full"
		}
		d.MX[0].SetConfig(smtptlstest.SMTPConfig{Certificate: d.Certs[0], Replies: map[string]string{stage: reply}})
		res := run(t, c, msg("a@r.test", "b@r.test"))
		wantStatus(t, res, st, reply[4:9])
	}
}

// TestBoundedReplies: an over-long reply line or too many lines end the
// session with an error that quotes a bounded prefix.
func TestBoundedReplies(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("big.test", smtptlstest.Scenario{Unsigned: true})
	c := w.Client()
	for _, greet := range []string{"220 " + strings.Repeat("y", 5000), strings.Repeat("220-hi\r\n", 150) + "220 hi"} {
		d.MX[0].SetConfig(smtptlstest.SMTPConfig{Replies: map[string]string{"greeting": greet}})
		res := run(t, c, msg("b@big.test"))
		wantStatus(t, res, deliver.Deferred, "")
		if e := res.Tries[0].Err; e == nil || len(e.Error()) > 400 {
			t.Errorf("error %v", e)
		}
	}
}

// TestExtensions: SMTPUTF8 and BODY=8BITMIME when the message needs them
// (Bounced 5.6.7 / 5.6.3 when the server lacks them), and the DSN
// parameters to a server that offers DSN.
func TestExtensions(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	d := w.AddDomain("ext.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	c := w.Client()
	eight := "Subject: caf\xc3\xa9\r\n\r\nd\xc3\xa9j\xc3\xa0\r\n"
	m := &deliver.Message{From: "jos\xc3\xa9@sender.test", To: []string{"b@ext.test"}, Body: strings.NewReader(eight), Size: int64(len(eight)),
		EnvID: "env 1", Ret: "HDRS", Notify: []string{"SUCCESS,FAILURE"}, ORcpt: []string{"orig+1@ext.test"}}
	wantStatus(t, run(t, c, m), deliver.Delivered, "")
	dl := d.MX[0].Deliveries()
	if len(dl) != 1 || !dl[0].Mail.UTF8 || dl[0].Mail.Body != smtp.Body8BitMIME || dl[0].Mail.EnvelopeID != "env 1" ||
		dl[0].Mail.Return != smtp.DSNReturnHeaders || len(dl[0].Rcpt) != 1 || dl[0].Rcpt[0].OriginalRecipient != "orig+1@ext.test" ||
		len(dl[0].Rcpt[0].Notify) != 2 || string(dl[0].Data) != eight {
		t.Fatalf("delivery %+v", dl)
	}

	p := w.AddDomain("plain.test", smtptlstest.Scenario{Unsigned: true})
	p.MX[0].SetConfig(smtptlstest.SMTPConfig{EHLO: []string{"PIPELINING"}})
	m8 := &deliver.Message{From: "a@sender.test", To: []string{"b@plain.test"}, Body: strings.NewReader(eight), Size: int64(len(eight))}
	wantStatus(t, run(t, c, m8), deliver.Bounced, "5.6.3")
	mu := msg("b\xc3\xa9@plain.test")
	wantStatus(t, run(t, c, mu), deliver.Bounced, "5.6.7")
	if len(p.MX[0].Deliveries()) != 0 {
		t.Error("delivered")
	}
}

// TestLogLine: one structured line per session.
func TestLogLine(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddDomain("log.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	var buf bytes.Buffer
	c := w.Client()
	c.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	run(t, c, msg("b@log.test"))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	for k, v := range map[string]string{"domain": "log.test", "host": "mx1.log.test", "verdict": "verified", "tls_version": "TLS 1.3", "outcome": "delivered"} {
		if line[k] != v {
			t.Errorf("%s = %v, want %s (%s)", k, line[k], v, buf.Bytes())
		}
	}
	if line["addr"] == nil || line["cipher"] == nil {
		t.Errorf("line %s", buf.Bytes())
	}
}
