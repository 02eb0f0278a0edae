//go:build ignore

// Command gen writes the DANE test vectors in testdata/vectors from fresh
// keys: go run testdata/gen.go (from the package directory).
//
// The keys are random, so every run rewrites every file; the validity
// windows are fixed, so the expectations do not depend on when it ran.
// The generated files are committed; regenerate only on purpose, and
// review the diff of the headers (the expectations), not of the PEM.
//
// Vector format (one case per file, in the spirit of C2SP/CCTV):
//
//	# free text describing the case
//	expect: match depth=<n> record=<i>
//	expect: error kind=<kind> result=<tls-rpt result type> depth=<n>
//	name: <reference identifier>        (zero or more, first = base domain)
//	now: <RFC 3339 time>
//	digest-preference: <mtype> ...      (optional, strongest first)
//	tlsa: <usage> <selector> <mtype> <hex>   (zero or more)
//
// followed by a blank line and the chain as PEM, leaf first, in the order
// a server sends it. record=<i> is the 0-based index of the matching tlsa
// line; depth is Match.Depth (-1 when no record matched). kind is one of
// tlsverify's Kind tokens.
package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

var (
	begin   = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	end     = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	now     = time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	oldFrom = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	oldTo   = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	future  = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	serial  int64
)

type cert struct {
	*x509.Certificate
	key crypto.Signer
}

func ecKey() crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	return k
}

func rsaKey() crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	check(err)
	return k
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

type opt func(*x509.Certificate)

func validity(from, to time.Time) opt {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = from, to }
}

func pathLen(n int) opt {
	return func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = n, n == 0 }
}

func sans(names ...string) opt { return func(c *x509.Certificate) { c.DNSNames = names } }

func notCA() opt {
	return func(c *x509.Certificate) { c.IsCA, c.KeyUsage = false, x509.KeyUsageDigitalSignature }
}

// issue creates a certificate for key, signed by parent (nil: self-signed).
func issue(cn string, key crypto.Signer, ca bool, parent *cert, opts ...opt) *cert {
	serial++
	t := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             begin,
		NotAfter:              end,
		BasicConstraintsValid: true,
		IsCA:                  ca,
		MaxPathLen:            -1,
	}
	if ca {
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		t.KeyUsage = x509.KeyUsageDigitalSignature
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		t.DNSNames = []string{cn}
	}
	for _, o := range opts {
		o(t)
	}
	p, signer := t, key
	if parent != nil {
		p, signer = parent.Certificate, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, t, p, key.Public(), signer)
	check(err)
	c, err := x509.ParseCertificate(der)
	check(err)
	return &cert{c, key}
}

// corrupt returns a copy of c whose signature no longer verifies but
// which still parses: the last byte of the DER is the last byte of the
// signature (RSA) or of the ECDSA s value.
func corrupt(c *cert) *cert {
	der := bytes.Clone(c.Raw)
	der[len(der)-1] ^= 0x01
	p, err := x509.ParseCertificate(der)
	check(err)
	return &cert{p, c.key}
}

// rec builds a TLSA record line for c.
func rec(usage, sel, mt uint8, c *cert) string {
	data := c.Raw
	if sel == 1 {
		data = c.RawSubjectPublicKeyInfo
	}
	switch mt {
	case 1:
		h := sha256.Sum256(data)
		data = h[:]
	case 2:
		h := sha512.Sum512(data)
		data = h[:]
	}
	return raw(usage, sel, mt, data)
}

func raw(usage, sel, mt uint8, data []byte) string {
	return fmt.Sprintf("%d %d %d %x", usage, sel, mt, data)
}

// wrong is a record of the right shape that matches nothing.
func wrong(usage, sel, mt uint8) string {
	n := 32
	if mt == 2 {
		n = 64
	}
	return raw(usage, sel, mt, bytes.Repeat([]byte{0x5a}, n))
}

type vector struct {
	name    string
	comment string
	expect  string
	names   []string
	pref    string
	records []string
	chain   []*cert
}

