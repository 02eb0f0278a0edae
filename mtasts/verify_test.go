package mtasts

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

const verifyHost = "mta-sts.cache.example"

// warm verifies a valid chain of p for verifyHost, which caches p's
// intermediate, and fails the test unless it did.
func warm(t *testing.T, ic *issuerCache, p *chainPKI, roots *x509.CertPool, now time.Time) {
	t.Helper()
	certs := certsOf(t, p.issue(t, leafTemplate(verifyHost)))
	if _, err := verifyServer(ic, roots, certs, verifyHost, now); err != nil {
		t.Fatalf("warming the cache: %v", err)
	}
	if ic.get(roots, p.inter, now) == nil {
		t.Fatal("the intermediate was not cached")
	}
}

// hits returns the cache's hit count.
func (ic *issuerCache) hitCount() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.hits
}

// checkVerify runs verifyServer with ic and without a cache, and checks
// that both agree with want (nil: success; else the TLS-RPT result type
// of the failure, as Fetch reports it).
func checkVerify(t *testing.T, ic *issuerCache, roots *x509.CertPool, certs []*x509.Certificate, name string, now time.Time, want tlsrpt.ResultType) {
	t.Helper()
	for _, c := range []*issuerCache{ic, nil} {
		chains, err := verifyServer(c, roots, certs, name, now)
		got := tlsrpt.Classify(err)
		if err != nil && got == "" {
			t.Errorf("cache %v: error %v is not a certificate failure", c != nil, err)
		}
		if got != want {
			t.Errorf("cache %v: verifyServer = %v (%q), want %q", c != nil, err, got, want)
		}
		if err == nil && (len(chains) == 0 || chains[0][0] != certs[0] || !chains[0][len(chains[0])-1].Equal(rootOf(t, roots, chains[0]))) {
			t.Errorf("cache %v: chains %v do not run from the leaf to a root", c != nil, chains)
		}
	}
}

// rootOf returns the last certificate of chain when roots holds it.
func rootOf(t *testing.T, roots *x509.CertPool, chain []*x509.Certificate) *x509.Certificate {
	t.Helper()
	last := chain[len(chain)-1]
	if _, err := last.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: last.NotBefore.Add(time.Minute)}); err != nil {
		t.Errorf("chain ends in %q, not a root: %v", last.Subject, err)
	}
	return last
}

