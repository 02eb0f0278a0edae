package mtasts

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"sync"
	"time"
)

// maxVerifiedIssuers bounds the verified intermediates a FetchTransport
// remembers. The WebPKI issues from a few hundred intermediates, most
// certificates from a few dozen; an entry is one parsed certificate
// (a few KiB). Only an intermediate that chained to the roots enters, so
// a policy host cannot fill the cache with certificates of its own.
const maxVerifiedIssuers = 256

// serverAuth is the extended key usage a policy host's certificate must
// allow (crypto/tls asks for the same by default).
var serverAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}

// Certificate extensions whose effect on a chain depends on the
// certificates below them (RFC 5280 4.2.1.10, 4.2.1.11, 4.2.1.5,
// 4.2.1.14). crypto/x509 applies those of every certificate in a chain,
// trust anchor included for name constraints, to each new leaf; a
// chain that carries one is never cached, so that the cached path
// skips no check the full verification would make.
var (
	oidNameConstraints   = asn1.ObjectIdentifier{2, 5, 29, 30}
	oidPolicyConstraints = asn1.ObjectIdentifier{2, 5, 29, 36}
	oidPolicyMappings    = asn1.ObjectIdentifier{2, 5, 29, 33}
	oidInhibitAnyPolicy  = asn1.ObjectIdentifier{2, 5, 29, 54}
)

// errNoServerName and errNoCertificate fail a handshake that gives the
// verifier nothing to check.
var (
	errNoServerName  = errors.New("mtasts: no server name to verify the certificate for")
	errNoCertificate = errors.New("mtasts: the server sent no certificate")
)

// verifyServer validates a server's certificates (as sent: the leaf
// first) for serverName at now, with roots (nil: the system's), exactly
// as crypto/tls does without InsecureSkipVerify (RFC 8461 3.3: WebPKI,
// the policy host's name; RFC 5280 6 through crypto/x509): x509 Verify
// with the other certificates as intermediates, the serverAuth usage and
// the name as DNSName.
//
// It returns the verified chains, as crypto/tls records them in
// ConnectionState.VerifiedChains. With a cache, when the certificate
// right after the leaf is an intermediate that an earlier handshake
// verified against the same roots (same DER bytes, same pool), and the
// validity of that chain above the leaf covers now, the leaf is verified
// against that intermediate alone: its name, validity, serverAuth usage,
// the intermediate's constraints and the intermediate's signature on it
// are all checked; only the signatures above the intermediate, already
// checked, are skipped. A leaf that fails that path is verified in full,
// and the error is always the full verification's. So the cache accepts
// no leaf that a full verification with the chain its issuer was
// verified with would refuse; like a browser's intermediate cache, it
// may accept a server that has stopped sending the certificates above
// the leaf's issuer, which a full verification would not.
func verifyServer(cache *issuerCache, roots *x509.CertPool, certs []*x509.Certificate, serverName string, now time.Time) ([][]*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, errNoCertificate
	}
	if serverName == "" {
		return nil, errNoServerName
	}
	leaf := certs[0]
	if cache != nil && len(certs) > 1 && !hasExtension(leaf, oidPolicyConstraints, oidPolicyMappings, oidInhibitAnyPolicy) {
		if e := cache.get(roots, certs[1], now); e != nil {
			_, err := leaf.Verify(x509.VerifyOptions{Roots: e.anchor, DNSName: serverName, CurrentTime: now, KeyUsages: serverAuth})
			if err == nil {
				return [][]*x509.Certificate{append([]*x509.Certificate{leaf}, e.chain...)}, nil
			}
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: serverName, CurrentTime: now, KeyUsages: serverAuth})
	if err != nil {
		return nil, err
	}
	if cache != nil && len(certs) > 1 {
		cache.add(roots, certs[1], chains, now)
	}
	return chains, nil
}

