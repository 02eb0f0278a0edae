// Package smtptls tells a sending MTA how to deliver mail to a domain
// securely, with DANE for SMTP (RFC 7672) and MTA-STS (RFC 8461) decided
// together and a TLS-RPT (RFC 8460) result type for every failure.
//
// DANE authenticates a receiving MX server through DNSSEC-signed TLSA
// records: no certificate authority, no trust on first use. MTA-STS serves
// domains that cannot sign their zones: an HTTPS-published, cached policy
// says which MX hosts are genuine and that they must present WebPKI-valid
// certificates. A sender must do both, let DANE win where it applies, and
// never turn a failure into a cleartext downgrade.
//
// The module is layered; each package is usable alone:
//
//   - resolver: DNS lookups with their DNSSEC status (a Stub trusting a local
//     validator's AD bit, an in-process Validating resolver, a Cache).
//   - tlsverify: TLSA and PKIX matching against a TLS connection, and the
//     crypto/tls hooks that enforce it on every handshake.
//   - dane: the RFC 7672 lookup policy for one MX host (addresses, then
//     TLSA, CNAME rules, usable records, reference identifiers).
//   - mtasts: MTA-STS records, policies, the strict HTTPS fetcher, caches
//     and proactive refresh.
//   - tlsrpt: RFC 8460 result types, policy descriptions and reports.
//   - smtptlstest: a test kit (like net/http/httptest) with a signed DNS
//     world, a test CA, MTA-STS HTTPS and STARTTLS SMTP servers on loopback.
//
// This root package combines them into one decision per recipient domain.
//
// One clock: Evaluator.Now reaches every part the Evaluator builds (its
// default resolver, MTA-STS client and cache, and every verifier it
// returns). Each part also has a Now field of its own, since each is usable
// alone; a caller who builds parts and passes them in (Evaluator.Resolver,
// Evaluator.STS) sets the same func on each: resolver.Cache.Now,
// resolver.Validating.Now, mtasts.Client.Now (which its default
// MemoryCache shares), mtasts.MemoryCache.Now for a cache built by hand,
// and tlsverify.DANE.Now and tlsverify.PKIX.Now for verifiers built by
// hand.
package smtptls
