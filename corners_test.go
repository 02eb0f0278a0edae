package smtptls_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
	"github.com/smtptls/smtptls/tlsverify"
)

// bothResolvers runs f once with the Stub (trusting the World's validating
// front) and once with in-process validation.
func bothResolvers(t *testing.T, f func(t *testing.T, validating bool)) {
	t.Helper()
	t.Run("stub", func(t *testing.T) { t.Parallel(); f(t, false) })
	t.Run("validating", func(t *testing.T) { t.Parallel(); f(t, true) })
}

func (w *world) evaluatorFor(validating bool) *smtptls.Evaluator {
	ev := w.evaluator()
	if validating {
		ev = w.validatingEvaluator()
	}
	ev.Logger = discard
	ev.STS.Logger = discard
	return ev
}

// sendAndRecord delivers one message via h with smtptlstest.Send and
// records the session in a new Aggregator, as an MTA does; it returns the
// outcome and the one policy result the session was counted under.
func sendAndRecord(t *testing.T, w *world, h *smtptls.Host) (smtptlstest.Outcome, tlsrpt.PolicyResult) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	o := smtptlstest.Send(ctx, w.DialContext, h, 25, smtptls.Attempt{},
		smtptlstest.Message{From: "a@sender.test", To: []string{"b@" + h.Name}, Data: []byte("Subject: t\r\n\r\nhi\r\n")})
	sessErr := o.Err
	if sessErr == nil {
		sessErr = o.VerifyErr
	}
	agg := &tlsrpt.Aggregator{}
	h.RecordSession(agg, smtptls.Attempt{}, o.Addr, sessErr, now)
	reps := agg.Reports(now, "test", "mailto:t@sender.test")
	if len(reps) != 1 || len(reps[0].Policies) != 1 {
		t.Fatalf("reports %+v, want one policy result", reps)
	}
	return o, reps[0].Policies[0]
}

// TestDigestPreferenceUnusableRRset: a sender whose DigestPreference
// leaves out the only matching type a host publishes cannot use any of
// its records (RFC 6698 4.1, RFC 7671 9). A secure TLSA RRset without a
// usable record means TLS without authentication (RFC 7672 2.2): level
// Encrypt, or STSEnforce where an enforce policy applies, and delivery
// succeeds. It used to be level DANE with every handshake failing
// (no-usable-records, reported as tlsa-invalid).
func TestDigestPreferenceUnusableRRset(t *testing.T) {
	t.Parallel()
	bothResolvers(t, func(t *testing.T, validating bool) {
		w := newWorld(t)
		z := w.zone("sha256.test", true)
		z.MustAdd("@ MX 10 mx.sha256.test.")
		_, cert := w.mx("mx.sha256.test")
		z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx.sha256.test.", cert.Leaf, 3, 1, 1))

		z = w.zone("sha256sts.test", true)
		z.MustAdd("@ MX 10 mx.sha256sts.test.")
		_, cert = w.mx("mx.sha256sts.test")
		z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx.sha256sts.test.", cert.Leaf, 3, 1, 1))
		w.sts(z, "sha256sts.test", "enforce", "mx.sha256sts.test")

		z = w.zone("sha512.test", true)
		z.MustAdd("@ MX 10 mx.sha512.test.")
		_, cert = w.mx("mx.sha512.test")
		z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx.sha512.test.", cert.Leaf, 3, 1, 1),
			smtptlstest.TLSARecord("_25._tcp.mx.sha512.test.", cert.Leaf, 3, 1, 2))

		only512 := w.evaluatorFor(validating)
		only512.DigestPreference = []uint8{tlsverify.SHA512}
		def := w.evaluatorFor(validating)

		for _, c := range []struct {
			name    string
			ev      *smtptls.Evaluator
			domain  string
			level   smtptls.Level
			verdict smtptls.Verdict
			policy  tlsrpt.PolicyType
		}{
			{"sha256 only, sha512 preferred", only512, "sha256.test", smtptls.Encrypt, smtptls.Encrypted, tlsrpt.PolicyTLSA},
			{"sha256 only, sts enforce", only512, "sha256sts.test", smtptls.STSEnforce, smtptls.Verified, tlsrpt.PolicySTS},
			{"sha256 and sha512, sha512 preferred", only512, "sha512.test", smtptls.DANE, smtptls.Verified, tlsrpt.PolicyTLSA},
			{"sha256 only, default preference", def, "sha256.test", smtptls.DANE, smtptls.Verified, tlsrpt.PolicyTLSA},
		} {
			t.Run(c.name, func(t *testing.T) {
				d, err := c.ev.Evaluate(context.Background(), c.domain)
				if err != nil {
					t.Fatal(err)
				}
				h := d.Hosts[0]
				if h.Err != nil || h.Level != c.level {
					t.Fatalf("level %v err %v, want %v", h.Level, h.Err, c.level)
				}
				o, pr := sendAndRecord(t, w, h)
				if !o.Delivered || !o.TLS || o.Verdict != c.verdict || o.VerifyErr != nil {
					t.Errorf("send: delivered %v tls %v verdict %v (%v, %v), want delivered over TLS, %v",
						o.Delivered, o.TLS, o.Verdict, o.Err, o.VerifyErr, c.verdict)
				}
				if pr.Policy.Type != c.policy || pr.Summary.TotalSuccessfulSessionCount != 1 || pr.Summary.TotalFailureSessionCount != 0 {
					t.Errorf("TLS-RPT: policy %v, summary %+v, details %+v; want %v with one success",
						pr.Policy.Type, pr.Summary, pr.FailureDetails, c.policy)
				}
			})
		}
	})
}

