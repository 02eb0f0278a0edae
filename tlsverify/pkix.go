package tlsverify

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

// PKIX verifies a server the way MTA-STS requires (RFC 8461 4.2): a
// WebPKI chain to a trusted root, valid now, for the MX host name.
//
// The zero value is not usable: with an empty Host every verification
// fails with KindConfig, because x509 verification without a DNS name
// would accept any certificate of any trusted root.
type PKIX struct {
	// Roots are the trusted root certificates. Nil means the system pool
	// (x509.SystemCertPool), as for tls.Config.RootCAs.
	Roots *x509.CertPool

	// Host is the MX host name to check (RFC 8461 4.2: the name matched
	// against the policy's mx patterns). Any case, with or without
	// trailing dot, U-labels or A-labels. The check follows
	// x509.Certificate.VerifyHostname: DNS-ID subject alternative names
	// only (the subject common name is ignored) and a wildcard matches
	// exactly one whole left-most label, which is RFC 8461 4.2's rule.
	Host string

	// Now returns the current time for validity checks. Nil means
	// time.Now.
	Now func() time.Time
}

// Verify verifies cs.PeerCertificates with VerifyChain. Its signature
// fits tls.Config.VerifyConnection; see Config.
func (p *PKIX) Verify(cs tls.ConnectionState) error {
	return p.VerifyChain(cs.PeerCertificates)
}

// VerifyChain verifies a server certificate chain, leaf first, with
// x509.Certificate.Verify: the certificates after the leaf (at most
// MaxChain-1) are offered as intermediates, the key usage must allow
// server authentication, and every certificate must be valid at Now.
// Failures are *Error values wrapping the x509 error, of the Kind whose
// result type tlsrpt.Classify gives the x509 error: KindNameMismatch,
// KindExpired, KindUntrusted (unknown authority, or any other certificate
// or chain error, RFC 8460 4.3.1), or KindPKIX for an error Classify does
// not recognise.
func (p *PKIX) VerifyChain(chain []*x509.Certificate) error {
	if p == nil {
		return newError(KindConfig, "nil PKIX verifier")
	}
	host := canonicalName(p.Host)
	if host == "" {
		return newError(KindConfig, "PKIX verifier without a valid Host")
	}
	if len(chain) == 0 || chain[0] == nil {
		return newError(KindNoCertificate, "server sent no certificate")
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	opts := x509.VerifyOptions{
		Roots:         p.Roots,
		Intermediates: x509.NewCertPool(),
		DNSName:       host,
		CurrentTime:   now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for i, c := range chain[1:] {
		if c == nil || i+1 == MaxChain {
			break
		}
		opts.Intermediates.AddCert(c)
	}
	if _, err := chain[0].Verify(opts); err != nil {
		e := newError(pkixKind(err), "WebPKI verification failed")
		e.Err = err
		if e.Kind == KindNameMismatch {
			e.Name = host
		}
		return e
	}
	return nil
}

// pkixKind is the Kind of an x509 verification failure: the Kind whose
// result type is tlsrpt.Classify's for err, KindPKIX when Classify does
// not recognise err.
func pkixKind(err error) Kind {
	switch tlsrpt.Classify(err) {
	case tlsrpt.CertificateHostMismatch:
		return KindNameMismatch
	case tlsrpt.CertificateExpired:
		return KindExpired
	case tlsrpt.CertificateNotTrusted:
		return KindUntrusted
	}
	return KindPKIX
}
