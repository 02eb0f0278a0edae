package smtptlstest

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DANEMode is the DANE configuration of a Scenario.
type DANEMode int

const (
	// DANEOff publishes no TLSA records.
	DANEOff DANEMode = iota
	// DANEEndEntity publishes "3 1 1" records for each MX host's certificate.
	DANEEndEntity
	// DANETrustAnchor publishes a "2 1 1" record for the CA's intermediate on each
	// MX host (name checks then apply).
	DANETrustAnchor
	// DANEUnusable publishes only unusable records (PKIX-TA, PKIX-EE, a
	// digest of the wrong length): TLS without authentication (RFC 7672
	// 2.2).
	DANEUnusable
	// DANEMismatch publishes "3 1 1" records that match no certificate:
	// every delivery must fail.
	DANEMismatch
)

// STSMode is the MTA-STS configuration of a Scenario.
type STSMode int

const (
	// STSOff publishes no _mta-sts record and no policy.
	STSOff STSMode = iota
	// STSEnforce publishes an enforce policy listing the MX hosts.
	STSEnforce
	// STSTesting publishes a testing policy listing the MX hosts.
	STSTesting
	// STSNone publishes a policy with mode none.
	STSNone
)

// Misconfig is a set of misconfigurations (or attacks) applied to a
// Scenario.
type Misconfig uint32

const (
	// MisNoSTARTTLS: the MX hosts do not offer STARTTLS (or an attacker
	// strips it).
	MisNoSTARTTLS Misconfig = 1 << iota
	// MisWrongNameCert: the MX hosts present a CA-issued certificate for
	// another name.
	MisWrongNameCert
	// MisExpiredCert: the MX hosts present an expired CA-issued
	// certificate.
	MisExpiredCert
	// MisSelfSignedCert: the MX hosts present a self-signed certificate.
	MisSelfSignedCert
	// MisTLSAServFail: the TLSA lookups of the MX hosts fail (SERVFAIL).
	MisTLSAServFail
	// MisTLSABogus: the TLSA RRsets carry bad signatures.
	MisTLSABogus
	// MisSTSMXMismatch: the MTA-STS policy lists a host that is not an MX.
	MisSTSMXMismatch
	// MisPolicyNotFound: the policy host answers 404.
	MisPolicyNotFound
	// MisPolicyBadCert: the policy host presents a certificate for another
	// name.
	MisPolicyBadCert
	// MisBrokenHandshake: the MX hosts accept STARTTLS, then break the
	// handshake.
	MisBrokenHandshake
)

// Scenario describes a mail domain of the World in one line, for example
// Scenario{DANE: DANEEndEntity, STS: STSEnforce}.
type Scenario struct {
	// DANE selects the TLSA records published for the MX hosts.
	DANE DANEMode
	// STS selects the MTA-STS record and policy published.
	STS STSMode
	// Unsigned leaves the domain's zone unsigned. DANE records in an
	// unsigned zone are insecure and so ignored by senders.
	Unsigned bool
	// MX is the number of MX hosts, mx1.<domain>, mx2.<domain>, ...
	// Zero means 1.
	MX int
	// Misconfig applies misconfigurations.
	Misconfig Misconfig
}

// Domain is a mail domain built by AddDomain.
type Domain struct {
	// Name is the domain, lowercase A-labels.
	Name string
	// Zone is the domain's zone.
	Zone *Zone
	// MX are the SMTP servers of its MX hosts, in preference order.
	MX []*SMTPServer
	// Certs are the certificates the MX hosts present.
	Certs []*tls.Certificate
}