// TestNumericMXTarget: "MX 10 192.0.2.44." names a host "192.0.2.44", not
// an address (RFC 1035 3.3.9, RFC 5321 5.1); Postfix warns "numeric domain
// name in resource data of MX record" and does not use it. The host is
// kept in the Decision, unusable with a KindHostLookup error that says
// why (no TLS-RPT result: no TLS was attempted), never dialled, and the
// other MX host is used, with or without an MTA-STS policy and DANE. An
// mx pattern that names it ("mx: 192.0.2.44") never matches it (patterns
// are host names, dnsname.Pattern), so it cannot make the host usable
// either; it is unusable for its name, not excluded by the policy.
func TestNumericMXTarget(t *testing.T) {
	t.Parallel()
	bothResolvers(t, func(t *testing.T, validating bool) {
		w := newWorld(t)
		for _, c := range []struct {
			domain string
			sts    []string // mx patterns of an enforce policy; nil: none
			dane   bool
		}{
			{domain: "plain.test"},
			{domain: "dane.test", dane: true},
			{domain: "sts.test", sts: []string{"mx.sts.test"}},
			{domain: "stswild.test", sts: []string{"*.stswild.test"}},
			{domain: "stsnumeric.test", sts: []string{"mx.stsnumeric.test", "192.0.2.44"}},
		} {
			z := w.zone(c.domain, c.dane)
			z.MustAdd("@ MX 10 192.0.2.44.", "@ MX 20 mx."+c.domain+".")
			_, cert := w.mx("mx." + c.domain)
			if c.dane {
				z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx."+c.domain+".", cert.Leaf, 3, 1, 1))
			}
			if c.sts != nil {
				w.sts(z, c.domain, "enforce", c.sts...)
			}
		}
		for _, c := range []struct {
			domain  string
			noDANE  bool
			level   smtptls.Level
			verdict smtptls.Verdict
		}{
			{"plain.test", false, smtptls.Opportunistic, smtptls.Encrypted},
			{"plain.test", true, smtptls.Opportunistic, smtptls.Encrypted},
			{"dane.test", false, smtptls.DANE, smtptls.Verified},
			{"sts.test", false, smtptls.STSEnforce, smtptls.Verified},
			{"stswild.test", false, smtptls.STSEnforce, smtptls.Verified},
			{"stsnumeric.test", false, smtptls.STSEnforce, smtptls.Verified},
		} {
			name := c.domain
			if c.noDANE {
				name += " dane off"
			}
			t.Run(name, func(t *testing.T) {
				ev := w.evaluatorFor(validating)
				ev.DisableDANE = c.noDANE
				d, err := ev.Evaluate(context.Background(), c.domain)
				if err != nil {
					t.Fatal(err)
				}
				if len(d.Hosts) != 2 {
					t.Fatalf("%d hosts, want both MX hosts", len(d.Hosts))
				}
				num := d.Hosts[0]
				var e *smtptls.Error
				if num.Name != "192.0.2.44" || !errors.As(num.Err, &e) || e.Kind != smtptls.KindHostLookup ||
					!strings.Contains(e.Error(), `numeric domain name in resource data of MX record: "192.0.2.44."`) {
					t.Fatalf("numeric MX target: name %q err %v; want a KindHostLookup error naming it", num.Name, num.Err)
				}
				if len(num.Addrs) != 0 || num.DANE != nil || num.Excluded || num.FailureResult(num.Err) != "" {
					t.Errorf("numeric MX target: addrs %v dane %v excluded %v result %q", num.Addrs, num.DANE, num.Excluded, num.FailureResult(num.Err))
				}
				del := d.Deliverable()
				if len(del) != 1 || del[0].Name != "mx."+c.domain || del[0].Level != c.level {
					t.Fatalf("deliverable %v, want mx.%s at %v", del, c.domain, c.level)
				}
				o, pr := sendAndRecord(t, w, del[0])
				if !o.Delivered || o.Verdict != c.verdict {
					t.Errorf("send via mx.%s: delivered %v verdict %v (%v %v)", c.domain, o.Delivered, o.Verdict, o.Err, o.VerifyErr)
				}
				if pr.Summary.TotalFailureSessionCount != 0 {
					t.Errorf("TLS-RPT: %+v", pr)
				}
				agg := &tlsrpt.Aggregator{}
				num.RecordSession(agg, smtptls.Attempt{}, netip.Addr{}, num.Err, time.Now())
				if st := agg.Stats(); st.Policies != 0 || st.Dropped != 0 {
					t.Errorf("the numeric MX target was reported to TLS-RPT: %+v", st)
				}
			})
		}
	})
}