// TestVerifyServerCache: the cached path accepts exactly what a full
// verification accepts. Each case warms a cache with a valid chain, then
// verifies another chain that reuses the cached intermediate (or imitates
// it) with and without the cache.
func TestVerifyServerCache(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := newChainPKI(t, "p256")
	other := newChainPKI(t, "p256")

	t.Run("new leaf from the cached intermediate", func(t *testing.T) {
		t.Parallel()
		ic := newIssuerCache(maxVerifiedIssuers)
		warm(t, ic, p, p.pool, now)
		certs := certsOf(t, p.issue(t, leafTemplate("other.example", verifyHost)))
		before := ic.hitCount()
		chains, err := verifyServer(ic, p.pool, certs, verifyHost, now)
		if err != nil {
			t.Fatal(err)
		}
		if ic.hitCount() != before+1 {
			t.Error("the cached intermediate was not used")
		}
		if len(chains) != 1 || len(chains[0]) != 3 || !chains[0][1].Equal(p.inter) || !chains[0][2].Equal(p.root) {
			t.Errorf("chains %v, want leaf, intermediate, root", chains)
		}
	})

	// A leaf the cached intermediate really signed, but wrong in every
	// other way, fails as it does without the cache.
	leafCases := []struct {
		name string
		tmpl func() *x509.Certificate
		host string
		at   time.Time
		want tlsrpt.ResultType
	}{
		{"wrong name", func() *x509.Certificate { return leafTemplate("mta-sts.elsewhere.example") }, verifyHost, now, tlsrpt.CertificateHostMismatch},
		{"parent domain only", func() *x509.Certificate { return leafTemplate("cache.example") }, verifyHost, now, tlsrpt.CertificateHostMismatch},
		{"expired", func() *x509.Certificate {
			c := leafTemplate(verifyHost)
			c.NotBefore, c.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour)
			return c
		}, verifyHost, now, tlsrpt.CertificateExpired},
		{"not yet valid", func() *x509.Certificate {
			c := leafTemplate(verifyHost)
			c.NotBefore = now.Add(time.Hour)
			return c
		}, verifyHost, now, tlsrpt.CertificateExpired},
		{"clientAuth only", func() *x509.Certificate {
			c := leafTemplate(verifyHost)
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			return c
		}, verifyHost, now, tlsrpt.CertificateNotTrusted},
		{"codeSigning only", func() *x509.Certificate {
			c := leafTemplate(verifyHost)
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
			return c
		}, verifyHost, now, tlsrpt.CertificateNotTrusted},
		{"no EKU", func() *x509.Certificate {
			c := leafTemplate(verifyHost)
			c.ExtKeyUsage = nil
			return c
		}, verifyHost, now, ""},
		{"unhandled critical extension", func() *x509.Certificate {
			c := leafTemplate(verifyHost)
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}}
			return c
		}, verifyHost, now, tlsrpt.CertificateNotTrusted},
	}
	for _, tc := range leafCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ic := newIssuerCache(maxVerifiedIssuers)
			warm(t, ic, p, p.pool, now)
			checkVerify(t, ic, p.pool, certsOf(t, p.issue(t, tc.tmpl())), tc.host, tc.at, tc.want)
		})
	}

	t.Run("intermediate cached under another root pool", func(t *testing.T) {
		t.Parallel()
		ic := newIssuerCache(maxVerifiedIssuers)
		warm(t, ic, p, p.pool, now)
		// The same chain, checked against roots that do not include p's
		// root, must not borrow the verification made for p's pool.
		checkVerify(t, ic, other.pool, certsOf(t, p.issue(t, leafTemplate(verifyHost))), verifyHost, now, tlsrpt.CertificateNotTrusted)
		// Nor against a new pool holding the same root certificate: the
		// key is the pool, not its contents.
		same := x509.NewCertPool()
		same.AddCert(p.root)
		if ic.get(same, p.inter, now) != nil {
			t.Error("an entry of one pool was found under another")
		}
		// Nor against the system roots.
		if ic.get(nil, p.inter, now) != nil {
			t.Error("an entry of a pool was found under the system roots")
		}
	})

	// An impostor intermediate: same subject, same subject key id, other
	// key, issued by an untrusted root.
	impostor := func(t *testing.T) *chainPKI {
		t.Helper()
		tmpl := caTemplate("mtasts test intermediate", now.Add(-time.Hour), now.AddDate(1, 0, 0))
		tmpl.Subject = p.inter.Subject
		tmpl.SubjectKeyId = p.inter.SubjectKeyId
		return newChainPKIWith(t, "p256", caTemplate("mtasts test root", now.Add(-time.Hour), now.AddDate(1, 0, 0)), tmpl)
	}
	t.Run("impostor intermediate with the same subject", func(t *testing.T) {
		t.Parallel()
		ic := newIssuerCache(maxVerifiedIssuers)
		warm(t, ic, p, p.pool, now)
		imp := impostor(t)
		if ic.get(p.pool, imp.inter, now) != nil {
			t.Fatal("the impostor matched the cached intermediate")
		}
		checkVerify(t, ic, p.pool, certsOf(t, imp.issue(t, leafTemplate(verifyHost))), verifyHost, now, tlsrpt.CertificateNotTrusted)
	})
	t.Run("impostor's leaf sent with the cached intermediate", func(t *testing.T) {
		t.Parallel()
		ic := newIssuerCache(maxVerifiedIssuers)
		warm(t, ic, p, p.pool, now)
		certs := certsOf(t, impostor(t).issue(t, leafTemplate(verifyHost)))
		certs[1] = p.inter
		checkVerify(t, ic, p.pool, certs, verifyHost, now, tlsrpt.CertificateNotTrusted)
	})
	t.Run("the cached intermediate presented as the leaf", func(t *testing.T) {
		t.Parallel()
		ic := newIssuerCache(maxVerifiedIssuers)
		warm(t, ic, p, p.pool, now)
		checkVerify(t, ic, p.pool, []*x509.Certificate{p.inter, p.inter}, verifyHost, now, tlsrpt.CertificateHostMismatch)
	})

	t.Run("expired intermediate", func(t *testing.T) {
		t.Parallel()
		q := newChainPKIWith(t, "p256", caTemplate("root", now.Add(-time.Hour), now.AddDate(1, 0, 0)),
			caTemplate("intermediate", now.Add(-time.Hour), now.Add(time.Hour)))
		ic := newIssuerCache(maxVerifiedIssuers)
		warm(t, ic, q, q.pool, now)
		later := now.Add(2 * time.Hour)
		leaf := leafTemplate(verifyHost)
		leaf.NotAfter = now.Add(48 * time.Hour)
		checkVerify(t, ic, q.pool, certsOf(t, q.issue(t, leaf)), verifyHost, later, tlsrpt.CertificateExpired)
		if ic.len() != 0 {
			t.Error("the expired intermediate is still cached")
		}
	})
	t.Run("root expires before the intermediate", func(t *testing.T) {
		t.Parallel()
		q := newChainPKIWith(t, "p256", caTemplate("root", now.Add(-time.Hour), now.Add(time.Hour)),
			caTemplate("intermediate", now.Add(-time.Hour), now.AddDate(1, 0, 0)))
		ic := newIssuerCache(maxVerifiedIssuers)
		warm(t, ic, q, q.pool, now)
		checkVerify(t, ic, q.pool, certsOf(t, q.issue(t, leafTemplate(verifyHost))), verifyHost, now.Add(2*time.Hour), tlsrpt.CertificateExpired)
	})
	t.Run("clock before the intermediate's validity", func(t *testing.T) {
		t.Parallel()
		ic := newIssuerCache(maxVerifiedIssuers)
		warm(t, ic, p, p.pool, now)
		leaf := leafTemplate(verifyHost)
		leaf.NotBefore = now.Add(-48 * time.Hour)
		checkVerify(t, ic, p.pool, certsOf(t, p.issue(t, leaf)), verifyHost, now.Add(-2*time.Hour), tlsrpt.CertificateExpired)
		if ic.get(p.pool, p.inter, now) == nil {
			t.Error("an entry not yet valid was dropped")
		}
	})

	// Constraints above the intermediate apply to every leaf: such a
	// chain is never cached, and each leaf is checked against them.
	t.Run("name-constrained root", func(t *testing.T) {
		t.Parallel()
		root := caTemplate("constrained root", now.Add(-time.Hour), now.AddDate(1, 0, 0))
		root.PermittedDNSDomains = []string{"cache.example"}
		q := newChainPKIWith(t, "p256", root, caTemplate("intermediate", now.Add(-time.Hour), now.AddDate(1, 0, 0)))
		ic := newIssuerCache(maxVerifiedIssuers)
		if _, err := verifyServer(ic, q.pool, certsOf(t, q.issue(t, leafTemplate(verifyHost))), verifyHost, now); err != nil {
			t.Fatal(err)
		}
		if ic.len() != 0 {
			t.Error("an intermediate under a name-constrained root was cached")
		}
		const outside = "mta-sts.elsewhere.example"
		checkVerify(t, ic, q.pool, certsOf(t, q.issue(t, leafTemplate(outside))), outside, now, tlsrpt.CertificateNotTrusted)
	})
	t.Run("name-constrained intermediate", func(t *testing.T) {
		t.Parallel()
		inter := caTemplate("constrained intermediate", now.Add(-time.Hour), now.AddDate(1, 0, 0))
		inter.PermittedDNSDomains = []string{"cache.example"}
		q := newChainPKIWith(t, "p256", caTemplate("root", now.Add(-time.Hour), now.AddDate(1, 0, 0)), inter)
		ic := newIssuerCache(maxVerifiedIssuers)
		warm(t, ic, q, q.pool, now) // its own constraints stay in the cached chain
		const outside = "mta-sts.elsewhere.example"
		checkVerify(t, ic, q.pool, certsOf(t, q.issue(t, leafTemplate(outside))), outside, now, tlsrpt.CertificateNotTrusted)
		checkVerify(t, ic, q.pool, certsOf(t, q.issue(t, leafTemplate(verifyHost, outside))), verifyHost, now, tlsrpt.CertificateNotTrusted)
	})
	t.Run("intermediate with a policy constraint", func(t *testing.T) {
		t.Parallel()
		policy, err := x509.OIDFromInts([]uint64{1, 3, 6, 1, 4, 1, 99999, 2})
		if err != nil {
			t.Fatal(err)
		}
		inter := caTemplate("intermediate", now.Add(-time.Hour), now.AddDate(1, 0, 0))
		inter.Policies = []x509.OID{policy}
		// requireExplicitPolicy 0 (crypto/x509 parses but does not write
		// the field): every leaf below must assert the policy (RFC 5280
		// 6.1.5).
		inter.ExtraExtensions = []pkix.Extension{{Id: oidPolicyConstraints, Critical: true, Value: []byte{0x30, 0x03, 0x80, 0x01, 0x00}}}
		q := newChainPKIWith(t, "p256", caTemplate("root", now.Add(-time.Hour), now.AddDate(1, 0, 0)), inter)
		ic := newIssuerCache(maxVerifiedIssuers)
		with := leafTemplate(verifyHost)
		with.Policies = []x509.OID{policy}
		checkVerify(t, ic, q.pool, certsOf(t, q.issue(t, with)), verifyHost, now, "")
		if ic.len() != 0 {
			t.Error("an intermediate with a policy constraint was cached")
		}
		checkVerify(t, ic, q.pool, certsOf(t, q.issue(t, leafTemplate(verifyHost))), verifyHost, now, tlsrpt.CertificateNotTrusted)
	})
	t.Run("upper intermediate no longer sent", func(t *testing.T) {
		t.Parallel()
		// root -> upper -> lower -> leaf; the first server sends lower
		// and upper, the next one lower alone.
		upperKey, lowerKey := newKey(t, "p256"), newKey(t, "p256")
		upper := mkcert(t, caTemplate("upper", now.Add(-time.Hour), now.AddDate(1, 0, 0)), p.root, p.rootKey, upperKey)
		lower := mkcert(t, caTemplate("lower", now.Add(-time.Hour), now.AddDate(1, 0, 0)), upper, upperKey, lowerKey)
		leaf1 := mkcert(t, leafTemplate(verifyHost), lower, lowerKey, newKey(t, "p256"))
		leaf2 := mkcert(t, leafTemplate(verifyHost), lower, lowerKey, newKey(t, "p256"))
		ic := newIssuerCache(maxVerifiedIssuers)
		if _, err := verifyServer(ic, p.pool, []*x509.Certificate{leaf1, lower, upper}, verifyHost, now); err != nil {
			t.Fatal(err)
		}
		chains, err := verifyServer(ic, p.pool, []*x509.Certificate{leaf2, lower}, verifyHost, now)
		if err != nil || len(chains[0]) != 4 || !chains[0][2].Equal(upper) {
			t.Errorf("with the cache: %v, %v; want leaf, lower, upper, root", chains, err)
		}
		if _, err := verifyServer(nil, p.pool, []*x509.Certificate{leaf2, lower}, verifyHost, now); tlsrpt.Classify(err) != tlsrpt.CertificateNotTrusted {
			t.Errorf("without the cache: %v, want an unknown authority", err)
		}
	})
	t.Run("leaf issued by the root", func(t *testing.T) {
		t.Parallel()
		ic := newIssuerCache(maxVerifiedIssuers)
		key := newKey(t, "p256")
		leaf := mkcert(t, leafTemplate(verifyHost), p.root, p.rootKey, key)
		// The root sent as the second certificate is not an
		// intermediate to cache.
		checkVerify(t, ic, p.pool, []*x509.Certificate{leaf, p.root}, verifyHost, now, "")
		if ic.len() != 0 {
			t.Error("a root was cached as an intermediate")
		}
	})
	t.Run("no certificate, no name", func(t *testing.T) {
		t.Parallel()
		ic := newIssuerCache(maxVerifiedIssuers)
		if _, err := verifyServer(ic, p.pool, nil, verifyHost, now); !errors.Is(err, errNoCertificate) {
			t.Errorf("no certificate: %v", err)
		}
		if _, err := verifyServer(ic, p.pool, certsOf(t, p.issue(t, leafTemplate(verifyHost))), "", now); !errors.Is(err, errNoServerName) {
			t.Errorf("no name: %v", err)
		}
	})
}

