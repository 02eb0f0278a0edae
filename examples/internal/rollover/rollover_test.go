package rollover_test

import (
	"crypto/x509"
	"encoding/hex"
	"testing"

	"github.com/smtptls/smtptls/examples/internal/rollover"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsverify"
)

func TestOf(t *testing.T) {
	ca, err := smtptlstest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(smtptlstest.CertOptions{}, "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	next, err := smtptlstest.SelfSigned("mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := smtptlstest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{cert.Leaf, ca.Intermediate}
	rec := func(c *x509.Certificate, usage uint8) tlsverify.TLSA {
		r := smtptlstest.TLSA(c, usage, 1, 1)
		data, err := hex.DecodeString(r.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		return tlsverify.TLSA{Usage: r.Usage, Selector: r.Selector, MatchingType: r.MatchingType, Data: data}
	}
	cur, nxt := rec(cert.Leaf, 3), rec(next.Leaf, 3)
	issuer, otherCA := rec(ca.Intermediate, 2), rec(other.Intermediate, 2)
	for _, c := range []struct {
		name    string
		records []tlsverify.TLSA
		want    rollover.Scheme
		advice  bool
	}{
		{"single 3 1 1", []tlsverify.TLSA{cur}, rollover.None, true},
		{"3 1 1 current and next", []tlsverify.TLSA{cur, nxt}, rollover.CurrentNext, false},
		{"3 1 1 and 2 1 1", []tlsverify.TLSA{cur, issuer}, rollover.CurrentIssuer, false},
		{"all three", []tlsverify.TLSA{nxt, issuer, cur}, rollover.CurrentIssuer, false},
		{"2 1 1 only", []tlsverify.TLSA{issuer}, rollover.IssuerOnly, true},
		{"2 1 1 and a stale 3 1 1", []tlsverify.TLSA{issuer, nxt}, rollover.IssuerOnly, true},
		{"3 1 1 and another CA's 2 1 1", []tlsverify.TLSA{cur, otherCA}, rollover.None, true},
		{"nothing matches", []tlsverify.TLSA{nxt, otherCA}, rollover.NoMatch, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := rollover.Of(c.records, []string{"mx.example.test"}, nil, chain)
			if got != c.want || (rollover.Advice(got) != "") != c.advice {
				t.Errorf("Of = %q (advice %q), want %q (advice: %v)", got, rollover.Advice(got), c.want, c.advice)
			}
		})
	}
}
