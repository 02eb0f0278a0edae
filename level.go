package smtptls

import "fmt"

// Level is the TLS requirement for delivery to one host, and so what the
// MTA must do when STARTTLS or authentication fails.
type Level uint8

const (
	// Opportunistic: use STARTTLS when offered, accept any certificate,
	// and deliver in cleartext when STARTTLS is not offered (RFC 7435).
	// Neither DANE nor MTA-STS applies to the host.
	Opportunistic Level = iota
	// Encrypt: TLS is mandatory, the certificate is not authenticated.
	// Chosen for a host whose secure TLSA RRset has no usable record
	// (RFC 7672 2.2) and by the operator override "encrypt". Without
	// STARTTLS, do not deliver via this host.
	Encrypt
	// DANE: TLS and DANE authentication are mandatory (RFC 7672 2.2).
	// On any failure, do not deliver via this host; MTA-STS can never
	// rescue it (RFC 8461 2).
	DANE
	// STSEnforce: MTA-STS enforce (RFC 8461 5): TLS and a WebPKI-valid
	// certificate for the MX name are mandatory. Failures are temporary:
	// before bouncing, Recheck the policy.
	STSEnforce
	// STSTesting: MTA-STS testing: try TLS and check the certificate, but
	// deliver whatever happens; report failures with TLS-RPT.
	STSTesting
	// PKIX: operator override "verify" or "secure": TLS with a
	// WebPKI-valid certificate matching the configured names is
	// mandatory.
	PKIX
	// NoTLS: operator override "none": do not use STARTTLS at all.
	NoTLS
)

var levelNames = [...]string{
	Opportunistic: "opportunistic",
	Encrypt:       "encrypt",
	DANE:          "dane",
	STSEnforce:    "sts-enforce",
	STSTesting:    "sts-testing",
	PKIX:          "pkix",
	NoTLS:         "none",
}

// String returns the level's name ("dane", "sts-enforce", ...).
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// Authenticates reports whether the level makes certificate
// authentication mandatory: a handshake that fails it is aborted.
func (l Level) Authenticates() bool {
	return l == DANE || l == STSEnforce || l == PKIX
}

// RequiresTLS reports whether the level forbids cleartext delivery.
func (l Level) RequiresTLS() bool {
	return l == Encrypt || l.Authenticates()
}

// Verdict is the outcome of a TLS session with a host.
type Verdict uint8

const (
	// Failed: authentication was required or attempted and failed.
	Failed Verdict = iota
	// Encrypted: TLS without authentication.
	Encrypted
	// Trusted: DANE authentication through an insecure (unsigned) MX
	// RRset. RFC 7672 2.2.1 forbids reporting such a session as
	// verified: the MX name itself was not authenticated.
	Trusted
	// Verified: DANE authentication with a DNSSEC-secure MX RRset, or a
	// WebPKI certificate matching an MTA-STS policy or operator names.
	Verified
)

var verdictNames = [...]string{Failed: "failed", Encrypted: "encrypted", Trusted: "trusted", Verified: "verified"}

// String returns "failed", "encrypted", "trusted" or "verified".
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}
