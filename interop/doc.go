// Package interop holds the interoperability suite of the in-process DNSSEC
// validator (resolver.Validating) against real DNSSEC software: zones
// signed by ldns-signzone, served by nsd, reached through an unbound that
// does not validate, and judged side by side by Validating, unbound-host
// (libunbound) and delv (BIND).
//
// The suite needs those programs and runs only under run.sh, which builds
// the zones, starts the daemons and sets SMTPTLS_INTEROP_DIR,
// SMTPTLS_INTEROP_AUTH and SMTPTLS_INTEROP_UPSTREAM; a plain "go test ./..."
// skips it. Each scenario of questions.txt has an id naming what it tests;
// the verdict of each validator is the security status with the outcome
// (secure/DATA, secure/NODATA, insecure/NXDOMAIN, bogus/SERVFAIL ...).
// Disagreements with a peer fail the suite unless listed, with the RFC
// text that settles them, in expected-differences.txt. The scenarios of
// questions-anchors.txt start from trust anchors below the root and run
// once Validating supports such anchors (or with SMTPTLS_INTEROP_ANCHORS=1). Tampered responses (stripped
// signatures, altered data, forged denials, KeyTrap floods) go through a
// proxy between Validating and its upstream; for those only our verdict is
// checked, since the peers do not sit behind the proxy.
package interop