// AddDomain builds a mail domain from a Scenario: its zone (signed unless
// Unsigned), MX hosts with SMTP servers, TLSA records, the MTA-STS record
// and policy, and the misconfigurations. It panics on errors, like
// Zone.MustAdd.
//
// Each call creates a zone (with keys), a listening SMTP server and a
// certificate per MX host, and allocates addresses by scanning the
// World's data: a few hundred domains take a second or two, and the cost
// grows faster than the count. For load tests with thousands of domains,
// put them in one zone with Zone.Add (MX, A, TLSA and TXT records) and
// SetPolicy instead: an Evaluate needs no SMTP server.
func (w *World) AddDomain(name string, s Scenario) *Domain {
	d, err := hostName(name)
	if err != nil {
		panic(err)
	}
	cfg := ZoneConfig{Signing: NSEC}
	if s.Unsigned {
		cfg = ZoneConfig{}
	}
	z := w.AddZone(d, cfg)
	dom := &Domain{Name: d, Zone: z}
	n := max(s.MX, 1)
	var hosts []string
	for i := 1; i <= n; i++ {
		host := fmt.Sprintf("mx%d.%s", i, d)
		hosts = append(hosts, host)
		cert := w.scenarioCert(host, s.Misconfig)
		srv := w.AddMX(host, SMTPConfig{
			Certificate:     cert,
			NoSTARTTLS:      s.Misconfig&MisNoSTARTTLS != 0,
			BrokenHandshake: s.Misconfig&MisBrokenHandshake != 0,
		})
		dom.MX = append(dom.MX, srv)
		dom.Certs = append(dom.Certs, cert)
		z.MustAdd(fmt.Sprintf("@ MX %d %s.", i*10, host))
		owner := "_25._tcp." + host + "."
		switch s.DANE {
		case DANEEndEntity:
			z.MustAdd(TLSARecord(owner, cert.Leaf, 3, 1, 1))
		case DANETrustAnchor:
			z.MustAdd(TLSARecord(owner, w.ca.Intermediate, 2, 1, 1))
		case DANEUnusable:
			z.MustAdd(TLSARecord(owner, cert.Leaf, 1, 1, 1), TLSARecord(owner, w.ca.Root, 0, 0, 1),
				owner+" 300 IN TLSA 3 1 1 abcdef")
		case DANEMismatch:
			z.MustAdd(owner + " 300 IN TLSA 3 1 1 " + strings.Repeat("5a", 32))
		}
		if s.DANE != DANEOff {
			switch {
			case s.Misconfig&MisTLSAServFail != 0:
				w.SetFault(owner, dns.TypeTLSA, FaultServFail)
			case s.Misconfig&MisTLSABogus != 0:
				w.SetFault(owner, dns.TypeTLSA, FaultBadSignature)
			}
		}
	}
	if s.STS != STSOff {
		mode := map[STSMode]string{STSEnforce: "enforce", STSTesting: "testing", STSNone: "none"}[s.STS]
		z.MustAdd(`_mta-sts 300 IN TXT "v=STSv1; id=1"`)
		body := "version: STSv1\r\nmode: " + mode + "\r\nmax_age: 604800\r\n"
		listed := hosts
		if s.Misconfig&MisSTSMXMismatch != 0 {
			listed = []string{"mail.elsewhere." + d}
		}
		for _, h := range listed {
			body += "mx: " + h + "\r\n"
		}
		p := Policy{Body: body}
		if s.Misconfig&MisPolicyNotFound != 0 {
			p = Policy{Status: 404, Body: "not found\n"}
		}
		if s.Misconfig&MisPolicyBadCert != 0 {
			p.Cert = CertWrongName
		}
		w.SetPolicy(d, p)
	}
	return dom
}

func (w *World) scenarioCert(host string, m Misconfig) *tls.Certificate {
	var (
		cert *tls.Certificate
		err  error
	)
	switch {
	case m&MisSelfSignedCert != 0:
		cert, err = SelfSigned(host)
	case m&MisWrongNameCert != 0:
		cert, err = w.ca.Issue(CertOptions{}, "impostor.invalid")
	case m&MisExpiredCert != 0:
		now := time.Now()
		cert, err = w.ca.Issue(CertOptions{NotBefore: now.Add(-60 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, host)
	default:
		cert, err = w.ca.Issue(CertOptions{}, host)
	}
	if err != nil {
		panic(err)
	}
	return cert
}
