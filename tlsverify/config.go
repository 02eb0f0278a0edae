package tlsverify

import (
	"crypto/tls"
)

// Verifier is what Config installs: DANE and PKIX implement it.
type Verifier interface {
	// Verify is called by crypto/tls for every handshake, full or
	// resumed, once the server's certificates are parsed.
	Verify(cs tls.ConnectionState) error
}

// Config returns a client tls.Config that authenticates the server with
// v instead of crypto/tls's own WebPKI verification.
//
// It clones base (nil means a zero tls.Config) and sets:
//
//   - ServerName to serverName in canonical form. For DANE this must be
//     the TLSA base domain: RFC 7672 8.1 (and RFC 7671 10.2) require it as
//     SNI. For MTA-STS it is the MX host name.
//   - MinVersion to at least TLS 1.2 (a higher one in base is kept).
//   - InsecureSkipVerify to true and VerifyConnection to v.Verify.
//
// Read this before copying any of it. InsecureSkipVerify only turns off
// crypto/tls's built-in WebPKI check, which would wrongly reject DANE
// servers (DANE-EE certificates are often self-signed or name-less);
// VerifyConnection puts our check in its place. The two only make sense
// together: InsecureSkipVerify without VerifyConnection accepts any
// server. VerifyConnection, unlike VerifyPeerCertificate, also runs on
// resumed sessions, so a session established under an old TLSA RRset or
// policy cannot skip the current one; VerifyPeerCertificate must never be
// used for this. A VerifyConnection set in base is replaced (wrap v to
// add checks); a VerifyPeerCertificate in base is kept and still runs on
// full handshakes, which can only reject more.
//
// A nil v gives a Config whose handshakes always fail with KindConfig.
func Config(base *tls.Config, serverName string, v Verifier) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = new(tls.Config)
	}
	if n := canonicalName(serverName); n != "" {
		c.ServerName = n
	} else {
		c.ServerName = serverName
	}
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	c.InsecureSkipVerify = true
	if v == nil {
		c.VerifyConnection = func(tls.ConnectionState) error {
			return newError(KindConfig, "no verifier")
		}
	} else {
		c.VerifyConnection = v.Verify
	}
	return c
}
