package tlsrpt

// ResultType is a failure result type of RFC 8460 section 4.3, as written
// in the "result-type" member of a report's failure-details.
type ResultType string

// Negotiation failures (RFC 8460 4.3.1).
const (
	// StartTLSNotSupported: the receiving MX did not offer STARTTLS.
	StartTLSNotSupported ResultType = "starttls-not-supported"
	// CertificateHostMismatch: the certificate names none of the
	// reference identifiers.
	CertificateHostMismatch ResultType = "certificate-host-mismatch"
	// CertificateExpired: a certificate is expired (or not yet valid).
	CertificateExpired ResultType = "certificate-expired"
	// CertificateNotTrusted: the chain could not be trusted: unknown
	// or unmatched trust anchor, a bad signature, a violated constraint
	// (RFC 8460 names "certificate chain errors" here).
	CertificateNotTrusted ResultType = "certificate-not-trusted"
	// ValidationFailure: a general failure not covered by a more specific
	// type, including "no TLSA record matched".
	ValidationFailure ResultType = "validation-failure"
)

// Policy failures (RFC 8460 4.3.2).
const (
	// TLSAInvalid: the TLSA RRset held no usable record.
	TLSAInvalid ResultType = "tlsa-invalid"
	// DNSSECInvalid: no valid records were returned by the resolver
	// (a bogus or indeterminate DNSSEC result).
	DNSSECInvalid ResultType = "dnssec-invalid"
	// DANERequired: the sender is configured to require DANE for the
	// destination, but no DNSSEC-validated TLSA records were present for
	// the MX host.
	DANERequired ResultType = "dane-required"
	// STSPolicyFetchError: the MTA-STS policy could not be fetched.
	STSPolicyFetchError ResultType = "sts-policy-fetch-error"
	// STSPolicyInvalid: the fetched MTA-STS policy did not parse or
	// validate.
	STSPolicyInvalid ResultType = "sts-policy-invalid"
	// STSWebPKIInvalid: the MTA-STS policy could not be authenticated
	// by PKIX validation of its HTTPS server.
	STSWebPKIInvalid ResultType = "sts-webpki-invalid"
)

// PolicyType is the "policy-type" of a report's policy object
// (RFC 8460 4.4).
type PolicyType string

const (
	// PolicyTLSA: a DANE TLSA policy applied.
	PolicyTLSA PolicyType = "tlsa"
	// PolicySTS: an MTA-STS policy applied.
	PolicySTS PolicyType = "sts"
	// PolicyNoPolicyFound: neither applied (opportunistic TLS).
	PolicyNoPolicyFound PolicyType = "no-policy-found"
)