// TestIssuerCacheBounded: the cache holds at most its bound, dropping
// expired entries first.
func TestIssuerCacheBounded(t *testing.T) {
	t.Parallel()
	now := time.Now()
	root := newChainPKI(t, "p256")
	const max = 4
	ic := newIssuerCache(max)
	var inters []*x509.Certificate
	for i := range 2 * max {
		na := now.AddDate(1, 0, 0)
		if i == 0 {
			na = now.Add(time.Hour) // expires first
		}
		k := newKey(t, "p256")
		inter := mkcert(t, caTemplate("intermediate", now.Add(-time.Hour), na), root.root, root.rootKey, k)
		leaf := mkcert(t, leafTemplate(verifyHost), inter, k, newKey(t, "p256"))
		if _, err := verifyServer(ic, root.pool, []*x509.Certificate{leaf, inter}, verifyHost, now); err != nil {
			t.Fatal(err)
		}
		inters = append(inters, inter)
		if i == max {
			// The fifth arrived after the first expired: the expired
			// one made room.
			if ic.get(root.pool, inters[0], now.Add(2*time.Hour)) != nil {
				t.Error("the expired intermediate is still cached")
			}
		}
		if n := ic.len(); n > max {
			t.Fatalf("%d entries, bound %d", n, max)
		}
	}
	if ic.get(root.pool, inters[len(inters)-1], now) == nil {
		t.Error("the newest intermediate was not cached")
	}
}
