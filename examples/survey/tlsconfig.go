package main

import (
	"crypto/tls"
	"crypto/x509"
)

// newTLSConfig is the policy fetch's TLS configuration: the given roots,
// TLS 1.2 at least (RFC 8461 3.3).
func newTLSConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}
