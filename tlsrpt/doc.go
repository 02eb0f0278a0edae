// Package tlsrpt holds the vocabulary of SMTP TLS Reporting (RFC 8460):
// the result types a sending MTA records for a failed TLS session and the
// policy types a report describes.
//
// The package is a leaf: it imports nothing else from this module, so every
// other package (DNS, DANE, MTA-STS, certificate verification) can attach a
// ResultType to its errors without import cycles. The string values are the
// exact tokens of RFC 8460 section 4.3 and 4.4; they appear verbatim in
// report JSON and must never be changed.
package tlsrpt
