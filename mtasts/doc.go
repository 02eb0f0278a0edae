// Package mtasts implements the sending side of SMTP MTA Strict Transport
// Security (RFC 8461, with errata 6253, 6285 and 7282): the _mta-sts TXT
// record, the policy file, its strict HTTPS fetch, MX pattern matching,
// policy caches and proactive refresh.
//
// # Contract
//
// Client.Lookup answers "which policy applies to this domain now" by
// RFC 8461 section 5. DNS and fetch failures are outcomes recorded in the
// Result, not errors: with no unexpired cached policy a sender delivers as
// if the domain had no MTA-STS policy, and with one it applies the cached
// policy. A cached policy is replaced only by a newer valid policy; a
// failed fetch, a removed or broken TXT record or a DNS failure never
// removes it before it expires. Lookup returns an error only for a
// cancelled context or an argument that is not a domain name.
//
// Client.Recheck is for the moment before a message fails permanently
// under an enforce policy; Client.Refresh and Client.RefreshLoop keep live
// policies fresh (RFC 8461 10.2) and prune unused ones.
//
// The parsers (ParseRecord, SelectRecord, ParsePolicy) are strict per the
// ABNF and reject what it rejects, with two exceptions in ParsePolicy
// where rejecting would turn an enforce policy into no policy (failing
// open) and tolerating cannot change what matches: blank lines after the
// last field, and one trailing dot on an mx pattern. Policy.Lint reports
// those, and what is valid but unwise (a wildcard over a public suffix,
// typos of known keys), without changing how the policy applies.
//
// Fetch accepts a policy only over HTTPS from mta-sts.<domain>, with a
// WebPKI-valid certificate for that name, status 200, no redirects, media
// type text/plain, at most 64 KiB, within one minute. It never weakens
// these for a given *http.Client: a client that skips certificate
// verification makes every fetch fail.
//
// Errors are *Error values with a Kind and, for failures a sender reports,
// the TLS-RPT result type (tlsrpt.STSPolicyFetchError,
// tlsrpt.STSPolicyInvalid, tlsrpt.STSWebPKIInvalid). ErrCacheMiss is the
// one sentinel, for Cache implementations.
//
// Names: every function accepts domain names in any case, with or without
// the trailing dot, and with U-labels (converted with IDNA2008 lookup),
// and returns lowercase A-labels without the dot. A name that is not a
// mail domain (invalid UTF-8, an address, an empty or overlong label) is
// a KindInvalidDomain error, never rewritten into another name.
//
// # What this package does not do
//
// It does not choose MX hosts, dial them or verify their certificates
// (RFC 8461 4.2): Policy.Match checks an MX name against the policy, and
// the module's root package combines the policy with DANE, which always
// wins where it applies (RFC 8461 2).
package mtasts
