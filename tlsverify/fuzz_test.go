package tlsverify

import (
	"crypto/x509"
	"errors"
	"testing"
)

// FuzzTLSA checks record classification and the verifier's preparation
// of arbitrary records (including Full(0) data decoded as certificates
// and keys) against a fixed chain. Seeds: every record of testdata/vectors.
func FuzzTLSA(f *testing.F) {
	vs := loadVectors(f)
	for _, v := range vs {
		for _, r := range v.dane.Records {
			f.Add(r.Usage, r.Selector, r.MatchingType, r.Data)
		}
	}
	chain := benchChain(f)
	f.Fuzz(func(t *testing.T, usage, selector, mtype uint8, data []byte) {
		r := TLSA{usage, selector, mtype, data}
		st := r.Status()
		if r.Usable() != (st == RecordUsable) {
			t.Fatalf("Usable %v disagrees with Status %s", r.Usable(), st)
		}
		if st == RecordUsable && (usage < DANETA || usage > DANEEE || selector > SPKI || mtype > SHA512) {
			t.Fatalf("%v classified usable", r.short())
		}
		if len(data) > 0 {
			back, err := parseTLSALine(r.String())
			if err != nil || !sameRecord(back, r) {
				t.Fatalf("String %q does not round-trip: %v", r.String(), err)
			}
		}
		d := &DANE{Records: []TLSA{r}, Names: []string{"mx.example.com"}, Now: benchNow}
		if d.Usable() != (st == RecordUsable) {
			t.Fatalf("DANE.Usable %v, record status %s", d.Usable(), st)
		}
		for _, pref := range [][]uint8{nil, {SHA512}, {SHA256}} {
			u := len(UsableRecords([]TLSA{r}, pref)) > 0
			if pd := (&DANE{Records: []TLSA{r}, DigestPreference: pref}); pd.Usable() != u || r.UsableWith(pref) != u {
				t.Fatalf("preference %v: DANE.Usable %v, UsableRecords %v", pref, pd.Usable(), u)
			}
		}
		m, err := d.VerifyChain(chain)
		checkOutcome(t, m, err)
		if st != RecordUsable {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindNoUsableRecords {
				t.Fatalf("unusable record gave %v", err)
			}
		}
	})
}

// FuzzVerifyChain fuzzes chain matching: a fuzzed certificate (DER, kept
// only if Go parses it, as crypto/tls would) is inserted into a fixed
// chain at a fuzzed position, and verified against a fuzzed record, with
// or without a fixed record that matches the intermediate. Seeds: the
// records and certificates of testdata/vectors.
func FuzzVerifyChain(f *testing.F) {
	vs := loadVectors(f)
	for i, v := range vs {
		r := TLSA{DANETA, SPKI, SHA256, make([]byte, 32)}
		if len(v.dane.Records) > 0 {
			r = v.dane.Records[0]
		}
		for j, der := range v.ders {
			f.Add(r.Usage, r.Selector, r.MatchingType, r.Data, der, uint8(i+j))
		}
	}
	base := benchChain(f)
	fixed := taSPKISHA256(base[1])
	f.Fuzz(func(t *testing.T, usage, selector, mtype uint8, data, der []byte, pos uint8) {
		chain := append([]*x509.Certificate(nil), base...)
		if c, err := x509.ParseCertificate(der); err == nil {
			at := int(pos>>1) % (len(base) + 1)
			chain = append(append(append([]*x509.Certificate(nil), base[:at]...), c), base[at:]...)
		}
		recs := []TLSA{{usage, selector, mtype, data}}
		if pos&1 == 1 {
			recs = append(recs, fixed)
		}
		d := &DANE{Records: recs, Names: []string{"mx.example.com"}, Now: benchNow}
		m, err := d.VerifyChain(chain)
		checkOutcome(t, m, err)
	})
}

// checkOutcome checks the invariants of every VerifyChain result.
func checkOutcome(t *testing.T, m Match, err error) {
	t.Helper()
	if err == nil {
		if m.Depth < 0 || !m.Record.Usable() {
			t.Fatalf("success with depth %d record %v", m.Depth, m.Record.short())
		}
		if m.Record.Usage == DANEEE && m.Depth != 0 {
			t.Fatalf("DANE-EE match at depth %d", m.Depth)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *Error", err)
	}
	if e.Result != e.Kind.Result() || e.Error() == "" {
		t.Fatalf("inconsistent error %#v", e)
	}
	if m.Depth < -1 || m.Depth >= MaxChain+1 {
		t.Fatalf("depth %d out of range", m.Depth)
	}
}
