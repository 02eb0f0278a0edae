package smtptls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/netip"
	"strings"
	"sync"

	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/tlsrpt"
	"github.com/smtptls/smtptls/tlsverify"
)

// Host is one MX host of a Decision.
type Host struct {
	// Name is the MX host name, lowercase A-labels without the trailing
	// dot. An MX target that is not a host name (such as "192.0.2.44",
	// which is never dialled as an address) is kept as written, lowercase,
	// with Err set.
	Name string
	// Preference is the MX preference (0 for an implicit MX or a relay).
	Preference uint16
	// Addrs are the host's addresses as resolved for this decision: dial
	// these, so that what was validated is what is used, and report them
	// as TLS-RPT's receiving-ip.
	Addrs []netip.Addr
	// AddrSecurity is the DNSSEC status of the address lookup.
	AddrSecurity resolver.Security
	// Level is the TLS requirement for this host. Meaningless when Err is
	// set.
	Level Level
	// Err is non-nil when this host must not be used: its lookups failed,
	// MTA-STS enforce excludes it, or the operator's policy cannot be met.
	// It is a *Error whose Result is the TLS-RPT result type, if any.
	Err error
	// Excluded is true when MTA-STS enforce excluded the host (Err is then
	// a KindNotInPolicy *Error).
	Excluded bool
	// DANE is the host's DANE policy, or nil when DANE was not looked up
	// (disabled, an operator override, or a failed lookup).
	DANE *dane.Policy

	dec   *Decision
	ev    *Evaluator
	port  int
	match []string // operator Verify names

	// daneOnce builds daneV, the host's DANE verifier, once: every
	// handshake with the host then reuses its decoded records.
	daneOnce sync.Once
	daneV    *tlsverify.DANE
}

// Attempt carries the per-message options of one delivery attempt. The
// zero value is an ordinary message.
type Attempt struct {
	// TLSRequiredNo: the message has "TLS-Required: No" and
	// the operator honours it (RFC 8689 3, 4.2.2): STARTTLS is still tried, but DANE and
	// MTA-STS failures do not stop delivery.
	TLSRequiredNo bool
	// RequireTLS: the message was received with the REQUIRETLS MAIL
	// parameter (RFC 8689 4.2.1): the MX must come from DNSSEC or match an
	// MTA-STS policy, the server must authenticate with DANE or WebPKI,
	// and the next hop must advertise REQUIRETLS (the MTA checks EHLO).
	// It wins over TLSRequiredNo.
	RequireTLS bool
	// Report: the message is a TLS-RPT report. RFC 8460 3 asks that
	// reports be delivered despite TLS failures (to avoid losing the very
	// reports that explain them); like TLSRequiredNo.
	Report bool
}

func (a Attempt) relaxed() bool { return !a.RequireTLS && (a.TLSRequiredNo || a.Report) }

// UseTLS reports whether STARTTLS should be attempted at all (false only
// for the operator override "none").
func (h *Host) UseTLS() bool { return h.Level != NoTLS }

// RequireTLS reports whether delivery via this host must not happen in
// cleartext (STARTTLS missing or failing), for an ordinary message.
func (h *Host) RequireTLS() bool { return h.RequireTLSFor(Attempt{}) }

// RequireTLSFor is RequireTLS for an attempt with options a.
func (h *Host) RequireTLSFor(a Attempt) bool {
	if a.RequireTLS {
		return true
	}
	return !a.relaxed() && h.Level.RequiresTLS()
}

// ServerName is the SNI name to send: the TLSA base domain under DANE
// (RFC 7672 8.1), the MX host name otherwise.
func (h *Host) ServerName() string {
	if h.DANE != nil && h.Level == DANE {
		return h.DANE.Base
	}
	return h.Name
}

// TLSConfig returns the *tls.Config for a STARTTLS handshake with the host
// for an ordinary message: TLSConfigFor(base, Attempt{}).
func (h *Host) TLSConfig(base *tls.Config) *tls.Config { return h.TLSConfigFor(base, Attempt{}) }

// TLSConfigFor returns the *tls.Config for a STARTTLS handshake for an
// attempt with options a. For levels that require authentication (DANE,
// STSEnforce, Verify) and for REQUIRETLS, every handshake, resumed or
// not, is verified and aborted on failure. For the others (STSTesting,
// Opportunistic, Encrypt) and for relaxed attempts it never aborts: call
// Verify on the ConnectionState to learn the verdict for reporting.
//
// base is cloned (nil is fine); its RootCAs, ServerName,
// InsecureSkipVerify and VerifyConnection are replaced.
func (h *Host) TLSConfigFor(base *tls.Config, a Attempt) *tls.Config {
	if a.RequireTLS {
		v, err := h.requireTLSVerifier()
		if err != nil {
			return tlsverify.Config(base, h.ServerName(), failVerifier{err})
		}
		return tlsverify.Config(base, h.ServerName(), v)
	}
	if !a.relaxed() && h.Level.Authenticates() {
		return tlsverify.Config(base, h.ServerName(), verifierFunc(func(cs tls.ConnectionState) error {
			_, err := h.Verify(cs)
			return err
		}))
	}
	// Opportunistic security (RFC 7435): encrypt, authenticate nothing.
	return tlsverify.Config(base, h.ServerName(), verifierFunc(func(tls.ConnectionState) error { return nil }))
}

// CheckAttempt reports whether an attempt with options a may use this
// host at all: for REQUIRETLS, whether RFC 8689 4.2.1 can be met (a
// *Error of KindRequireTLS, enhanced code 5.7.30, when not).
func (h *Host) CheckAttempt(a Attempt) error {
	if h.Err != nil {
		return h.Err
	}
	if a.RequireTLS {
		_, err := h.requireTLSVerifier()
		return err
	}
	return nil
}

