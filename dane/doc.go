// Package dane implements the client side of the DANE lookup policy for
// SMTP (RFC 7672 section 2.2) for one server host: which TLSA records apply
// to it, at which base domain, and what that obliges a sender to do.
//
// Lookup follows RFC 7672 2.2.2 to the letter: the host's addresses are
// looked up first; an insecure address response means no TLSA lookup at
// all; a CNAME host whose whole chain is secure tries the expanded name,
// then the original name, as TLSA base domain; a CNAME host whose expansion
// is insecure may use only the original name, and only when the CNAME
// record of the original name is itself secure (a separate CNAME query
// tells). TLSA records are then looked up at _port._tcp.<base>. A caller
// that knows the host's zone to be signed may have the TLSA query leave
// with the address queries (Options.EarlyTLSA); the outcome is the same.
//
// A lookup that fails — addresses or TLSA, SERVFAIL, bogus, timeout — is an
// error: the caller must treat the host as unreachable and deliver via
// another host or defer (RFC 7672 2.1.2). It never degrades into "no DANE".
// That includes one address family failing, however, next to a secure
// answer of the other: the address queries are the first of those that
// locate the TLSA records (RFC 7672 2.2.2), and a failure of any of them
// makes the server "compromised" (RFC 7672 2.1.2). The rule does not tell
// bogus from SERVFAIL, so a Stub (to which a validating upstream reports
// bogus as SERVFAIL) and Validating agree. Next to an insecure answer,
// where DANE cannot apply, a transiently failed family is skipped and the
// other's addresses are used (resolver.LookupAddrs).
//
// The outcome is a Policy with a Level:
//
//   - None: no secure TLSA RRset. Opportunistic TLS, as before DANE.
//   - Encrypt: a secure TLSA RRset whose records are all unusable, also
//     those of a matching type the sender's digest preference leaves out
//     (Options, tlsverify.UsableRecords). TLS is mandatory (never
//     cleartext), without authentication (RFC 7672 2.2).
//   - Authenticate: at least one usable record. TLS and DANE
//     authentication are mandatory.
//
// The package does not decide between DANE and MTA-STS, nor sort MX hosts:
// the root package smtptls does, and passes the reference identifiers it
// builds with ReferenceNames.
package dane