// TestEvaluateRelayAddress pins what EvaluateRelay does with an address
// (a relay given as "[192.0.2.1]" or "192.0.2.1"), unchanged by the MX
// target rule: it is not a name, so there is no TLSA or MTA-STS lookup to
// make, and EvaluateRelay reports KindInvalidDomain (an MTA delivering to
// a literal needs no decision: DANE never applies to it, RFC 7672 2.2).
func TestEvaluateRelayAddress(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ev := w.evaluatorFor(false)
	for _, host := range []string{"[192.0.2.1]", "192.0.2.1", "192.0.2.44.", "[IPv6:2001:db8::1]"} {
		var e *smtptls.Error
		if d, err := ev.EvaluateRelay(context.Background(), host, 25); !errors.As(err, &e) || e.Kind != smtptls.KindInvalidDomain {
			t.Errorf("EvaluateRelay(%q) = %v, %v; want KindInvalidDomain", host, d, err)
		}
	}
}

// TestFailedAddressFamilyNextToSecure: one address family failing next to
// a secure answer of the other makes the host unusable, through both
// resolvers alike. The address lookups are the first of the queries that
// locate the host's TLSA records (RFC 7672 2.2.2), and if any of those
// fails (bogus, timeout, SERVFAIL...) the client "MUST treat that server
// as compromised and MUST NOT deliver mail via that server" (RFC 7672
// 2.1.2). The Stub sees a bogus answer as SERVFAIL and used to deliver
// over the other family with DANE, while Validating refused the host for
// a bogus answer only. Next to an insecure answer (no DANE possible), a
// failed family is skipped as before: the host is used over the other.
// In every case the next MX host is used (RFC 7672 2.1.2).
func TestFailedAddressFamilyNextToSecure(t *testing.T) {
	t.Parallel()
	bothResolvers(t, func(t *testing.T, validating bool) {
		w := newWorld(t)
		type tc struct {
			domain string
			signed bool
			qtype  uint16
			fault  smtptlstest.Fault
		}
		cases := []tc{
			{"aservfail.test", true, dns.TypeA, smtptlstest.FaultServFail},
			{"abogus.test", true, dns.TypeA, smtptlstest.FaultBadSignature},
			{"atimeout.test", true, dns.TypeA, smtptlstest.FaultTimeout},
			{"aaaaservfail.test", true, dns.TypeAAAA, smtptlstest.FaultServFail},
			{"aaaabogus.test", true, dns.TypeAAAA, smtptlstest.FaultBadSignature},
			{"unsigned.test", false, dns.TypeA, smtptlstest.FaultServFail},
		}
		v6 := netip.MustParseAddr("2001:db8::25")
		for i, c := range cases {
			z := w.zone(c.domain, c.signed)
			z.MustAdd("@ MX 10 mx1."+c.domain+".", "@ MX 20 mx2."+c.domain+".")
			for _, mx := range []string{"mx1." + c.domain, "mx2." + c.domain} {
				srv, cert := w.mx(mx)
				z.MustAdd(smtptlstest.TLSARecord("_25._tcp."+mx+".", cert.Leaf, 3, 1, 1))
				if mx[:3] == "mx1" {
					// mx1 has both families, each reaching its server.
					a := v6.As16()
					a[15] = byte(i)
					addr := netip.AddrFrom16(a)
					z.MustAdd(mx + ". AAAA " + addr.String())
					w.Register(addr, 25, srv.Addr())
				}
			}
			w.SetFault("mx1."+c.domain, c.qtype, c.fault)
		}
		ev := w.evaluatorFor(validating)
		if validating {
			// A timed-out query is retried: keep the test short.
			ev.Resolver.(*resolver.Cache).Resolver.(*resolver.Validating).Timeout = 200 * time.Millisecond
		} else {
			ev.Resolver.(*resolver.Stub).Timeout = 200 * time.Millisecond
		}
		for _, c := range cases {
			t.Run(c.domain, func(t *testing.T) {
				t.Parallel()
				d, err := ev.Evaluate(context.Background(), c.domain)
				if err != nil {
					t.Fatal(err)
				}
				mx1, mx2 := d.Hosts[0], d.Hosts[1]
				if mx2.Err != nil {
					t.Fatalf("mx2: %v", mx2.Err)
				}
				if !c.signed {
					// Insecure: the AAAA addresses are used, without DANE.
					if mx1.Err != nil || mx1.Level != smtptls.Opportunistic || len(mx1.Addrs) != 1 || !mx1.Addrs[0].Is6() {
						t.Fatalf("mx1: err %v level %v addrs %v; want opportunistic over IPv6", mx1.Err, mx1.Level, mx1.Addrs)
					}
					if o, _ := sendAndRecord(t, w, mx1); !o.Delivered || !o.TLS {
						t.Errorf("send via mx1: %v", o.Err)
					}
					return
				}
				var e *smtptls.Error
				if !errors.As(mx1.Err, &e) || e.Kind != smtptls.KindHostLookup || mx1.DANE != nil || len(mx1.Addrs) != 0 {
					t.Fatalf("mx1: err %v level %v addrs %v; want unusable (KindHostLookup)", mx1.Err, mx1.Level, mx1.Addrs)
				}
				del := d.Deliverable()
				if len(del) != 1 || del[0] != mx2 || mx2.Level != smtptls.DANE {
					t.Fatalf("deliverable %v (mx2 level %v), want mx2 with DANE", del, mx2.Level)
				}
				if o, pr := sendAndRecord(t, w, mx2); !o.Delivered || o.Verdict != smtptls.Verified || pr.Summary.TotalSuccessfulSessionCount != 1 {
					t.Errorf("send via mx2: %v %v %v", o.Verdict, o.Err, pr)
				}
			})
		}
	})
}
