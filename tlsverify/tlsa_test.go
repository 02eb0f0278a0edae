package tlsverify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

func TestTLSAStatus(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "mx.example.com")
	_, edPriv, _ := ed25519.GenerateKey(nil)
	edSPKI, err := x509.MarshalPKIXPublicKey(edPriv.Public())
	if err != nil {
		t.Fatal(err)
	}
	// An SPKI with an algorithm Go does not know: well-formed DER that
	// x509.ParsePKIXPublicKey refuses.
	unknownSPKI := []byte{0x30, 0x0d, 0x30, 0x06, 0x06, 0x04, 0x2a, 0x03, 0x04, 0x05, 0x03, 0x03, 0x00, 0x01, 0x02}
	d32, d64 := make([]byte, 32), make([]byte, 64)
	for _, tc := range []struct {
		name string
		r    TLSA
		want RecordStatus
	}{
		{"3-1-1", TLSA{3, 1, 1, d32}, RecordUsable},
		{"3-0-2", TLSA{3, 0, 2, d64}, RecordUsable},
		{"2-1-1", TLSA{2, 1, 1, d32}, RecordUsable},
		{"0-0-1-pkix-ta", TLSA{0, 0, 1, d32}, RecordPKIXUsage},
		{"1-1-1-pkix-ee", TLSA{1, 1, 1, d32}, RecordPKIXUsage},
		{"4-1-1", TLSA{4, 1, 1, d32}, RecordUnknownUsage},
		{"255-1-1", TLSA{255, 1, 1, d32}, RecordUnknownUsage},
		{"3-2-1", TLSA{3, 2, 1, d32}, RecordUnknownSelector},
		{"3-1-3", TLSA{3, 1, 3, d32}, RecordUnknownMatchingType},
		{"3-1-255", TLSA{3, 1, 255, d32}, RecordUnknownMatchingType},
		{"3-1-1-short", TLSA{3, 1, 1, d32[:31]}, RecordBadDigestLength},
		{"3-1-1-sha512-length", TLSA{3, 1, 1, d64}, RecordBadDigestLength},
		{"3-1-2-sha256-length", TLSA{3, 1, 2, d32}, RecordBadDigestLength},
		{"3-1-1-empty", TLSA{3, 1, 1, nil}, RecordBadDigestLength},
		{"2-0-0-cert", TLSA{2, 0, 0, pki.root.Raw}, RecordUsable},
		{"2-0-0-spki-not-cert", TLSA{2, 0, 0, pki.root.RawSubjectPublicKeyInfo}, RecordBadFullData},
		{"2-0-0-trailing", TLSA{2, 0, 0, append(bytes.Clone(pki.root.Raw), 0)}, RecordBadFullData},
		{"2-1-0-spki", TLSA{2, 1, 0, pki.root.RawSubjectPublicKeyInfo}, RecordUsable},
		{"2-1-0-ed25519", TLSA{2, 1, 0, edSPKI}, RecordUsable},
		{"2-1-0-cert-not-spki", TLSA{2, 1, 0, pki.root.Raw}, RecordBadFullData},
		{"2-1-0-unknown-algorithm", TLSA{2, 1, 0, unknownSPKI}, RecordBadFullData},
		{"2-1-0-empty", TLSA{2, 1, 0, nil}, RecordBadFullData},
		{"3-0-0-cert", TLSA{3, 0, 0, pki.leaf.Raw}, RecordUsable},
		{"3-0-0-garbage", TLSA{3, 0, 0, []byte{1, 2, 3}}, RecordBadFullData},
		{"3-1-0-spki", TLSA{3, 1, 0, pki.leaf.RawSubjectPublicKeyInfo}, RecordUsable},
		// DANE-EE(3) data is only compared, so a key type Go cannot use
		// is still a usable record.
		{"3-1-0-unknown-algorithm", TLSA{3, 1, 0, unknownSPKI}, RecordUsable},
		{"3-1-0-trailing", TLSA{3, 1, 0, append(bytes.Clone(pki.leaf.RawSubjectPublicKeyInfo), 0)}, RecordBadFullData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.r.Status(); got != tc.want {
				t.Errorf("Status() = %s, want %s", got, tc.want)
			}
			if got := tc.r.Usable(); got != (tc.want == RecordUsable) {
				t.Errorf("Usable() = %v", got)
			}
		})
	}
}

