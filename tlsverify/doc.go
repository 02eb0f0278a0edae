// Package tlsverify decides whether an SMTP server's certificate chain is
// acceptable under DANE (RFC 7672, with TLSA from RFC 6698 and RFC 7671)
// or under MTA-STS's WebPKI rule (RFC 8461 4.2), and plugs that decision
// into crypto/tls.
//
// Contract:
//
//   - DANE.VerifyChain and PKIX.VerifyChain take the chain as the server
//     sent it, leaf first, and return nil or a *Error whose Kind says what
//     failed and whose Result is the TLS-RPT result type (RFC 8460 4.3).
//     They never panic and bound their work whatever the chain or the
//     TLSA RRset hold (MaxChain, MaxRecords, and internal limits on path
//     building; see KindLimit).
//   - TLSA records are this package's own TLSA type, taken as given: the
//     caller (package dane) decides that the RRset was DNSSEC-secure.
//     Records are compared as bytes (Certificate.Raw,
//     Certificate.RawSubjectPublicKeyInfo), never as hex strings.
//   - Config installs a verifier in a tls.Config through VerifyConnection
//     with InsecureSkipVerify, so that it also runs on resumed sessions.
//   - Names are accepted in any case, with or without the trailing dot,
//     as U-labels or A-labels; errors report them as lowercase A-labels
//     without the dot.
//
// crypto/tls parses every certificate the server sends before
// VerifyConnection runs. A certificate Go cannot parse (a negative serial
// number, a malformed extension, ...) therefore ends the handshake before
// DANE is consulted, even when the only records are DANE-EE(3) ones that
// would match the leaf's bytes. Such handshakes fail closed; see
// ClassifyHandshakeError for how they are reported. This package never
// sets GODEBUG to relax the parser.
//
// Deliberate differences from OpenSSL's DANE code, on which Postfix is
// built: usages PKIX-TA(0) and PKIX-EE(1) are unusable (RFC 7672 3.1.3);
// DANE-EE(3) never checks names (RFC 7672 3.1.1); signatures use Go's
// algorithm policy (no MD5 or SHA-1 signatures on a DANE-TA path); and
// extended key usages are not checked on DANE-TA paths (RFC 7672 does
// not require them).
package tlsverify
