package main

// Record is one line of the JSON Lines output: the survey of one domain.
// The package documentation describes each field.
type Record struct {
	Domain   string   `json:"domain"`
	Rank     int      `json:"rank,omitempty"`
	MXStatus string   `json:"mx_status,omitempty"`
	MXSecure bool     `json:"mx_secure"`
	DANE     string   `json:"dane,omitempty"`
	MTASTS   string   `json:"mta_sts,omitempty"`
	TLSRPT   bool     `json:"tls_rpt"`
	Provider string   `json:"provider,omitempty"`
	MX       []MXHost `json:"mx"`
	Error    string   `json:"error,omitempty"`
}

// MXHost is one MX host of a Record. The package documentation describes
// each field.
type MXHost struct {
	Host       string `json:"host"`
	Preference uint16 `json:"preference"`
	TLSA       string `json:"tlsa"`
	STARTTLS   string `json:"starttls,omitempty"`
	Match      string `json:"match,omitempty"`
	Rollover   string `json:"rollover,omitempty"`
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

// Values of MXHost.Rollover.
const (
	rollNext   = "current+next"
	rollIssuer = "current+issuer"
	rollTAOnly = "issuer"
	rollNone   = "none"
)