func TestTLSAString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		r    TLSA
		want string
	}{
		{TLSA{3, 1, 1, []byte{0x0c, 0x72, 0xAC}}, "3 1 1 0c72ac"},
		{TLSA{2, 0, 0, nil}, "2 0 0"},
		{TLSA{255, 255, 255, []byte{0xff}}, "255 255 255 ff"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			if got := tc.r.String(); got != tc.want {
				t.Errorf("got %q", got)
			}
			back, err := parseTLSALine(tc.r.String())
			if err != nil || !sameRecord(back, TLSA{tc.r.Usage, tc.r.Selector, tc.r.MatchingType, tc.r.Data}) && len(tc.r.Data) > 0 {
				t.Errorf("round trip: %v %v", back, err)
			}
		})
	}
	if s := (TLSA{2, 0, 0, make([]byte, 1000)}).short(); len(s) > 50 || !strings.HasSuffix(s, "...") {
		t.Errorf("short() = %q", s)
	}
	if RecordBadFullData.String() != "bad-full-data" || RecordStatus(200).String() != "RecordStatus(200)" {
		t.Error("RecordStatus.String")
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, ref string
		want         bool
	}{
		{"mx.example.com", "mx.example.com", true},
		{"MX.EXAMPLE.COM", "mx.example.com", true},
		{"mx.example.com.", "mx.example.com", false},
		{"*.example.com", "mx.example.com", true},
		{"*.EXAMPLE.com", "mx.example.com", true},
		{"*.example.com", "a.mx.example.com", false},
		{"*.example.com", "example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.com", "example.com", false},
		{"mx*.example.com", "mx1.example.com", false},
		{"*mx.example.com", "amx.example.com", false},
		{"m*x.example.com", "max.example.com", false},
		{"*.*.example.com", "a.b.example.com", false},
		{"mx.*.example.com", "mx.a.example.com", false},
		{"*", "com", false},
		{"", "", false},
		{"bücher.example", "xn--bcher-kva.example", false},
		{"*.example.com.", "mx.example.com", false},
		{"a b.example.com", "a b.example.com", false}, // not a DNS-ID
		{"mx-.example.com", "mx-.example.com", false},
		{"_mx.example.com", "_mx.example.com", true},
		{"*.example.com", "_mx.example.com", true},
	} {
		t.Run(tc.pattern+"~"+tc.ref, func(t *testing.T) {
			t.Parallel()
			if got := matchName(tc.pattern, tc.ref); got != tc.want {
				t.Errorf("matchName(%q, %q) = %v", tc.pattern, tc.ref, got)
			}
		})
	}
	for _, tc := range []struct{ in, want string }{
		{"MX.Example.COM.", "mx.example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"_25._tcp.mx.example", "_25._tcp.mx.example"},
		{"", ""},
		{".", ""},
		{"a..b", ""},
		{"\xff.example", ""},
		{strings.Repeat("a", 64) + ".example", ""},
		// Refused since dnsname.Mail: these used to pass as ASCII.
		{"a b.example", ""},
		{"a\x00b.example", ""},
		{"a\r\nb.example", ""},
		{"-mx.example", ""},
		{"x.1.2.3.4", ""},
		{"*.example.com", ""},
		{"bücher\xff.example", ""},
		// Addresses are kept for x509's IP address SAN check.
		{"192.0.2.1", "192.0.2.1"},
		{"2001:DB8::1", "2001:db8::1"},
	} {
		if got := canonicalName(tc.in); got != tc.want {
			t.Errorf("canonicalName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrorType(t *testing.T) {
	t.Parallel()
	d := &DANE{Records: []TLSA{{3, 1, 1, make([]byte, 32)}}}
	_, err := d.VerifyChain(nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindNoCertificate || e.Result != tlsrpt.ValidationFailure {
		t.Fatalf("got %v", err)
	}
	inner := errors.New("inner")
	e = &Error{Kind: KindPKIX, Result: KindPKIX.Result(), Depth: 2, Reason: "r", Name: "n", Record: &TLSA{2, 1, 1, make([]byte, 32)}, Err: inner}
	if !errors.Is(e, inner) || e.Error() == "" {
		t.Errorf("Unwrap/Error: %v", e)
	}
	for k := KindNoUsableRecords; k <= KindConfig; k++ {
		if strings.HasPrefix(k.String(), "Kind(") || k.Result() == "" {
			t.Errorf("kind %d lacks a name or result", k)
		}
	}
	if ClassifyHandshakeError(nil) != "" {
		t.Error("nil error classified")
	}
	var nilDANE *DANE
	if _, err := nilDANE.VerifyChain(nil); !errors.As(err, &e) || e.Kind != KindConfig {
		t.Errorf("nil DANE: %v", err)
	}
	if nilDANE.Usable() {
		t.Error("nil DANE usable")
	}
}

func TestDANEUsable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		d    *DANE
		want bool
	}{
		{"none", &DANE{}, false},
		{"pkix", &DANE{Records: []TLSA{{1, 1, 1, make([]byte, 32)}}}, false},
		{"ee", &DANE{Records: []TLSA{{3, 1, 1, make([]byte, 32)}}}, true},
		{"excluded-by-preference", &DANE{Records: []TLSA{{3, 1, 2, make([]byte, 64)}}, DigestPreference: []uint8{SHA256}}, false},
		{"beyond-max-records", &DANE{Records: append(make([]TLSA, MaxRecords), TLSA{3, 1, 1, make([]byte, 32)})}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.d.Usable(); got != tc.want {
				t.Errorf("Usable() = %v", got)
			}
		})
	}
}

// The DANE value keeps its own copy of the record data: a caller reusing
// its buffers cannot change a verifier in use.
func TestRecordsCopied(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "mx.example.com")
	r := spkiSHA256(pki.leaf)
	d := &DANE{Records: []TLSA{r}, Now: time.Now}
	if _, err := d.VerifyChain(pki.chain()); err != nil {
		t.Fatal(err)
	}
	r.Data[0] ^= 0xff
	if _, err := d.VerifyChain(pki.chain()); err != nil {
		t.Fatalf("verifier changed by the caller's buffer: %v", err)
	}
}

