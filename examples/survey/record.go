package main

import "github.com/smtptls/smtptls/examples/internal/rollover"

// Record is one line of the JSON Lines output: the survey of one domain.
// A Record with Error set carries only Domain, Rank, MXSecure (false),
// TLSRPT (false) and an empty MX: a domain that could not be surveyed is
// counted apart, never as what a partial record would suggest.
type Record struct {
	// Domain is the domain as listed, normalised: lowercase A-labels,
	// no trailing dot.
	Domain string `json:"domain"`
	// Rank is the rank the list gave ("rank,domain" lines); absent when
	// it gave none.
	Rank int `json:"rank,omitempty"`
	// MXStatus is "ok" (an MX RRset), "implicit" (no MX records: the
	// domain is its own mail host, RFC 5321 5.1), "null" (a null MX, RFC
	// 7505: the domain accepts no mail) or "nxdomain" (no such domain).
	MXStatus string `json:"mx_status,omitempty"`
	// MXSecure reports that the MX RRset, or its denial (the NODATA of
	// an implicit MX, the NXDOMAIN), is DNSSEC-secure: validated
	// in-process, or with -trust-ad carrying the resolver's AD bit.
	MXSecure bool `json:"mx_secure"`
	// DANE is "full" (MXSecure, and every MX host has usable TLSA
	// records), "partial" (MXSecure, and some but not all do) or "none"
	// (otherwise, an insecure MX RRset included, whatever its hosts
	// publish: RFC 7672 2.2.1).
	DANE string `json:"dane,omitempty"`
	// MTASTS is the mode of the policy fetched ("enforce", "testing",
	// "none"), "invalid" (an _mta-sts TXT record, but no usable policy:
	// an invalid record, several records, or a policy that could not be
	// fetched or parsed; RFC 8461 3) or "absent" (no _mta-sts record).
	MTASTS string `json:"mta_sts,omitempty"`
	// TLSRPT reports that _smtp._tls.<domain> holds exactly one valid
	// TLS-RPT record (RFC 8460 3).
	TLSRPT bool `json:"tls_rpt"`
	// Provider is the registered domain, by the public suffix list, of the
	// most preferred MX host (equal preferences broken by host name); for
	// an implicit MX, of the domain itself. Absent for a null MX,
	// NXDOMAIN, or a host name the list cannot place.
	Provider string `json:"provider,omitempty"`
	// MX are the MX hosts considered (at most maxMX), by preference then
	// name; empty (never null) for a null MX, NXDOMAIN or an error.
	MX []MXHost `json:"mx"`
	// Error says why the domain could not be surveyed: a lookup of the
	// MX, _mta-sts or _smtp._tls records that could not be completed or
	// failed validation, or the time limit. A null MX and NXDOMAIN are
	// outcomes, not errors.
	Error string `json:"error,omitempty"`
}

// MXHost is one MX host of a Record.
type MXHost struct {
	// Host is the MX target, lowercase A-labels without the trailing
	// dot (the name in the MX record, not its CNAME target).
	Host string `json:"host"`
	// Preference is the MX preference (0 for an implicit MX).
	Preference uint16 `json:"preference"`
	// TLSA is "usable" (a secure TLSA RRset with usable records, RFC
	// 7672 2.2), "unusable" (a secure TLSA RRset without any: TLS is
	// required, without authentication), "none" (no TLSA records, an
	// insecure answer, a host without address, or an MX target that is
	// not a host name), "bogus" (an address or TLSA lookup failed DNSSEC
	// validation) or "servfail" (one could not be completed). The last
	// two make the host unusable (RFC 7672 2.1.2).
	TLSA string `json:"tlsa"`
	// Addr is the address probed, with -starttls: the host's first
	// address that accepted a connection, or its first address when
	// none did. Absent when the host was not probed.
	Addr string `json:"addr,omitempty"`
	// STARTTLS is the outcome of the probe with -starttls: "ok" (a TLS
	// handshake after STARTTLS), "not-offered" (the EHLO reply does not
	// list STARTTLS), "failed" (STARTTLS was refused or the handshake
	// failed, TLS 1.2 at least) or "unreachable" (no connection, or no
	// SMTP dialogue up to the EHLO reply, at any address). Absent without
	// -starttls, and for a host that must not be used (tlsa "bogus" or
	// "servfail") or has no address.
	STARTTLS string `json:"starttls,omitempty"`
	// Match is the verdict of the host's policy on what the probe met
	// (absent when the host was unreachable):
	// "verified", "trusted" (DANE from an insecure MX RRset), "encrypted"
	// or "failed" (smtptls.Verdict), or "cleartext" when STARTTLS was not
	// offered and the policy allows that. A host that MTA-STS enforce
	// excludes is "failed".
	Match string `json:"match,omitempty"`
	// Rollover is the TLSA rollover scheme seen, for a host with usable
	// TLSA records and a TLS handshake: "current+next", "current+issuer",
	// "issuer-only", "none" or "no-match" (package rollover).
	Rollover rollover.Scheme `json:"rollover,omitempty"`
}

// Values of Record.MXStatus.
const (
	mxOK       = "ok"
	mxImplicit = "implicit"
	mxNull     = "null"
	mxNXDomain = "nxdomain"
)

// Values of Record.DANE.
const (
	daneFull    = "full"
	danePartial = "partial"
	daneNone    = "none"
)

// Values of Record.MTASTS.
const (
	stsEnforce = "enforce"
	stsTesting = "testing"
	stsNone    = "none"
	stsInvalid = "invalid"
	stsAbsent  = "absent"
)

// Values of MXHost.TLSA.
const (
	tlsaUsable   = "usable"
	tlsaUnusable = "unusable"
	tlsaNone     = "none"
	tlsaBogus    = "bogus"
	tlsaServFail = "servfail"
)

// Values of MXHost.STARTTLS.
const (
	probeOK          = "ok"
	probeNotOffered  = "not-offered"
	probeFailed      = "failed"
	probeUnreachable = "unreachable"
)
