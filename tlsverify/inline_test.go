package tlsverify

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestInlineMatchesPrepared: a verifier of DANE-EE(3) digests holds its
// effective records inline; the same RRset with an ignored PKIX-TA(0)
// record added takes the prepared path. Both must reach the same
// outcome, digest agility (RFC 7671 9) and preferences included.
func TestInlineMatchesPrepared(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "mx.example.com")
	leaf := pki.leaf
	c256, s256 := sha256.Sum256(leaf.Raw), sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	c512, s512 := sha512.Sum512(leaf.Raw), sha512.Sum512(leaf.RawSubjectPublicKeyInfo)
	wrong32, wrong64 := make([]byte, 32), make([]byte, 64)
	pool := []TLSA{
		{DANEEE, SPKI, SHA256, s256[:]},
		{DANEEE, Cert, SHA256, c256[:]},
		{DANEEE, SPKI, SHA512, s512[:]},
		{DANEEE, Cert, SHA512, c512[:]},
		{DANEEE, SPKI, SHA256, wrong32},
		{DANEEE, SPKI, SHA512, wrong64},
		{DANEEE, Cert, SHA512, wrong64},
		{DANEEE, SPKI, SHA256, wrong32[:31]}, // bad length: unusable
		{DANEEE, 7, SHA256, s256[:]},         // unknown selector: unusable
	}
	prefs := [][]uint8{nil, {SHA256}, {SHA512}, {SHA256, SHA512}}
	ignored := TLSA{PKIXTA, Cert, SHA256, c256[:]}
	cases := 0
	for i := range pool {
		for j := i; j <= len(pool); j++ {
			for k := j; k <= len(pool); k++ {
				recs := []TLSA{pool[i]}
				if j < len(pool) {
					recs = append(recs, pool[j])
				}
				if k < len(pool) && k != j {
					recs = append(recs, pool[k])
				}
				for _, pref := range prefs {
					cases++
					inline := &DANE{Records: recs, DigestPreference: pref}
					prepared := &DANE{Records: append(append([]TLSA(nil), recs...), ignored), DigestPreference: pref}
					mi, erri := inline.VerifyChain(pki.chain())
					mp, errp := prepared.VerifyChain(pki.chain())
					if got, want := outcome(mi, erri), outcome(mp, errp); got != want {
						t.Errorf("%v pref %v: inline %s, prepared %s", recs, pref, got, want)
					}
					if inline.Usable() != prepared.Usable() {
						t.Errorf("%v pref %v: Usable %v inline, %v prepared", recs, pref, inline.Usable(), prepared.Usable())
					}
				}
			}
		}
	}
	t.Logf("%d RRsets compared", cases)
}

func outcome(m Match, err error) string {
	var e *Error
	if errors.As(err, &e) {
		return "fail " + e.Kind.String()
	}
	if err != nil {
		return "error " + err.Error()
	}
	return fmt.Sprintf("match %v at %d", m.Record, m.Depth)
}

// TestNewVerifierAllocs: a verifier built for one check of DANE-EE(3)
// digest records, as a caller builds one per connection, costs no
// allocation: its state lives in the value, which stays on the stack.
func TestNewVerifierAllocs(t *testing.T) {
	chain := benchChain(t)
	recs := []TLSA{spkiSHA256(chain[0])}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := (&DANE{Records: recs}).VerifyChain(chain); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a new 3 1 1 verifier per check allocates %v times", n)
	}
}

// TestConcurrentFirstUse: goroutines racing to be first to verify with
// one value all get the right outcome (run with -race), on both kinds of
// state.
func TestConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "mx.example.com")
	for _, recs := range [][]TLSA{
		{spkiSHA256(pki.leaf)},
		{taSPKISHA256(pki.inter)},
	} {
		for range 20 {
			d := &DANE{Records: recs, Names: []string{"mx.example.com"}}
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := d.VerifyChain(pki.chain()); err != nil {
						t.Error(err)
					}
					if !d.Usable() {
						t.Error("not usable")
					}
				}()
			}
			wg.Wait()
		}
	}
}
