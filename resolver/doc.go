// Package resolver is the DNS layer of smtptls: one small interface,
// Resolver, that answers a question together with its DNSSEC status, and
// the implementations and helpers the rest of the module builds on.
//
// # Contract
//
// A Resolver either completes a lookup — records, NXDOMAIN or NODATA, each
// marked Secure or Insecure, an Insecure answer saying why in Reason and
// EDE — or fails with a *Error (with its own Reason and EDE). A bogus, indeterminate,
// SERVFAIL, REFUSED, timed-out or malformed lookup is always an error, never
// an Insecure answer: RFC 7672 2.1.1 requires a DANE client to delay
// delivery when DNS cannot say whether TLSA records exist, and an attacker
// who can make a lookup fail must not thereby turn DANE off.
//
// This package speaks DNS: names in Answer are lowercase and fully
// qualified with the trailing dot, as miekg/dns writes them. Questions may
// be asked in any case, with or without the dot.
//
// # Implementations
//
//   - Stub asks recursive resolvers and trusts their AD bit, but only from
//     loopback servers unless told otherwise (like glibc's trust-ad).
//   - Validating asks recursive resolvers for DNSSEC data with CD set and
//     validates it in-process from the root trust anchors (and any private
//     anchors, read with ParseAnchors), so DANE works without a local
//     validating resolver. Negative trust anchors (RFC 7646) let an
//     operator declare a broken zone Insecure for a while.
//   - Cache wraps any Resolver with TTL-based positive and negative caching
//     (RFC 2308), a memory bound, and one upstream query per (name, type) in
//     flight.
//
// The helpers LookupMX, LookupTLSA, LookupTXT and LookupAddrs run typed
// lookups on top of any Resolver.
//
// Every input from the network is treated as hostile. Stub and Validating
// share one DNS exchange (resolver/internal/wire): replies that do not
// match the query's ID, opcode and question are ignored (UDP) or rejected
// (TCP), UDP datagrams beyond 4096 bytes are ignored, replies of more than
// 1024 records are rejected, and every exchange with a server, TCP retry
// included, is bounded in time by Timeout and the caller's context.
// Records of other names and types are dropped and CNAME chains are
// bounded by MaxCNAMEs.
//
// The DNSSEC validator behind Validating lives in resolver/internal/dnssec;
// Validating maps its results to Answer and *Error.
package resolver