// hasExtension reports whether c carries any of the extensions.
func hasExtension(c *x509.Certificate, oids ...asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		for _, o := range oids {
			if e.Id.Equal(o) {
				return true
			}
		}
	}
	return false
}

// issuerCache remembers intermediate certificates verified against a
// root pool, each until the first of its chain's certificates expires.
type issuerCache struct {
	max int

	mu   sync.Mutex // guards m and hits
	m    map[issuerKey]*issuerEntry
	hits int // lookups that found a valid entry
}

// issuerKey names a verified intermediate: its DER bytes (SHA-256) and
// the pool it chained to (nil: the system roots). Keeping the pool in
// the key also keeps it alive, so that a new pool can never take a
// collected one's address.
type issuerKey struct {
	roots *x509.CertPool
	sum   [sha256.Size]byte
}

// issuerEntry is a verified intermediate.
type issuerEntry struct {
	// anchor holds the intermediate alone: the roots of the cached path.
	anchor *x509.CertPool
	// chain is the verified chain from the intermediate to the root.
	chain []*x509.Certificate
	// notBefore and notAfter bound the validity of every certificate of
	// the verified chain from the intermediate up to the root.
	notBefore, notAfter time.Time
}

func newIssuerCache(max int) *issuerCache {
	return &issuerCache{max: max, m: make(map[issuerKey]*issuerEntry)}
}

// get returns the entry of inter when inter was verified against roots
// and its chain is valid at now, else nil. Expired entries are removed.
func (ic *issuerCache) get(roots *x509.CertPool, inter *x509.Certificate, now time.Time) *issuerEntry {
	k := issuerKey{roots: roots, sum: sha256.Sum256(inter.Raw)}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	e := ic.m[k]
	switch {
	case e == nil:
		return nil
	case now.After(e.notAfter):
		delete(ic.m, k)
		return nil
	case now.Before(e.notBefore):
		// A clock set back: not valid now, but it may be again.
		return nil
	}
	ic.hits++
	return e
}

// add remembers inter when one of chains (a successful verification's)
// goes through it as the leaf's issuer to a root above it, and neither
// it nor the certificates above carry constraints that a new leaf would
// have to be checked against (see oidNameConstraints).
func (ic *issuerCache) add(roots *x509.CertPool, inter *x509.Certificate, chains [][]*x509.Certificate, now time.Time) {
	var chain []*x509.Certificate
	for _, c := range chains {
		// The intermediate must not be the root itself: a leaf issued
		// by a root costs one signature check already.
		if len(c) >= 3 && bytes.Equal(c[1].Raw, inter.Raw) {
			chain = c
			break
		}
	}
	if chain == nil {
		return
	}
	e := &issuerEntry{chain: chain[1:], notBefore: chain[1].NotBefore, notAfter: chain[1].NotAfter}
	for i, c := range chain[1:] {
		if hasExtension(c, oidPolicyConstraints, oidPolicyMappings, oidInhibitAnyPolicy) ||
			i > 0 && hasExtension(c, oidNameConstraints) {
			return
		}
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(e.notAfter) {
			e.notAfter = c.NotAfter
		}
	}
	e.anchor = x509.NewCertPool()
	e.anchor.AddCert(inter)
	k := issuerKey{roots: roots, sum: sha256.Sum256(inter.Raw)}

	ic.mu.Lock()
	defer ic.mu.Unlock()
	if _, ok := ic.m[k]; !ok && len(ic.m) >= ic.max {
		for k, old := range ic.m {
			if now.After(old.notAfter) {
				delete(ic.m, k)
			}
		}
		// Still full: drop any one. Evicting costs a later fetch one
		// full verification, nothing else.
		for k := range ic.m {
			if len(ic.m) < ic.max {
				break
			}
			delete(ic.m, k)
		}
	}
	ic.m[k] = e
}

// len returns the number of cached intermediates.
func (ic *issuerCache) len() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return len(ic.m)
}
