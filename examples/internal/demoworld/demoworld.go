// Package demoworld is the offline world shared by the examples: a dozen
// mail domains covering DANE, MTA-STS, both, neither and their failure
// modes, built on the smtptlstest kit.
package demoworld

import (
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// Case is a domain built from a scenario and what must happen to mail
// sent to it.
type Case struct {
	// Domain is the mail domain.
	Domain string
	// Scenario builds the domain in the world.
	Scenario smtptlstest.Scenario
	// NullMX publishes a null MX (RFC 7505) instead of a scenario.
	NullMX  bool
	Want    string // delivered, deferred or bounced
	Verdict string // expected verdict of the delivering session, or ""
	// Result is the TLS-RPT result type the attempt must record, or "".
	Result tlsrpt.ResultType
	// Why cites the rule the case demonstrates.
	Why string
}

// Cases are the demo world's domains.
var Cases = []Case{
	{Domain: "dane-ee.test", Scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity}, Want: "delivered", Verdict: "verified",
		Why: "DANE-EE 3 1 1 matches the server key (RFC 7672 3.1.1)"},
	{Domain: "dane-ta.test", Scenario: smtptlstest.Scenario{DANE: smtptlstest.DANETrustAnchor, MX: 2}, Want: "delivered", Verdict: "verified",
		Why: "DANE-TA 2 1 1 names the issuing CA; the leaf matches the MX name (RFC 7672 3.1.2)"},
	{Domain: "sts-enforce.test", Scenario: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true}, Want: "delivered", Verdict: "verified",
		Why: "MTA-STS enforce: MX listed, WebPKI certificate valid (RFC 8461 4)"},
	{Domain: "both.test", Scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce}, Want: "delivered", Verdict: "verified",
		Why: "DANE and MTA-STS both valid: DANE decides (RFC 8461 2)"},
	{Domain: "plain.test", Scenario: smtptlstest.Scenario{Unsigned: true}, Want: "delivered", Verdict: "encrypted",
		Why: "neither DANE nor MTA-STS: opportunistic TLS (RFC 7435)"},
	{Domain: "dane-unusable.test", Scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEUnusable}, Want: "delivered", Verdict: "encrypted",
		Why: "secure TLSA RRset with no usable record: TLS mandatory, no authentication (RFC 7672 2.2)"},
	{Domain: "sts-testing.test", Scenario: smtptlstest.Scenario{STS: smtptlstest.STSTesting, Unsigned: true, Misconfig: smtptlstest.MisWrongNameCert},
		Want: "delivered", Verdict: "failed", Result: tlsrpt.CertificateHostMismatch,
		Why: "MTA-STS testing: deliver anyway, report the failure (RFC 8461 5)"},
	{Domain: "dane-mismatch.test", Scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEMismatch, STS: smtptlstest.STSEnforce},
		Want: "deferred", Result: tlsrpt.ValidationFailure,
		Why: "DANE fails; a valid MTA-STS policy must not rescue it (RFC 8461 2)"},
	{Domain: "dane-stripped.test", Scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisNoSTARTTLS},
		Want: "deferred", Result: tlsrpt.StartTLSNotSupported,
		Why: "STARTTLS stripped under DANE: no cleartext fallback (RFC 7672 2.2)"},
	{Domain: "sts-stripped.test", Scenario: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisNoSTARTTLS},
		Want: "deferred", Result: tlsrpt.StartTLSNotSupported,
		Why: "STARTTLS stripped under MTA-STS enforce (RFC 8461 5)"},
	{Domain: "sts-mismatch.test", Scenario: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSTSMXMismatch},
		Want: "deferred", Result: tlsrpt.ValidationFailure,
		Why: "MTA-STS enforce: the MX is not in the policy (RFC 8461 4.1)"},
	{Domain: "tlsa-servfail.test", Scenario: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, Misconfig: smtptlstest.MisTLSAServFail},
		Want: "deferred", Result: tlsrpt.DNSSECInvalid,
		Why: "TLSA lookup fails: the host must not be used (RFC 7672 2.1.2)"},
	{Domain: "nullmx.test", NullMX: true, Want: "bounced",
		Why: "null MX: the domain accepts no mail (RFC 7505)"},
}

// Build adds every case's domain to w.
func Build(w *smtptlstest.World) {
	for _, c := range Cases {
		if c.NullMX {
			w.AddZone(c.Domain, smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("@ MX 0 .")
			continue
		}
		w.AddDomain(c.Domain, c.Scenario)
	}
}