func match(depth, record int) string { return fmt.Sprintf("match depth=%d record=%d", depth, record) }

var results = map[string]string{
	"no-usable-records": "tlsa-invalid",
	"no-match":          "validation-failure",
	"bad-signature":     "certificate-not-trusted",
	"not-ca":            "certificate-not-trusted",
	"path-length":       "certificate-not-trusted",
	"expired":           "certificate-expired",
	"name-mismatch":     "certificate-host-mismatch",
}

func fail(kind string, depth int) string {
	r, ok := results[kind]
	if !ok {
		log.Fatalf("unknown kind %s", kind)
	}
	return fmt.Sprintf("error kind=%s result=%s depth=%d", kind, r, depth)
}

func chain(c ...*cert) []*cert { return c }

func main() {
	const mx = "mx.example.com"
	ref := []string{mx}

	// The standard chain: RSA root, ECDSA intermediate, ECDSA leaf.
	root := issue("Test Root", rsaKey(), true, nil)
	inter := issue("Test Intermediate", ecKey(), true, root)
	leaf := issue(mx, ecKey(), false, inter)
	std := chain(leaf, inter, root)

	leafRSA := issue(mx, rsaKey(), false, inter)
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	check(err)
	leafEd := issue(mx, edPriv, false, inter)
	leafExpired := issue(mx, ecKey(), false, inter, validity(oldFrom, oldTo))
	leafFuture := issue(mx, ecKey(), false, inter, validity(future, end))
	leafBadSig := corrupt(leaf)
	other := issue("other.example.net", ecKey(), false, inter)

	// Cross-signing: root2 is self-signed; root2x is the same subject and
	// key, certified by another root.
	crossRoot := issue("Cross Root", ecKey(), true, nil)
	root2Key := ecKey()
	root2 := issue("Test Root 2", root2Key, true, nil)
	root2x := issue("Test Root 2", root2Key, true, crossRoot)
	inter2 := issue("Test Intermediate 2", ecKey(), true, root2)
	leaf2 := issue(mx, ecKey(), false, inter2)

	// Expired anchors and intermediates.
	rootOld := issue("Expired Root", ecKey(), true, nil, validity(oldFrom, oldTo))
	interUnderOld := issue("Intermediate Under Expired Root", ecKey(), true, rootOld)
	leafUnderOld := issue(mx, ecKey(), false, interUnderOld)
	interOld := issue("Expired Intermediate", ecKey(), true, root, validity(oldFrom, oldTo))
	leafUnderInterOld := issue(mx, ecKey(), false, interOld)

	// Names.
	leafWild := issue("*.example.com", ecKey(), false, inter)
	leafPartial := issue("mx*.example.com", ecKey(), false, inter)
	leafWildTLD := issue("*.com", ecKey(), false, inter)
	leafCN := issue(mx, ecKey(), false, inter, sans())
	leafCNandSAN := issue(mx, ecKey(), false, inter, sans("other.example.net"))
	leafNoName := issue("", ecKey(), false, inter, sans())
	leafIDN := issue("xn--bcher-kva.example", ecKey(), false, inter)

	// Constraints.
	rootPL0 := issue("Root pathlen 0", ecKey(), true, nil, pathLen(0))
	interUnderPL0 := issue("Intermediate Under pathlen 0", ecKey(), true, rootPL0)
	leafUnderPL0 := issue(mx, ecKey(), false, interUnderPL0)
	interPL0 := issue("Intermediate pathlen 0", ecKey(), true, root, pathLen(0))
	interBelowPL0 := issue("Intermediate Below pathlen 0", ecKey(), true, interPL0)
	leafBelowPL0 := issue(mx, ecKey(), false, interBelowPL0)
	leafDirectPL0 := issue(mx, ecKey(), false, interPL0)
	interNotCA := issue("Not A CA", ecKey(), true, root, notCA())
	leafUnderNotCA := issue(mx, ecKey(), false, interNotCA)
	interBadSig := corrupt(inter)
	selfSignedLeaf := issue(mx, ecKey(), true, nil, sans(mx))

	// Long chains: root -> i1 -> ... -> iN -> leaf.
	long := func(n int) []*cert {
		cs := []*cert{root}
		p := root
		for i := 1; i <= n; i++ {
			p = issue(fmt.Sprintf("Intermediate %d", i), ecKey(), true, p)
			cs = append([]*cert{p}, cs...)
		}
		return append([]*cert{issue(mx, ecKey(), false, p)}, cs...)
	}
	long9 := long(8)   // 10 certificates: root at depth 9
	long11 := long(10) // 12 certificates: root at depth 11
	unrelated := issue("Unrelated Root", ecKey(), true, nil)

	vs := []vector{
		// DANE-EE(3)
		{name: "ee-cert-full", comment: "DANE-EE(3) Cert(0) Full(0) matches the leaf.", expect: match(0, 0), records: []string{rec(3, 0, 0, leaf)}, chain: std},
		{name: "ee-cert-sha256", comment: "DANE-EE(3) Cert(0) SHA-256.", expect: match(0, 0), records: []string{rec(3, 0, 1, leaf)}, chain: std},
		{name: "ee-cert-sha512", comment: "DANE-EE(3) Cert(0) SHA-512.", expect: match(0, 0), records: []string{rec(3, 0, 2, leaf)}, chain: std},
		{name: "ee-spki-full", comment: "DANE-EE(3) SPKI(1) Full(0).", expect: match(0, 0), records: []string{rec(3, 1, 0, leaf)}, chain: std},
		{name: "ee-spki-sha256", comment: "DANE-EE(3) SPKI(1) SHA-256.", expect: match(0, 0), records: []string{rec(3, 1, 1, leaf)}, chain: std},
		{name: "ee-spki-sha512", comment: "DANE-EE(3) SPKI(1) SHA-512.", expect: match(0, 0), records: []string{rec(3, 1, 2, leaf)}, chain: std},
		{name: "ee-rsa-leaf", comment: "DANE-EE(3) with an RSA leaf.", expect: match(0, 0), records: []string{rec(3, 1, 1, leafRSA)}, chain: chain(leafRSA, inter, root)},
		{name: "ee-ed25519-leaf", comment: "DANE-EE(3) with an Ed25519 leaf.", expect: match(0, 0), records: []string{rec(3, 1, 1, leafEd)}, chain: chain(leafEd, inter, root)},
		{name: "ee-leaf-only", comment: "DANE-EE(3) needs no chain.", expect: match(0, 0), records: []string{rec(3, 0, 1, leaf)}, chain: chain(leaf)},
		{name: "ee-ignores-name", comment: "DANE-EE(3) never checks names (RFC 7672 3.1.1).", expect: match(0, 0), names: []string{"other.example.net"}, records: []string{rec(3, 1, 1, leaf)}, chain: std},
		{name: "ee-ignores-expiry", comment: "DANE-EE(3) never checks validity dates (RFC 7672 3.1.1).", expect: match(0, 0), records: []string{rec(3, 1, 1, leafExpired)}, chain: chain(leafExpired, inter, root)},
		{name: "ee-ignores-not-yet-valid", comment: "DANE-EE(3) never checks validity dates.", expect: match(0, 0), records: []string{rec(3, 1, 1, leafFuture)}, chain: chain(leafFuture, inter, root)},
		{name: "ee-ignores-signature", comment: "DANE-EE(3) does not verify the chain: a corrupt leaf signature is irrelevant.", expect: match(0, 0), records: []string{rec(3, 1, 1, leafBadSig)}, chain: chain(leafBadSig, inter, root)},
		{name: "ee-wrong", comment: "A DANE-EE(3) digest of another key.", expect: fail("no-match", -1), records: []string{rec(3, 1, 1, other)}, chain: std},
		{name: "ee-not-on-intermediate", comment: "DANE-EE(3) matches the leaf only, never a chain certificate.", expect: fail("no-match", -1), records: []string{rec(3, 1, 1, inter), rec(3, 0, 1, root)}, chain: std},

		// DANE-TA(2) with the anchor in the chain
		{name: "ta-inter-spki-sha256", comment: "DANE-TA(2) SPKI(1) SHA-256 of the intermediate.", expect: match(1, 0), records: []string{rec(2, 1, 1, inter)}, chain: std},
		{name: "ta-inter-cert-sha512", comment: "DANE-TA(2) Cert(0) SHA-512 of the intermediate.", expect: match(1, 0), records: []string{rec(2, 0, 2, inter)}, chain: std},
		{name: "ta-inter-cert-full", comment: "DANE-TA(2) Cert(0) Full(0) of the intermediate, which is also in the chain.", expect: match(1, 0), records: []string{rec(2, 0, 0, inter)}, chain: std},
		{name: "ta-root-cert-sha256", comment: "DANE-TA(2) Cert(0) SHA-256 of the root at depth 2.", expect: match(2, 0), records: []string{rec(2, 0, 1, root)}, chain: std},
		{name: "ta-root-spki-sha512", comment: "DANE-TA(2) SPKI(1) SHA-512 of the root.", expect: match(2, 0), records: []string{rec(2, 1, 2, root)}, chain: std},
		{name: "ta-root-spki-full-in-chain", comment: "DANE-TA(2) SPKI(1) Full(0) of a root the server sends: matched in the chain at depth 2 (as OpenSSL), not as a bare key.", expect: match(2, 0), records: []string{rec(2, 1, 0, root)}, chain: std},
		{name: "ta-shallowest", comment: "With records for both the root and the intermediate, the intermediate (depth 1) is the anchor.", expect: match(1, 1), records: []string{rec(2, 0, 1, root), rec(2, 1, 1, inter)}, chain: std},
		{name: "ta-rsa-leaf", comment: "DANE-TA(2) over an RSA leaf.", expect: match(1, 0), records: []string{rec(2, 1, 1, inter)}, chain: chain(leafRSA, inter, root)},
		{name: "ta-chain-out-of-order", comment: "The server sends root before intermediate: the path is built by names and signatures; depth counts the verified path.", expect: match(2, 0), records: []string{rec(2, 0, 1, root)}, chain: chain(leaf, root, inter)},
		{name: "ta-wrong-digest", comment: "A DANE-TA(2) digest that matches nothing.", expect: fail("no-match", -1), records: []string{wrong(2, 1, 1)}, chain: std},
		{name: "ta-long-chain-limit-ok", comment: "Ten certificates (MaxChain): the root at depth 9 is found.", expect: match(9, 0), records: []string{rec(2, 0, 1, root)}, chain: long9},
		{name: "ta-long-chain-beyond-limit", comment: "Twelve certificates: the root at position 11 is beyond MaxChain and ignored.", expect: fail("no-match", -1), records: []string{rec(2, 0, 1, root)}, chain: long11},

		// DANE-TA(2) with the anchor from DNS
		{name: "ta-key-in-dns-signed-leaf", comment: "DANE-TA(2) SPKI(1) Full(0): the intermediate's bare key from DNS signed the leaf; depth is that of the leaf (OpenSSL convention).", expect: match(0, 0), records: []string{rec(2, 1, 0, inter)}, chain: chain(leaf)},
		{name: "ta-root-key-in-dns", comment: "The root's bare key from DNS signed the top chain certificate (depth 1).", expect: match(1, 0), records: []string{rec(2, 1, 0, root)}, chain: chain(leaf, inter)},
		{name: "ta-root-cert-in-dns", comment: "DANE-TA(2) Cert(0) Full(0): the root certificate from DNS, not sent by the server, counts as appended to the chain (depth 2).", expect: match(2, 0), records: []string{rec(2, 0, 0, root)}, chain: chain(leaf, inter)},
		{name: "ta-inter-cert-in-dns", comment: "The intermediate from DNS signed the leaf (depth 1).", expect: match(1, 0), records: []string{rec(2, 0, 0, inter)}, chain: chain(leaf)},
		{name: "ta-unrelated-cert-in-dns", comment: "A certificate from DNS that signed nothing in the chain.", expect: fail("no-match", -1), records: []string{rec(2, 0, 0, unrelated)}, chain: std},
		{name: "ta-unrelated-key-in-dns", comment: "A bare key from DNS that signed nothing in the chain.", expect: fail("no-match", -1), records: []string{rec(2, 1, 0, unrelated)}, chain: std},

		// Cross-signed anchors
		{name: "ta-cross-signed-copy", comment: "The server sends a cross-signed copy of the root whose self-signed form is in DNS (OpenSSL dane-cross): matching is unaffected.", expect: match(2, 0), records: []string{rec(2, 0, 0, root2)}, chain: chain(leaf2, inter2, root2x, crossRoot)},
		{name: "ta-cross-signed-digest-both", comment: "The chain holds both the cross-signed and the self-signed root; the record names the self-signed one.", expect: match(2, 0), records: []string{rec(2, 0, 1, root2)}, chain: chain(leaf2, inter2, root2x, crossRoot, root2)},
		{name: "ta-cross-signed-spki", comment: "An SPKI record of the root matches its cross-signed copy (same key).", expect: match(2, 0), records: []string{rec(2, 1, 1, root2)}, chain: chain(leaf2, inter2, root2x, crossRoot)},
		{name: "ta-cross-signed-cert-digest", comment: "A Cert(0) digest of the self-signed root does not match the different cross-signed certificate.", expect: fail("no-match", -1), records: []string{rec(2, 0, 1, root2)}, chain: chain(leaf2, inter2, root2x, crossRoot)},

		// Validity dates under DANE-TA(2)
		{name: "ta-expired-self-issued", comment: "An expired self-issued anchor certificate fails.", expect: fail("expired", 2), records: []string{rec(2, 0, 1, rootOld)}, chain: chain(leafUnderOld, interUnderOld, rootOld)},
		{name: "ta-expired-self-issued-in-dns", comment: "An expired self-issued anchor from DNS fails too.", expect: fail("expired", 2), records: []string{rec(2, 0, 0, rootOld)}, chain: chain(leafUnderOld, interUnderOld)},
		{name: "ta-expired-not-self-issued", comment: "An expired anchor that is not self-issued is not date-checked (OpenSSL): only the anchor's key matters.", expect: match(1, 0), records: []string{rec(2, 1, 1, interOld)}, chain: chain(leafUnderInterOld, interOld, root)},
		{name: "ta-expired-intermediate", comment: "An expired intermediate below the anchor fails.", expect: fail("expired", 2), records: []string{rec(2, 0, 1, root)}, chain: chain(leafUnderInterOld, interOld, root)},
		{name: "ta-expired-leaf", comment: "An expired leaf fails under DANE-TA(2) (it would pass under DANE-EE(3)).", expect: fail("expired", 1), records: []string{rec(2, 1, 1, inter)}, chain: chain(leafExpired, inter, root)},
		{name: "ta-not-yet-valid-leaf", comment: "A leaf not yet valid fails under DANE-TA(2).", expect: fail("expired", 1), records: []string{rec(2, 1, 1, inter)}, chain: chain(leafFuture, inter, root)},

		// Names under DANE-TA(2)
		{name: "ta-wrong-name", comment: "The leaf does not name the reference identifier.", expect: fail("name-mismatch", 1), names: []string{"other.example.net"}, records: []string{rec(2, 1, 1, inter)}, chain: std},
		{name: "ta-second-reference-identifier", comment: "The leaf names the second reference identifier (the next-hop domain or the MX host).", expect: match(1, 0), names: []string{"other.example.net", mx}, records: []string{rec(2, 1, 1, inter)}, chain: std},
		{name: "ta-no-names", comment: "Without reference identifiers a DANE-TA(2) match cannot be accepted.", expect: fail("name-mismatch", 1), names: []string{}, records: []string{rec(2, 1, 1, inter)}, chain: std},
		{name: "ta-name-case-and-dot", comment: "Reference identifiers are compared case-insensitively, without the trailing dot.", expect: match(1, 0), names: []string{"MX.Example.COM."}, records: []string{rec(2, 1, 1, inter)}, chain: std},
		{name: "ta-name-idn", comment: "A U-label reference identifier matches the A-label SAN.", expect: match(1, 0), names: []string{"bücher.example"}, records: []string{rec(2, 1, 1, inter)}, chain: chain(leafIDN, inter, root)},
		{name: "ta-wildcard-one-label", comment: "*.example.com matches exactly one left-most label.", expect: match(1, 0), records: []string{rec(2, 1, 1, inter)}, chain: chain(leafWild, inter, root)},
		{name: "ta-wildcard-two-labels", comment: "*.example.com does not match two labels.", expect: fail("name-mismatch", 1), names: []string{"a.mx.example.com"}, records: []string{rec(2, 1, 1, inter)}, chain: chain(leafWild, inter, root)},
		{name: "ta-wildcard-base", comment: "*.example.com does not match example.com itself.", expect: fail("name-mismatch", 1), names: []string{"example.com"}, records: []string{rec(2, 1, 1, inter)}, chain: chain(leafWild, inter, root)},
		{name: "ta-wildcard-partial-label", comment: "A partial-label wildcard (mx*.example.com) never matches.", expect: fail("name-mismatch", 1), names: []string{"mx1.example.com"}, records: []string{rec(2, 1, 1, inter)}, chain: chain(leafPartial, inter, root)},
		{name: "ta-wildcard-tld", comment: "*.com is refused: a wildcard needs two labels after it.", expect: fail("name-mismatch", 1), names: []string{"example.com"}, records: []string{rec(2, 1, 1, inter)}, chain: chain(leafWildTLD, inter, root)},
		{name: "ta-cn-fallback", comment: "Without DNS SANs the subject CN is used.", expect: match(1, 0), records: []string{rec(2, 1, 1, inter)}, chain: chain(leafCN, inter, root)},
		{name: "ta-cn-ignored-with-san", comment: "With a DNS SAN present the CN is ignored.", expect: fail("name-mismatch", 1), records: []string{rec(2, 1, 1, inter)}, chain: chain(leafCNandSAN, inter, root)},
		{name: "ta-no-name-in-cert", comment: "A leaf with neither SAN nor CN.", expect: fail("name-mismatch", 1), records: []string{rec(2, 1, 1, inter)}, chain: chain(leafNoName, inter, root)},

		// Constraints and signatures
		{name: "ta-pathlen-root-cert", comment: "A Cert(0) anchor with pathLenConstraint 0 above one intermediate: constraint applied.", expect: fail("path-length", 2), records: []string{rec(2, 0, 1, rootPL0)}, chain: chain(leafUnderPL0, interUnderPL0, rootPL0)},
		{name: "ta-pathlen-root-cert-in-dns", comment: "The same with the anchor certificate from DNS.", expect: fail("path-length", 2), records: []string{rec(2, 0, 0, rootPL0)}, chain: chain(leafUnderPL0, interUnderPL0)},
		{name: "ta-pathlen-root-spki", comment: "An SPKI(1) anchor is a bare key: no constraints apply.", expect: match(2, 0), records: []string{rec(2, 1, 1, rootPL0)}, chain: chain(leafUnderPL0, interUnderPL0, rootPL0)},
		{name: "ta-pathlen-intermediate", comment: "An intermediate with pathLenConstraint 0 above another intermediate.", expect: fail("path-length", 3), records: []string{rec(2, 0, 1, root)}, chain: chain(leafBelowPL0, interBelowPL0, interPL0, root)},
		{name: "ta-pathlen-intermediate-ok", comment: "pathLenConstraint 0 directly above the leaf is fine.", expect: match(2, 0), records: []string{rec(2, 0, 1, root)}, chain: chain(leafDirectPL0, interPL0, root)},
		{name: "ta-intermediate-not-ca", comment: "An intermediate without cA may not sign.", expect: fail("not-ca", 2), records: []string{rec(2, 0, 1, root)}, chain: chain(leafUnderNotCA, interNotCA, root)},
		{name: "ta-cert-anchor-not-ca", comment: "A Cert(0) anchor without cA may not sign.", expect: fail("not-ca", 1), records: []string{rec(2, 0, 1, interNotCA)}, chain: chain(leafUnderNotCA, interNotCA, root)},
		{name: "ta-spki-anchor-not-ca", comment: "An SPKI(1) anchor is a bare key: its certificate's cA flag is irrelevant.", expect: match(1, 0), records: []string{rec(2, 1, 1, interNotCA)}, chain: chain(leafUnderNotCA, interNotCA, root)},
		{name: "ta-bad-signature-leaf", comment: "The anchor (intermediate) did not sign the leaf: corrupt signature.", expect: fail("bad-signature", -1), records: []string{rec(2, 1, 1, inter)}, chain: chain(leafBadSig, inter, root)},
		{name: "ta-bad-signature-intermediate", comment: "The root anchor did not sign the intermediate: corrupt signature.", expect: fail("bad-signature", -1), records: []string{rec(2, 0, 1, root)}, chain: chain(leaf, interBadSig, root)},
		{name: "ta-bad-signature-dns-cert", comment: "The anchor from DNS names the leaf's issuer but its key did not sign the leaf.", expect: fail("bad-signature", -1), records: []string{rec(2, 0, 0, inter)}, chain: chain(leafBadSig)},

		// Never at depth 0
		{name: "ta-leaf-spki", comment: "A DANE-TA(2) record of the leaf's key never matches (depth 0).", expect: fail("no-match", -1), records: []string{rec(2, 1, 1, leaf)}, chain: std},
		{name: "ta-leaf-cert", comment: "A DANE-TA(2) record of the leaf certificate never matches (depth 0).", expect: fail("no-match", -1), records: []string{rec(2, 0, 1, leaf)}, chain: std},
		{name: "ta-self-signed-leaf-in-dns", comment: "A self-signed leaf published as a DANE-TA(2) certificate does not anchor itself.", expect: fail("no-match", -1), records: []string{rec(2, 0, 0, selfSignedLeaf)}, chain: chain(selfSignedLeaf)},
		{name: "ta-self-signed-leaf-key-in-dns", comment: "A self-signed leaf's key as a DANE-TA(2) bare key does not anchor itself.", expect: fail("no-match", -1), records: []string{rec(2, 1, 0, selfSignedLeaf)}, chain: chain(selfSignedLeaf)},
		{name: "ta-self-signed-leaf-sent-twice", comment: "A copy of the self-signed leaf sent as its own issuer does not anchor it.", expect: fail("no-match", -1), records: []string{rec(2, 0, 1, selfSignedLeaf)}, chain: chain(selfSignedLeaf, selfSignedLeaf)},

		// Digest agility (RFC 7671 9)
		{name: "agility-sha512-wrong-sha256-right", comment: "SHA-512 is present, so the correct SHA-256 record is ignored.", expect: fail("no-match", -1), records: []string{wrong(3, 1, 2), rec(3, 1, 1, leaf)}, chain: std},
		{name: "agility-sha256-only", comment: "Only SHA-256 is present: it is used.", expect: match(0, 1), records: []string{rec(3, 0, 1, other), rec(3, 1, 1, leaf)}, chain: std},
		{name: "agility-full-always", comment: "Full(0) records always count beside the strongest digest.", expect: match(0, 1), records: []string{wrong(3, 1, 2), rec(3, 1, 0, leaf)}, chain: std},
		{name: "agility-per-selector", comment: "Agility is per (usage, selector): a Cert(0) SHA-512 record does not disable SPKI(1) SHA-256.", expect: match(0, 1), records: []string{wrong(3, 0, 2), rec(3, 1, 1, leaf)}, chain: std},
		{name: "agility-per-usage", comment: "Agility is per (usage, selector): DANE-EE(3) SHA-512 does not disable DANE-TA(2) SHA-256.", expect: match(1, 1), records: []string{wrong(3, 1, 2), rec(2, 1, 1, inter)}, chain: std},
		{name: "agility-malformed-first", comment: "A malformed SHA-512 record (63 bytes) is dropped before agility applies.", expect: match(0, 1), records: []string{raw(3, 1, 2, bytes.Repeat([]byte{1}, 63)), rec(3, 1, 1, leaf)}, chain: std},
		{name: "agility-preference-sha256", comment: "With a preference ranking SHA-256 first, SHA-256 wins.", expect: match(0, 1), pref: "1 2", records: []string{wrong(3, 1, 2), rec(3, 1, 1, leaf)}, chain: std},
		{name: "agility-preference-excludes", comment: "A preference listing only SHA-256 makes SHA-512 records unusable.", expect: fail("no-usable-records", -1), pref: "1", records: []string{rec(3, 1, 2, leaf)}, chain: std},

		// Mixed records
		{name: "mixed-ee-preferred", comment: "A DANE-EE(3) match wins over a DANE-TA(2) one.", expect: match(0, 1), records: []string{rec(2, 1, 1, inter), rec(3, 1, 1, leaf)}, chain: std},
		{name: "mixed-ee-wrong-ta-right", comment: "A wrong DANE-EE(3) record does not prevent a DANE-TA(2) match.", expect: match(1, 1), records: []string{rec(3, 1, 1, other), rec(2, 1, 1, inter)}, chain: std},

		// Unusable records
		{name: "malformed-ignored", comment: "Malformed and unknown records are ignored; the usable one matches.", expect: match(1, 6), records: []string{
			raw(3, 1, 1, bytes.Repeat([]byte{1}, 31)),
			raw(2, 0, 0, []byte{0x30, 0x03, 0x02, 0x01, 0x01}),
			raw(4, 1, 1, bytes.Repeat([]byte{1}, 32)),
			raw(3, 2, 1, bytes.Repeat([]byte{1}, 32)),
			raw(3, 1, 3, bytes.Repeat([]byte{1}, 32)),
			raw(2, 1, 0, []byte{0x30, 0x00}),
			rec(2, 1, 1, inter),
		}, chain: std},
		{name: "pkix-usages-unusable", comment: "PKIX-TA(0) and PKIX-EE(1) are unusable in SMTP even when they would match (RFC 7672 3.1.3).", expect: fail("no-usable-records", -1), records: []string{rec(0, 0, 1, root), rec(1, 1, 1, leaf)}, chain: std},
		{name: "all-unusable", comment: "Only unusable records.", expect: fail("no-usable-records", -1), records: []string{rec(0, 0, 1, root), raw(3, 1, 1, []byte{1, 2, 3}), raw(2, 0, 0, []byte{0x30}), raw(3, 1, 0, []byte{0x04, 0x00})}, chain: std},
		{name: "no-records", comment: "No records at all.", expect: fail("no-usable-records", -1), chain: std},
	}

	dir := filepath.Join("testdata", "vectors")
	check(os.MkdirAll(dir, 0o755))
	old, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	for _, f := range old {
		check(os.Remove(f))
	}
	for _, v := range vs {
		var b strings.Builder
		fmt.Fprintf(&b, "# %s\n", v.comment)
		fmt.Fprintf(&b, "expect: %s\n", v.expect)
		names := v.names
		if names == nil {
			names = ref
		}
		for _, n := range names {
			fmt.Fprintf(&b, "name: %s\n", n)
		}
		fmt.Fprintf(&b, "now: %s\n", now.Format(time.RFC3339))
		if v.pref != "" {
			fmt.Fprintf(&b, "digest-preference: %s\n", v.pref)
		}
		for _, r := range v.records {
			fmt.Fprintf(&b, "tlsa: %s\n", r)
		}
		b.WriteString("\n")
		for _, c := range v.chain {
			fmt.Fprintf(&b, "subject=%s issuer=%s\n", c.Subject, c.Issuer)
			check(pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
		check(os.WriteFile(filepath.Join(dir, v.name+".txt"), []byte(b.String()), 0o644))
	}
	fmt.Printf("wrote %d vectors to %s\n", len(vs), dir)
}
