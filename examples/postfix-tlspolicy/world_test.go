package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

var discard = slog.New(slog.DiscardHandler)

// newResponder returns a Responder deciding with the library against w:
// its DNS (through a resolver.Cache, as in production), its HTTPS policy
// hosts and CA.
func newResponder(w *smtptlstest.World) *Responder {
	res := &resolver.Cache{Resolver: w.Resolver()}
	return &Responder{
		Evaluator: &smtptls.Evaluator{
			Resolver: res,
			STS:      &mtasts.Client{Resolver: res, HTTPClient: w.HTTPClient(), Logger: discard},
			Roots:    w.CA().Pool(),
			Logger:   discard,
		},
		Logger: discard,
	}
}

// buildWorld adds the domains of the answer table to w.
func buildWorld(w *smtptlstest.World) {
	add := func(name string, s smtptlstest.Scenario) { w.AddDomain(name, s) }
	add("dane.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	add("dane-sts.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, MX: 2})
	add("dane-ta.test", smtptlstest.Scenario{DANE: smtptlstest.DANETrustAnchor, STS: smtptlstest.STSEnforce})
	add("dane-mismatch.test", smtptlstest.Scenario{DANE: smtptlstest.DANEMismatch, STS: smtptlstest.STSEnforce})
	add("tlsa-servfail.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, Misconfig: smtptlstest.MisTLSAServFail})
	add("tlsa-bogus.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, Misconfig: smtptlstest.MisTLSABogus})
	add("dane-unusable.test", smtptlstest.Scenario{DANE: smtptlstest.DANEUnusable})
	add("dane-unusable-sts.test", smtptlstest.Scenario{DANE: smtptlstest.DANEUnusable, STS: smtptlstest.STSEnforce})
	add("sts.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, MX: 2})
	add("sts-signed.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce})
	add("sts-testing.test", smtptlstest.Scenario{STS: smtptlstest.STSTesting, Unsigned: true})
	add("sts-none.test", smtptlstest.Scenario{STS: smtptlstest.STSNone, Unsigned: true})
	add("plain.test", smtptlstest.Scenario{Unsigned: true})
	add("sts-mismatch.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSTSMXMismatch})
	add("sts-404.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisPolicyNotFound})
	add("sts-badcert.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisPolicyBadCert})
	add("txt-servfail.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
	w.SetFault("_mta-sts.txt-servfail.test", dns.TypeTXT, smtptlstest.FaultServFail)
	add("mx-servfail.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, DANE: smtptlstest.DANEEndEntity})
	w.SetFault("mx-servfail.test", dns.TypeMX, smtptlstest.FaultServFail)
	add("bücher.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	w.AddZone("nullmx.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("@ MX 0 .")

	// Mixed: DANE on mx1 only, MTA-STS enforce listing both.
	mixed := w.AddDomain("mixed.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, MX: 2})
	mixed.Zone.Remove("_25._tcp.mx2", dns.TypeTLSA)

	// An insecure (unsigned) MX RRset pointing at a host in a signed zone
	// with TLSA records, with and without an MTA-STS enforce policy.
	w.AddZone("signed-hosts.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	srv := w.AddMX("mx1.signed-hosts.test", smtptlstest.SMTPConfig{})
	w.Zone("signed-hosts.test").MustAdd(smtptlstest.TLSARecord("_25._tcp.mx1.signed-hosts.test.", srv.Certificate().Leaf, 3, 1, 1))
	for _, d := range []string{"insecure-mx-sts.test", "insecure-mx.test"} {
		z := w.AddZone(d, smtptlstest.ZoneConfig{})
		z.MustAdd("@ MX 10 mx1.signed-hosts.test.")
	}
	w.Zone("insecure-mx-sts.test").MustAdd(`_mta-sts 300 IN TXT "v=STSv1; id=1"`)
	w.SetPolicy("insecure-mx-sts.test", smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx1.signed-hosts.test\n"})

	// A wildcard policy and MX hosts one and two labels below it.
	wild := w.AddZone("wild.test", smtptlstest.ZoneConfig{})
	w.AddMX("a.wild.test", smtptlstest.SMTPConfig{})
	w.AddMX("b.c.wild.test", smtptlstest.SMTPConfig{})
	wild.MustAdd("@ MX 10 a.wild.test.", "@ MX 20 b.c.wild.test.", `_mta-sts 300 IN TXT "v=STSv1; id=1"`)
	w.SetPolicy("wild.test", smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: *.wild.test\n"})
}

// TestAnswers is the table of README.md: one real decision per row, DNS,
// policy fetch and all, through the Responder.
func TestAnswers(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	buildWorld(w)

	const sts2 = "OK secure match=mx1.sts.test:mx2.sts.test servername=hostname"
	tests := []struct {
		name, key, want string
		resp            func(*Responder)
	}{
		// Rule 1: DANE wins.
		{name: "DANE only", key: "dane.test", want: "OK dane"},
		{name: "DANE and MTA-STS enforce", key: "dane-sts.test", want: "OK dane"},
		{name: "DANE-TA and MTA-STS", key: "dane-ta.test", want: "OK dane"},
		{name: "DANE mismatch: MTA-STS must not rescue it", key: "dane-mismatch.test", want: "OK dane"},
		{name: "TLSA SERVFAIL: Postfix must see DANE and defer", key: "tlsa-servfail.test", want: "OK dane"},
		{name: "TLSA bogus", key: "tlsa-bogus.test", want: "OK dane"},
		{name: "mixed DANE and MTA-STS hosts", key: "mixed.test", want: "OK dane"},
		{name: "mixed, dane-only", key: "mixed.test", want: "OK dane-only", resp: func(r *Responder) { r.Mixed = MixedDANEOnly }},
		{name: "U-label domain", key: "bücher.test", want: "OK dane"},
		{name: "trailing dot and case", key: "DANE.Test.", want: "OK dane"},
		{name: "domain:port", key: "dane.test:25", want: "OK dane"},
		// Rule 2: MTA-STS enforce.
		{name: "MTA-STS enforce, two MX", key: "sts.test", want: sts2},
		{name: "MTA-STS enforce, policy patterns", key: "sts.test", want: sts2, resp: func(r *Responder) { r.Match = MatchPolicy }},
		{name: "MTA-STS enforce, no SNI", key: "sts.test", want: "OK secure match=mx1.sts.test:mx2.sts.test", resp: func(r *Responder) { r.NoSNI = true }},
		{name: "MTA-STS enforce, signed zone without TLSA", key: "sts-signed.test", want: "OK secure match=mx1.sts-signed.test servername=hostname"},
		{name: "unusable TLSA and MTA-STS enforce", key: "dane-unusable-sts.test", want: "OK secure match=mx1.dane-unusable-sts.test servername=hostname"},
		{name: "insecure MX with TLSA and MTA-STS: MX matching wins", key: "insecure-mx-sts.test", want: "OK secure match=mx1.signed-hosts.test servername=hostname"},
		{name: "wildcard policy: only the one-label MX", key: "wild.test", want: "OK secure match=a.wild.test servername=hostname"},
		{name: "wildcard policy as Postfix pattern (wider)", key: "wild.test", want: "OK secure match=.wild.test servername=hostname", resp: func(r *Responder) { r.Match = MatchPolicy }},
		{name: "no MX in the policy: defer", key: "sts-mismatch.test", want: "TEMP no MX host of sts-mismatch.test matches its MTA-STS policy"},
		{name: "no MX in the policy, policy patterns", key: "sts-mismatch.test", want: "OK secure match=mail.elsewhere.sts-mismatch.test servername=hostname", resp: func(r *Responder) { r.Match = MatchPolicy }},
		{name: "testing as enforce", key: "sts-testing.test", want: "OK secure match=mx1.sts-testing.test servername=hostname", resp: func(r *Responder) { r.Testing = TestingEnforce }},
		// Rule 3: DANE without MTA-STS enforce.
		{name: "unusable TLSA only", key: "dane-unusable.test", want: "OK dane"},
		{name: "insecure MX with TLSA, no MTA-STS", key: "insecure-mx.test", want: "OK dane"},
		// Rule 4: nothing to enforce.
		{name: "MTA-STS testing", key: "sts-testing.test", want: "NOTFOUND "},
		{name: "MTA-STS none", key: "sts-none.test", want: "NOTFOUND "},
		{name: "neither", key: "plain.test", want: "NOTFOUND "},
		{name: "policy 404, nothing cached", key: "sts-404.test", want: "NOTFOUND "},
		{name: "policy host certificate invalid, nothing cached", key: "sts-badcert.test", want: "NOTFOUND "},
		{name: "TXT SERVFAIL, nothing cached (RFC 8461 5)", key: "txt-servfail.test", want: "NOTFOUND "},
		{name: "null MX", key: "nullmx.test", want: "NOTFOUND "},
		{name: "NXDOMAIN", key: "nosuch.plain.test", want: "NOTFOUND "},
		// Failures that leave no decision.
		{name: "MX SERVFAIL", key: "mx-servfail.test", want: "TEMP MX lookup failed"},
		// Keys that have no policy of ours.
		{name: "parent-domain probe", key: ".dane.test", want: "NOTFOUND "},
		{name: "address literal", key: "[192.0.2.1]", want: "NOTFOUND "},
		{name: "IPv6 literal with port", key: "[ipv6:2001:db8::1]:25", want: "NOTFOUND "},
		{name: "bare IPv6", key: "2001:db8::1", want: "NOTFOUND "},
		{name: "unix path", key: "/var/run/lmtp", want: "NOTFOUND "},
		{name: "empty", key: "", want: "NOTFOUND "},
		{name: "bad name", key: "a..b", want: "NOTFOUND "},
		{name: "bad port", key: "dane.test:99999", want: "NOTFOUND "},
		// Relays: the smart host's own domain is the policy domain
		// (RFC 8461 3.4), its TLSA records are at _port._tcp.host.
		{name: "relay with TLSA", key: "[mx1.dane.test]", want: "OK dane"},
		{name: "relay with TLSA, port without", key: "[mx1.dane.test]:587", want: "NOTFOUND "},
		{name: "relay whose domain's policy does not list it", key: "[sts.test]", want: "TEMP no MX host of sts.test matches its MTA-STS policy"},
		{name: "relay host without a policy of its own", key: "[mx1.sts.test]:25", want: "NOTFOUND "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResponder(w)
			if tc.resp != nil {
				tc.resp(r)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if got := r.Lookup(ctx, "tlspolicy", tc.key).String(); got != tc.want {
				t.Errorf("Lookup(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

// TestCachedPolicySurvivesTXTFailure: once fetched, an enforce policy
// keeps applying when the TXT lookup fails (RFC 8461 5), and a DNS
// failure alone never turns the answer into NOTFOUND (invariant 1).
func TestCachedPolicySurvivesTXTFailure(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddDomain("sts.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
	r := newResponder(w)
	// No resolver cache here: the fault must reach the client.
	r.Evaluator = &smtptls.Evaluator{
		Resolver: w.Resolver(),
		STS:      &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: discard},
		Logger:   discard,
	}
	ctx := context.Background()
	const want = "OK secure match=mx1.sts.test servername=hostname"
	if got := r.Lookup(ctx, "tlspolicy", "sts.test").String(); got != want {
		t.Fatalf("first lookup = %q, want %q", got, want)
	}
	w.SetFault("_mta-sts.sts.test", dns.TypeTXT, smtptlstest.FaultServFail)
	w.RemovePolicy("sts.test")
	if got := r.Lookup(ctx, "tlspolicy", "sts.test").String(); got != want {
		t.Fatalf("with TXT SERVFAIL and the policy host gone = %q, want %q (the cached policy)", got, want)
	}
}

// TestDeadlineIsTemp: when the budget ends before the decision is
// complete (here: a policy host that takes longer), the answer is TEMP,
// never a NOTFOUND that would drop a policy.
func TestDeadlineIsTemp(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddDomain("slow.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
	w.SetPolicy("slow.test", smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx1.slow.test\n", Delay: 3 * time.Second})
	r := newResponder(w)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if got := r.Lookup(ctx, "tlspolicy", "slow.test"); got.Status != "TEMP" {
		t.Fatalf("Lookup = %q, want TEMP", got)
	}
	// The fetch went on in the background: a later query finds it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got := r.Lookup(ctx, "tlspolicy", "slow.test").String()
		cancel()
		if got == "OK secure match=mx1.slow.test servername=hostname" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy never arrived; last answer %q", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
