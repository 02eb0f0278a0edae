package smtptlstest_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

func TestCA(t *testing.T) {
	t.Parallel()
	ca, err := smtptlstest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	other, err := smtptlstest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	verify := func(t *testing.T, c *smtptlstest.CA, certDER [][]byte, name string, at time.Time) error {
		t.Helper()
		leaf, err := x509.ParseCertificate(certDER[0])
		if err != nil {
			t.Fatal(err)
		}
		inter := x509.NewCertPool()
		for _, der := range certDER[1:] {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			inter.AddCert(c)
		}
		_, err = leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: c.Pool(), Intermediates: inter, CurrentTime: at})
		return err
	}
	now := time.Now()
	cert, err := ca.Issue(smtptlstest.CertOptions{}, "MX.Example.Test.", "*.wild.example.test", "bücher.test", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 || cert.Leaf == nil || !cert.Leaf.Equal(mustParse(t, cert.Certificate[0])) {
		t.Fatalf("chain: %d certificates, leaf %v", len(cert.Certificate), cert.Leaf != nil)
	}
	if !mustParse(t, cert.Certificate[1]).Equal(ca.Intermediate) {
		t.Errorf("second certificate is not the intermediate")
	}
	if got := cert.Leaf.DNSNames; len(got) != 3 || got[0] != "mx.example.test" || got[2] != "xn--bcher-kva.test" {
		t.Errorf("DNS names %v", got)
	}
	if cert.Leaf.Subject.CommonName != "mx.example.test" || len(cert.Leaf.IPAddresses) != 1 {
		t.Errorf("CN %q, IPs %v", cert.Leaf.Subject.CommonName, cert.Leaf.IPAddresses)
	}
	for _, tt := range []struct {
		name string
		ca   *smtptlstest.CA
		at   time.Time
		ok   bool
	}{
		{"mx.example.test", ca, now, true},
		{"a.wild.example.test", ca, now, true},
		{"a.b.wild.example.test", ca, now, false},
		{"other.example.test", ca, now, false},
		{"mx.example.test", other, now, false},
		{"mx.example.test", ca, now.Add(100 * 24 * time.Hour), false},
	} {
		if err := verify(t, tt.ca, cert.Certificate, tt.name, tt.at); (err == nil) != tt.ok {
			t.Errorf("%s at %v: %v", tt.name, tt.at, err)
		}
	}
	// Options: validity, CN, key.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	nb, na := now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	c2, err := ca.Issue(smtptlstest.CertOptions{NotBefore: nb, NotAfter: na, CommonName: "custom", Key: rsaKey}, "x.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Leaf.NotAfter.Equal(na.Truncate(time.Second)) || c2.Leaf.Subject.CommonName != "custom" || !rsaKey.PublicKey.Equal(c2.Leaf.PublicKey) {
		t.Errorf("options not applied: %v %q", c2.Leaf.NotAfter, c2.Leaf.Subject.CommonName)
	}
	if c2.Leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		t.Errorf("RSA leaf without key encipherment")
	}
	if err := verify(t, ca, c2.Certificate, "x.example.test", now); err == nil {
		t.Errorf("expired certificate verifies")
	}
	// Self-signed.
	ss, err := smtptlstest.SelfSigned("dane.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss.Certificate) != 1 || ss.Leaf.IsCA || ss.Leaf.CheckSignature(ss.Leaf.SignatureAlgorithm, ss.Leaf.RawTBSCertificate, ss.Leaf.Signature) != nil {
		t.Errorf("self-signed: %d certs, CA %v", len(ss.Certificate), ss.Leaf.IsCA)
	}
	if err := verify(t, ca, ss.Certificate, "dane.example.test", now); err == nil {
		t.Errorf("self-signed verifies under the CA")
	}
	if _, err := ca.Issue(smtptlstest.CertOptions{}, "bad..name"); err == nil {
		t.Errorf("invalid name accepted")
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSA(t *testing.T) {
	t.Parallel()
	cert, err := smtptlstest.SelfSigned("mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	s256 := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	c512 := sha512.Sum512(leaf.Raw)
	c256 := sha256.Sum256(leaf.Raw)
	for _, tt := range []struct {
		u, s, m uint8
		want    []byte
	}{
		{3, 1, 1, s256[:]},
		{3, 0, 2, c512[:]},
		{2, 0, 0, leaf.Raw},
		{3, 1, 0, leaf.RawSubjectPublicKeyInfo},
		{3, 0, 9, c256[:]}, // unknown matching type: SHA-256 of the data
	} {
		r := smtptlstest.TLSA(leaf, tt.u, tt.s, tt.m)
		got, err := hex.DecodeString(r.Certificate)
		if err != nil || string(got) != string(tt.want) || r.Usage != tt.u || r.Selector != tt.s || r.MatchingType != tt.m {
			t.Errorf("%d %d %d: %v", tt.u, tt.s, tt.m, r)
		}
		if r.Hdr.Rrtype != dns.TypeTLSA || r.Hdr.Class != dns.ClassINET {
			t.Errorf("header %v", r.Hdr)
		}
	}
	// The zone-file line loads into a zone and is served.
	w := smtptlstest.New(t)
	z := w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	line := smtptlstest.TLSARecord("_25._tcp.mx", leaf, smtptlstest.DANEEE, smtptlstest.SelectorSPKI, smtptlstest.MatchSHA256)
	if !strings.HasPrefix(line, "_25._tcp.mx IN TLSA 3 1 1 ") {
		t.Errorf("line %q", line)
	}
	z.MustAdd(line)
	r := exchange(t, w, q{name: "_25._tcp.mx.example.test", qtype: dns.TypeTLSA, do: true})
	tlsa := ofType(r.Answer, dns.TypeTLSA)
	if !r.AuthenticatedData || len(tlsa) != 1 || !strings.EqualFold(tlsa[0].(*dns.TLSA).Certificate, hex.EncodeToString(s256[:])) {
		t.Errorf("%v", r)
	}
}
