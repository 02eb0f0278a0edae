// Package tlsrpt holds the vocabulary of SMTP TLS Reporting (RFC 8460):
// the result types a sending MTA records for a failed TLS session and the
// policy types a report describes.
//
// The package is a leaf: it imports nothing else from this module, so every
// other package (DNS, DANE, MTA-STS, certificate verification) can attach a
// ResultType to its errors without import cycles. The string values are the
// exact tokens of RFC 8460 section 4.3 and 4.4; they appear verbatim in
// report JSON and must never be changed. Classify is the module's one
// mapping from TLS and x509 errors to result types (ResultError lets an
// error of another package carry its own).
//
// It also implements the rest of RFC 8460: the _smtp._tls TXT record
// (ParseRecord, SelectRecord; strict ABNF), the JSON report of section 4.4
// (Report, rendered by JSON and Gzip, parsed tolerantly by ParseReport and
// ParseMessage with bounded sizes), a bounded, concurrency-safe Aggregator
// that counts sessions per UTC day and (policy domain, policy) and builds
// one report per domain, and delivery: HTTPS POST (Submitter, which
// verifies certificates and refuses redirects) and the multipart/report
// e-mail form (Message, signed and sent by the MTA). Reports must be
// delivered despite TLS failures and their delivery sessions must not be
// counted (RFC 8460 3). Names are returned as lowercase A-labels without
// the trailing dot. Errors are *Error with a Kind.
package tlsrpt