// An attacker's chain of many same-named certificates cannot make path
// building run away: the search stops at its limits.
func TestWorkLimit(t *testing.T) {
	t.Parallel()
	root := genKey(t)
	rootCert := makeCert(t, "Loop CA", root, true, nil, nil, nil)
	// Many distinct CA certificates with the same subject and key (so
	// every one verifies every other), none matching the record.
	chain := []*x509.Certificate{makeCert(t, "mx.example.com", genKey(t), false, []string{"mx.example.com"}, rootCert, root)}
	for range MaxChain - 1 {
		chain = append(chain, makeCert(t, "Loop CA", root, true, nil, rootCert, root))
	}
	d := &DANE{Records: []TLSA{{DANETA, SPKI, SHA256, make([]byte, 32)}}, Names: []string{"mx.example.com"}}
	_, err := d.VerifyChain(chain)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindLimit || e.Result != tlsrpt.ValidationFailure {
		t.Fatalf("got %v, want KindLimit", err)
	}
}

// TestPKIXInvalidHost checks that a Host that is not a mail host name is a
// configuration error, not a name to look for in certificates ("a b.example"
// and "-mx.example" used to pass as ASCII).
func TestPKIXInvalidHost(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"", "a b.example", "mx.example\r\n", "-mx.example", "x.1.2.3.4", "\xff\xfe.example"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			err := (&PKIX{Host: host}).VerifyChain(nil)
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindConfig {
				t.Errorf("Host %q: %v; want KindConfig", host, err)
			}
		})
	}
}

// TestUsableRecords: usability under a digest preference is decided by
// UsableRecords, and a DANE value with the same preference agrees with it
// (RFC 7671 9 agility never leaves a non-empty usable set empty).
func TestUsableRecords(t *testing.T) {
	t.Parallel()
	ee256 := TLSA{3, 1, 1, make([]byte, 32)}
	ee512 := TLSA{3, 1, 2, make([]byte, 64)}
	ta256 := TLSA{2, 0, 1, make([]byte, 32)}
	eeFull := TLSA{3, 1, 0, benchChain(t)[0].RawSubjectPublicKeyInfo}
	pkix := TLSA{1, 1, 1, make([]byte, 32)}
	for _, tc := range []struct {
		name string
		recs []TLSA
		pref []uint8
		want []TLSA
	}{
		{"default keeps every digest", []TLSA{ee256, ee512, pkix}, nil, []TLSA{ee256, ee512}},
		{"sha512 only drops sha256", []TLSA{ee256, pkix}, []uint8{SHA512}, nil},
		{"sha512 only keeps sha512", []TLSA{ee256, ee512}, []uint8{SHA512}, []TLSA{ee512}},
		{"sha256 only", []TLSA{ee512, ta256}, []uint8{SHA256}, []TLSA{ta256}},
		{"full is always usable", []TLSA{ee256, eeFull}, []uint8{SHA512}, []TLSA{eeFull}},
		{"unknown values support no digest", []TLSA{ee256, ee512}, []uint8{7}, nil},
		{"beyond max records", append(make([]TLSA, MaxRecords), ee256), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := UsableRecords(tc.recs, tc.pref)
			if len(got) != len(tc.want) {
				t.Fatalf("UsableRecords = %v, want %v", got, tc.want)
			}
			for i := range got {
				if !sameRecord(got[i], tc.want[i]) {
					t.Fatalf("UsableRecords = %v, want %v", got, tc.want)
				}
			}
			for _, r := range tc.recs {
				in := false
				for _, g := range got {
					in = in || sameRecord(g, r)
				}
				if r.UsableWith(tc.pref) != in && len(tc.recs) <= MaxRecords {
					t.Errorf("UsableWith(%v) = %v for %v", tc.pref, !in, r.short())
				}
			}
			d := &DANE{Records: tc.recs, DigestPreference: tc.pref}
			if d.Usable() != (len(got) > 0) {
				t.Errorf("DANE.Usable() = %v, UsableRecords has %d", d.Usable(), len(got))
			}
		})
	}
}
