// Package smtptlstest is a test kit for mail transfer agents that deliver
// with DANE (RFC 7672) and MTA-STS (RFC 8461), in the way net/http/httptest
// is one for HTTP: it runs, in-process and on loopback, everything such an
// MTA talks to, for real and under the test's control.
//
// A World holds:
//
//   - A DNS hierarchy from its own root: zones added with AddZone, each
//     unsigned or signed (NSEC, NSEC3, NSEC3 with opt-out; algorithms 5, 7,
//     8, 10, 13, 14, 15) with real keys, delegated with real DS records.
//     Zones hold unsigned data (zone-file text given to Zone.Add); the World
//     signs on the fly and caches the signatures until the zone changes.
//   - A recursive DNS front on UDP and TCP 127.0.0.1 (DNSAddr), which
//     answers every name from the zone that owns it, chases CNAMEs across
//     zones, and returns NXDOMAIN and NODATA with the SOA and, with DO, the
//     NSEC/NSEC3 proofs (closest encloser, next closer, wildcard, opt-out)
//     and RRSIGs a validator needs.
//   - Faults per name, type or zone: SERVFAIL, silence, truncation,
//     spoofed replies, expired, premature, broken or stripped signatures, a
//     wrong DS, unchased CNAME chains, delays (see Fault).
//   - A test CA, an MTA-STS HTTPS server (SetPolicy, with switches for
//     every failure a policy fetch can meet) and STARTTLS SMTP servers
//     (AddMX) that record what they receive, with switches for the
//     misbehaving peer: no STARTTLS (stripped), a broken handshake, a
//     stall at any stage, missing extensions and chosen replies
//     (SMTPConfig).
//   - Senders pointed at the World: World.Evaluator (an smtptls.Evaluator
//     on the World's DNS, CA and policy server) and World.Client (a
//     deliver.Client that also dials through the World). Send is a thin
//     helper over deliver for one session with one host.
//   - An address map: the World's names and addresses resolve and dial
//     (DialContext, HTTPClient) to the real loopback listeners behind them,
//     and everything else is refused, so no test ever leaves the machine.
//     DialContextWith and HTTPClientWith resolve names with a resolver
//     instead, through the DNS front, as an MTA's dialer does.
//   - Simulated round trip times: SetDelay for the DNS front, SetNetDelay
//     for TCP connects and the MTA-STS server's TLS handshake and
//     response, so that benchmarks can count the round trips on a critical
//     path as wall time divided by the delay.
//
// # The DNS front's contract
//
// With CD=1 and DO=1 the front returns the raw signed data, with the
// signature faults applied and never a SERVFAIL for bogus data: it is
// what a validator that builds the chain of trust itself (from Anchors)
// must be tested against. DS and DNSKEY RRsets of every zone can be asked
// for; the parent side of a delegation answers DS.
//
// With CD=0 the front acts as a validating resolver: it sets AD (to
// clients that set DO or AD, RFC 6840 section 5.7) when every zone the
// answer comes from is secure from the root down and no fault taints the
// records used, and it answers SERVFAIL (with an Extended DNS Error, RFC
// 8914) when any is bogus. A signed zone whose parent publishes no DS is
// insecure, as is everything below an unsigned zone, a denial that rests
// on an opt-out NSEC3 span, and NSEC3 with more than 150 iterations (RFC
// 9276). This path is a model of a validator computed from the World's
// configuration, not a validator: the project's own validator and the
// real resolvers of its interop suite are the reference. It exists so that
// code that trusts the AD bit of a local resolver (resolver.Stub) can be
// tested against the answers such a resolver gives.
//
// Answers over UDP are limited to the client's EDNS buffer size and to
// 1232 bytes (512 without EDNS); larger ones have TC set, and the client
// must retry over TCP, where the answer is complete.
//
// # Names
//
// World methods take names in any case, with or without the trailing dot,
// U-labels included. Zone.Add and Zone.Remove follow zone-file rules
// instead: a name without a trailing dot is relative to the zone. Methods
// that return names return them as the DNS speaks (Zone.Name: lowercase,
// fully qualified) or as the rest of the project does (SMTPServer.Host:
// lowercase A-labels without the dot), as documented on each.
//
// # Lifetime and concurrency
//
// NewWorld starts a World in a few milliseconds (ECDSA keys; RSA zones
// cost tens of milliseconds each to create) and Close stops every server
// and waits for their goroutines; New does both for a test. Nothing is
// global: parallel tests may each have their own World. Every method is
// safe for concurrent use, also while servers are serving; changes to zones
// and faults apply to the queries that follow.
//
// The World is for tests and examples: it trusts its callers, panics on
// invalid configuration, and bounds what it accepts from the network only
// as much as a test server needs to.
package smtptlstest
