package tlsverify_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/smtptls/smtptls/tlsverify"
)

// readChain reads a test vector's PEM chain (leaf first).
func readChain(path string) []*x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	var chain []*x509.Certificate
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return chain
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			panic(err)
		}
		chain = append(chain, c)
	}
}

func ExampleDANE_VerifyChain() {
	// leaf, intermediate, root, as a server sends them.
	chain := readChain("testdata/vectors/ta-inter-spki-sha256.txt")
	leafKey := sha256.Sum256(chain[0].RawSubjectPublicKeyInfo)
	interKey := sha256.Sum256(chain[1].RawSubjectPublicKeyInfo)
	now := func() time.Time { return time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC) }

	// DANE-EE(3): the leaf's key, nothing else is checked.
	ee := &tlsverify.DANE{Records: []tlsverify.TLSA{
		{Usage: tlsverify.DANEEE, Selector: tlsverify.SPKI, MatchingType: tlsverify.SHA256, Data: leafKey[:]},
	}}
	m, err := ee.VerifyChain(chain)
	fmt.Println(m.Record.Usage, m.Depth, err)

	// DANE-TA(2): the intermediate's key; the leaf must name the TLSA
	// base domain and be valid now.
	ta := &tlsverify.DANE{
		Records: []tlsverify.TLSA{{Usage: tlsverify.DANETA, Selector: tlsverify.SPKI, MatchingType: tlsverify.SHA256, Data: interKey[:]}},
		Names:   []string{"MX.Example.COM."},
		Now:     now,
	}
	m, err = ta.VerifyChain(chain)
	fmt.Println(m.Record.Usage, m.Depth, err)

	// The same anchor for another name: the match is found, the name
	// check fails, and the error carries the TLS-RPT result type.
	ta = &tlsverify.DANE{Records: ta.Records, Names: []string{"smtp.example.net"}, Now: now}
	_, err = ta.VerifyChain(chain)
	var e *tlsverify.Error
	if errors.As(err, &e) {
		fmt.Println(e.Kind, e.Result)
	}
	// Output:
	// 3 0 <nil>
	// 2 1 <nil>
	// name-mismatch certificate-host-mismatch
}

func ExampleConfig() {
	leafKey := sha256.Sum256(readChain("testdata/vectors/ee-spki-sha256.txt")[0].RawSubjectPublicKeyInfo)
	d := &tlsverify.DANE{
		Records: []tlsverify.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: leafKey[:]}},
		Names:   []string{"mx.example.com"},
	}
	// SNI must be the TLSA base domain (RFC 7672 8.1).
	// Use the result for STARTTLS: tls.Client(conn, cfg).
	cfg := tlsverify.Config(&tls.Config{MinVersion: tls.VersionTLS13}, "MX.Example.COM.", d)
	fmt.Println(cfg.ServerName, cfg.MinVersion == tls.VersionTLS13, cfg.InsecureSkipVerify, cfg.VerifyConnection != nil)
	// Output:
	// mx.example.com true true true
}

func ExampleClassifyHandshakeError() {
	d := &tlsverify.DANE{} // no usable records
	err := d.Verify(tls.ConnectionState{})
	fmt.Println(tlsverify.ClassifyHandshakeError(err))
	fmt.Println(tlsverify.ClassifyHandshakeError(errors.New("tls: some failure crypto/tls does not type")))
	// Output:
	// tlsa-invalid
	// validation-failure
}

func ExampleTLSA_Status() {
	for _, r := range []tlsverify.TLSA{
		{Usage: 3, Selector: 1, MatchingType: 1, Data: make([]byte, 32)},
		{Usage: 1, Selector: 1, MatchingType: 1, Data: make([]byte, 32)},
		{Usage: 3, Selector: 1, MatchingType: 2, Data: make([]byte, 32)},
	} {
		fmt.Println(r.Usable(), r.Status())
	}
	// Output:
	// true usable
	// false pkix-usage
	// false bad-digest-length
}

func ExamplePKIX_VerifyChain() {
	chain := readChain("testdata/vectors/ta-root-cert-sha256.txt") // leaf, intermediate, root
	roots := x509.NewCertPool()
	roots.AddCert(chain[2])
	p := &tlsverify.PKIX{
		Roots: roots,
		Host:  "MX.Example.COM.",
		Now:   func() time.Time { return time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC) },
	}
	fmt.Println(p.VerifyChain(chain[:2])) // the root need not be sent

	p.Host = "other.example.com"
	var e *tlsverify.Error
	if err := p.VerifyChain(chain); errors.As(err, &e) {
		fmt.Println(e.Kind, e.Result)
	}
	// Output:
	// <nil>
	// name-mismatch certificate-host-mismatch
}