// requireTLSVerifier is the authentication REQUIRETLS demands (RFC 8689
// 4.2.1): DANE with the host's name from a secure MX RRset or a matching
// MTA-STS policy, or WebPKI with a matching MTA-STS policy.
func (h *Host) requireTLSVerifier() (tlsverify.Verifier, error) {
	sts := h.dec.STSPolicy()
	stsMatch := sts != nil && sts.Match(h.Name)
	switch {
	case h.Level == DANE && (h.dec.MXSecure || stsMatch):
		return h.daneVerifier(), nil
	case stsMatch:
		return h.pkix(), nil
	}
	return nil, &Error{Kind: KindRequireTLS, Domain: h.dec.Domain, Host: h.Name,
		Reason: "no DNSSEC-validated DANE and no MTA-STS policy for the host (RFC 8689 4.2.1)"}
}

// Verify checks a completed handshake against the host's level for an
// ordinary message and returns the verdict. A non-nil error (a *Error of
// KindVerify carrying the TLS-RPT result) comes with Failed.
func (h *Host) Verify(cs tls.ConnectionState) (Verdict, error) {
	if !cs.HandshakeComplete && len(cs.PeerCertificates) == 0 {
		return Failed, &Error{Kind: KindVerify, Domain: h.dec.Domain, Host: h.Name, Result: tlsrpt.ValidationFailure, Reason: "no TLS session"}
	}
	var v tlsverify.Verifier
	ok := Encrypted
	switch h.Level {
	case DANE:
		v, ok = h.daneVerifier(), Verified
		if !h.dec.MXSecure {
			// RFC 7672 2.2.1: the MX name was not authenticated.
			ok = Trusted
		}
	case STSEnforce, STSTesting:
		v, ok = h.pkix(), Verified
	case PKIX:
		v, ok = &nameVerifier{pkix: h.pkix(), names: h.match}, Verified
	default:
		return Encrypted, nil
	}
	if err := v.Verify(cs); err != nil {
		return Failed, &Error{Kind: KindVerify, Domain: h.dec.Domain, Host: h.Name,
			Result: tlsverify.ClassifyHandshakeError(err), Err: err}
	}
	return ok, nil
}

// STARTTLSNotOffered returns the error for a session with this host whose
// EHLO response lacked STARTTLS: a *Error of KindSTARTTLS naming the
// domain and the host, with Result starttls-not-supported and enhanced
// code 4.7.4, matching ErrSTARTTLSNotOffered with errors.Is. An MTA that
// drives its own SMTP client defers with it when RequireTLSFor says TLS
// is required, and passes it to RecordSession either way.
func (h *Host) STARTTLSNotOffered() error {
	e := &Error{Kind: KindSTARTTLS, Host: h.Name, Result: tlsrpt.StartTLSNotSupported}
	if h.dec != nil {
		e.Domain = h.dec.Domain
	}
	return e
}

// FailureResult classifies a failed delivery attempt via this host into a
// TLS-RPT result type: ErrSTARTTLSNotOffered gives starttls-not-supported,
// a *Error its Result, a handshake, verification or certificate error
// the result of tlsrpt.Classify. It returns "" for a nil error and for
// failures that are not TLS failures (for example a refused connection),
// which TLS-RPT does not count.
func (h *Host) FailureResult(err error) tlsrpt.ResultType {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrSTARTTLSNotOffered) {
		return tlsrpt.StartTLSNotSupported
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Result
	}
	return tlsrpt.Classify(err)
}

func (h *Host) daneVerifier() *tlsverify.DANE {
	h.daneOnce.Do(func() {
		names := dane.ReferenceNames(h.DANE, h.dec.Domain, h.dec.MXCNAME, h.dec.MXSecure)
		h.daneV = h.DANE.Verifier(names...) // with the preference Level was decided on
		h.daneV.Now = h.ev.Now
	})
	return h.daneV
}

func (h *Host) pkix() *tlsverify.PKIX {
	return &tlsverify.PKIX{Roots: h.ev.Roots, Host: h.Name, Now: h.ev.Now}
}

type verifierFunc func(tls.ConnectionState) error

func (f verifierFunc) Verify(cs tls.ConnectionState) error { return f(cs) }

type failVerifier struct{ err error }

func (f failVerifier) Verify(tls.ConnectionState) error { return f.err }

// nameVerifier checks a WebPKI chain and then the leaf against operator
// names: exact names, or ".suffix" for any subdomain (Postfix semantics).
type nameVerifier struct {
	pkix  *tlsverify.PKIX
	names []string
}

func (n *nameVerifier) Verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return &tlsverify.Error{Kind: tlsverify.KindNoCertificate, Result: tlsrpt.ValidationFailure}
	}
	leaf := cs.PeerCertificates[0]
	p := *n.pkix
	var lastErr error
	for _, name := range n.names {
		if !strings.HasPrefix(name, ".") {
			p.Host = name
			if lastErr = p.Verify(cs); lastErr == nil {
				return nil
			}
			continue
		}
		for _, san := range leaf.DNSNames {
			san, err := dnsname.DNSID.Normalize(san)
			if err != nil || strings.HasPrefix(san, "*.") || !strings.HasSuffix(san, name) {
				continue
			}
			p.Host = san
			if lastErr = p.Verify(cs); lastErr == nil {
				return nil
			}
		}
	}
	if lastErr == nil {
		lastErr = x509.HostnameError{Certificate: leaf, Host: strings.Join(n.names, ",")}
	}
	return lastErr
}
