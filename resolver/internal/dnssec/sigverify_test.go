package dnssec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// sigKey is a zone key with its private half.
type sigKey struct {
	k    *dns.DNSKEY
	priv crypto.Signer
}

func newSigKey(t testing.TB, zone string, alg uint8, bits int) sigKey {
	t.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: alg}
	priv, err := k.Generate(bits)
	if err != nil {
		t.Fatal(err)
	}
	return sigKey{k, priv.(crypto.Signer)}
}

func (sk sigKey) sign(t testing.TB, rrs []dns.RR) *dns.RRSIG {
	t.Helper()
	now := uint32(time.Now().Unix())
	h := rrs[0].Header()
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl},
		KeyTag: sk.k.KeyTag(), SignerName: sk.k.Hdr.Name, Algorithm: sk.k.Algorithm,
		Inception: now - 3600, Expiration: now + 86400}
	if err := sig.Sign(sk.priv, rrs); err != nil {
		t.Fatal(err)
	}
	return sig
}

func mustRRs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}

func copyRRs(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}

// TestVerifyRRSIGAgreesWithMiekg: verifyRRSIG reaches the outcome of
// miekg/dns's RRSIG.Verify on valid signatures and on every way of
// spoiling them, for every supported algorithm, for record types whose
// RDATA names are put in lower case and types whose names are not, for
// wildcard expansions, duplicates and any record order; and it takes its
// own path (signedData) wherever the names are already canonical.
func TestVerifyRRSIGAgreesWithMiekg(t *testing.T) {
	t.Parallel()
	const zone = "example.test."
	keys := []sigKey{
		newSigKey(t, zone, dns.ECDSAP256SHA256, 256),
		newSigKey(t, zone, dns.ECDSAP384SHA384, 384),
		newSigKey(t, zone, dns.ED25519, 256),
		newSigKey(t, zone, dns.RSASHA256, 2048),
		newSigKey(t, zone, dns.RSASHA512, 1024),
		newSigKey(t, zone, dns.RSASHA1, 1024),
	}
	other := newSigKey(t, zone, dns.ECDSAP256SHA256, 256)
	sets := []struct {
		name  string
		rrs   []dns.RR
		ownFn bool // signedData must handle it
	}{
		{"A", mustRRs(t, "www.example.test. 300 IN A 192.0.2.3", "www.example.test. 300 IN A 192.0.2.1", "www.example.test. 300 IN A 192.0.2.2"), true},
		{"AAAA", mustRRs(t, "www.example.test. 300 IN AAAA 2001:db8::1"), true},
		{"MX", mustRRs(t, "example.test. 300 IN MX 20 mx2.example.test.", "example.test. 300 IN MX 10 mx1.example.test."), true},
		{"MX upper", mustRRs(t, "example.test. 300 IN MX 10 MX1.Example.TEST.", "example.test. 300 IN MX 20 mx2.example.test."), false},
		{"TLSA", mustRRs(t, "_25._tcp.mx1.example.test. 300 IN TLSA 3 1 1 "+strings.Repeat("ab", 32), "_25._tcp.mx1.example.test. 300 IN TLSA 2 1 1 "+strings.Repeat("cd", 32)), true},
		{"TXT", mustRRs(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=1"`, `_mta-sts.example.test. 300 IN TXT "Upper Case" "two strings"`), true},
		{"CNAME", mustRRs(t, "alias.example.test. 300 IN CNAME target.example.net."), true},
		{"CNAME upper", mustRRs(t, "alias.example.test. 300 IN CNAME Target.Example.NET."), false},
		{"NS", mustRRs(t, "sub.example.test. 300 IN NS ns1.sub.example.test.", "sub.example.test. 300 IN NS ns2.example.net."), true},
		{"SOA", mustRRs(t, "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300"), true},
		{"SOA upper", mustRRs(t, "example.test. 300 IN SOA NS1.example.test. Hostmaster.example.test. 1 7200 3600 1209600 300"), false},
		{"SRV", mustRRs(t, "_submission._tcp.example.test. 300 IN SRV 0 1 587 mail.example.test."), true},
		{"DNAME", mustRRs(t, "old.example.test. 300 IN DNAME new.example.test."), true},
		{"PTR", mustRRs(t, "1.2.0.192.example.test. 300 IN PTR host.example.test."), true},
		{"NAPTR upper", mustRRs(t, `example.test. 300 IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.Example.TEST.`), false},
		// NSEC's next name keeps its case (RFC 6840 5.1).
		{"NSEC", mustRRs(t, "a.example.test. 300 IN NSEC B.example.test. A RRSIG NSEC"), true},
		{"NSEC3", mustRRs(t, "2vptu5timamqttgl4luu9kg21e0aor3s.example.test. 300 IN NSEC3 1 1 0 - 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3T A RRSIG"), true},
		{"DS", mustRRs(t, "sub.example.test. 300 IN DS 12345 13 2 "+strings.Repeat("ef", 32)), true},
		{"duplicates", mustRRs(t, "dup.example.test. 300 IN A 192.0.2.9", "dup.example.test. 300 IN A 192.0.2.9", "dup.example.test. 300 IN A 192.0.2.8"), true},
		{"root-ish owner", mustRRs(t, "example.test. 300 IN TXT \"apex\""), true},
		{"escaped owner", mustRRs(t, `a\.b.example.test. 300 IN A 192.0.2.7`), false},
		{"upper owner", mustRRs(t, "WWW.example.test. 300 IN A 192.0.2.7"), false},
	}
	// A wildcard: signed at *.example.test, verified as expanded.
	wild := mustRRs(t, "*.example.test. 300 IN A 192.0.2.44", "*.example.test. 300 IN A 192.0.2.45")

	cases := 0
	check := func(name string, sig *dns.RRSIG, k *dns.DNSKEY, rrs []dns.RR, wantOwn, wantOK bool) {
		t.Helper()
		cases++
		ours, theirs := verifyRRSIG(sig, k, rrs), sig.Verify(k, rrs)
		if (ours == nil) != (theirs == nil) {
			t.Errorf("%s: verifyRRSIG %v, RRSIG.Verify %v", name, ours, theirs)
		}
		if wantOK && ours != nil {
			t.Errorf("%s: a valid signature fails: %v", name, ours)
		}
		if !wantOK && ours == nil {
			t.Errorf("%s: a spoiled signature verifies", name)
		}
		if _, own := signedData(sig, rrs); wantOwn && !own {
			t.Errorf("%s: signedData declined a canonical RRset", name)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sk := range keys {
		for _, set := range sets {
			alg := dns.AlgorithmToString[sk.k.Algorithm]
			sig := sk.sign(t, set.rrs)
			name := alg + "/" + set.name
			check(name, sig, sk.k, set.rrs, set.ownFn, true)

			shuffled := copyRRs(set.rrs)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			for _, rr := range shuffled {
				rr.Header().Ttl = 17 // the Original TTL is signed, not the TTL
			}
			check(name+"/shuffled, TTL decreased", sig, sk.k, shuffled, set.ownFn, true)

			spoiled := copyRRs(set.rrs)
			spoiled[len(spoiled)-1] = changeRDATA(t, spoiled[len(spoiled)-1])
			check(name+"/RDATA changed", sig, sk.k, spoiled, set.ownFn, false)

			s2 := *sig
			s2.OrigTtl++
			check(name+"/Original TTL changed", &s2, sk.k, set.rrs, set.ownFn, false)
			s2 = *sig
			s2.Inception--
			check(name+"/inception changed", &s2, sk.k, set.rrs, set.ownFn, false)
			s2 = *sig
			s2.Signature = flipBase64(s2.Signature)
			check(name+"/signature changed", &s2, sk.k, set.rrs, set.ownFn, false)
			s2 = *sig
			s2.Signature = "!!"
			check(name+"/signature not base64", &s2, sk.k, set.rrs, false, false)
			s2 = *sig
			s2.TypeCovered = dns.TypeHINFO // no set above has this type
			check(name+"/type covered changed", &s2, sk.k, set.rrs, false, false)
			s2 = *sig
			s2.Labels = 0
			check(name+"/labels zero", &s2, sk.k, set.rrs, false, false)
			// Another key: key tag mismatch; with the tag forced, the
			// cryptography must fail.
			check(name+"/other key", sig, other.k, set.rrs, false, false)
			forged := *other.k
			forged.Algorithm = sk.k.Algorithm
			s2 = *sig
			s2.KeyTag = forged.KeyTag()
			check(name+"/other key with its tag", &s2, &forged, set.rrs, false, false)
			badKey := *sk.k
			badKey.PublicKey = "AAAA" + badKey.PublicKey[4:]
			s2 = *sig
			s2.KeyTag = badKey.KeyTag()
			check(name+"/key changed", &s2, &badKey, set.rrs, false, false)
		}
		sig := sk.sign(t, wild)
		alg := dns.AlgorithmToString[sk.k.Algorithm]
		for _, owner := range []string{"a.example.test.", "a.b.example.test.", "x.y.z.example.test."} {
			expanded := copyRRs(wild)
			for _, rr := range expanded {
				rr.Header().Name = owner
			}
			s2 := *sig
			s2.Hdr.Name = owner
			check(alg+"/wildcard as "+owner, &s2, sk.k, expanded, true, true)
			s2.Labels++
			check(alg+"/wildcard as "+owner+", labels+1", &s2, sk.k, expanded, true, false)
		}
	}
	t.Logf("%d cases", cases)
}

// changeRDATA returns rr with one RDATA field changed.
func changeRDATA(t testing.TB, rr dns.RR) dns.RR {
	switch x := rr.(type) {
	case *dns.A:
		x.A = slices.Clone(x.A)
		x.A[3]++
	case *dns.AAAA:
		x.AAAA = slices.Clone(x.AAAA)
		x.AAAA[15]++
	case *dns.MX:
		x.Preference++
	case *dns.TLSA:
		x.Certificate = "00" + x.Certificate[2:]
	case *dns.TXT:
		x.Txt = append(slices.Clone(x.Txt), "x")
	case *dns.CNAME:
		x.Target = "other." + x.Target
	case *dns.NS:
		x.Ns = "other." + x.Ns
	case *dns.SOA:
		x.Serial++
	case *dns.SRV:
		x.Port++
	case *dns.DNAME:
		x.Target = "other." + x.Target
	case *dns.PTR:
		x.Ptr = "other." + x.Ptr
	case *dns.NAPTR:
		x.Order++
	case *dns.NSEC:
		x.NextDomain = "c.example.test."
	case *dns.NSEC3:
		x.Iterations++
	case *dns.DS:
		x.KeyTag++
	default:
		t.Fatalf("no change for %T", rr)
	}
	return rr
}

// flipBase64 changes one octet of the base64 data s encodes.
func flipBase64(s string) string {
	b := []byte(s)
	if b[4] == 'A' {
		b[4] = 'B'
	} else {
		b[4] = 'A'
	}
	return string(b)
}

// TestRSAKeyLimits: rsaKey decodes what miekg/dns decodes and refuses
// what it refuses.
func TestRSAKeyLimits(t *testing.T) {
	t.Parallel()
	mod := make([]byte, 128)
	mod[0] = 0xc1
	for _, tc := range []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"e=65537", append([]byte{3, 1, 0, 1}, mod...), true},
		{"long form exponent length", append([]byte{0, 0, 3, 1, 0, 1}, mod...), true},
		{"exponent too long", append([]byte{5, 1, 0, 0, 0, 1}, mod...), false},
		{"exponent leading zero", append([]byte{3, 0, 0, 1}, mod...), false},
		{"exponent zero length", append([]byte{0, 0, 0}, mod...), false},
		{"exponent above 2^31-1", append([]byte{4, 0x80, 0, 0, 1}, mod...), false},
		{"modulus too short", append([]byte{3, 1, 0, 1}, mod[:63]...), false},
		{"modulus leading zero", append([]byte{3, 1, 0, 1, 0}, mod...), false},
		{"too short", []byte{3, 1, 0, 1}, false},
	} {
		if got := rsaKey(tc.key) != nil; got != tc.ok {
			t.Errorf("%s: decoded %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// BenchmarkVerifyRRSIG: one ECDSA P-256 signature over an MX RRset of two
// records, as the validator checks one answer. The floor is the
// signature check alone (ecdsa.VerifyASN1 of a precomputed hash, with a
// key and signature already decoded): what exceeds it is canonical form,
// decoding and checks. Each iteration runs the floor, verifyRRSIG and
// miekg/dns's RRSIG.Verify once each, in rotating order, and it reports
// the median of each and the ratios x-floor (verifyRRSIG) and
// miekg-x-floor.
func BenchmarkVerifyRRSIG(b *testing.B) {
	sk := newSigKey(b, "example.test.", dns.ECDSAP256SHA256, 256)
	rrs := mustRRs(b, "example.test. 300 IN MX 10 mx1.example.test.", "example.test. 300 IN MX 20 mx2.example.test.")
	sig := sk.sign(b, rrs)
	priv := sk.priv.(*ecdsa.PrivateKey)
	digest := sha256.Sum256([]byte("floor"))
	der, err := ecdsa.SignASN1(crand.Reader, priv, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &priv.PublicKey
	fns := []func() error{
		func() error {
			if !ecdsa.VerifyASN1(pub, digest[:], der) {
				return fmt.Errorf("floor signature does not verify")
			}
			return nil
		},
		func() error { return verifyRRSIG(sig, sk.k, rrs) },
		func() error { return sig.Verify(sk.k, rrs) },
	}
	took := make([][]time.Duration, len(fns))
	for i := 0; b.Loop(); i++ {
		for j := range fns {
			k := (i + j) % len(fns)
			start := time.Now()
			if err := fns[k](); err != nil {
				b.Fatal(err)
			}
			took[k] = append(took[k], time.Since(start))
		}
	}
	med := func(d []time.Duration) float64 { slices.Sort(d); return float64(d[len(d)/2]) }
	floor, ours, miekg := med(took[0]), med(took[1]), med(took[2])
	b.ReportMetric(floor/1e3, "floor-us")
	b.ReportMetric(ours/1e3, "verify-us")
	b.ReportMetric(miekg/1e3, "miekg-us")
	b.ReportMetric(ours/floor, "x-floor")
	b.ReportMetric(miekg/floor, "miekg-x-floor")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkVerifyRRSIGAllocs is verifyRRSIG alone, for its allocations.
func BenchmarkVerifyRRSIGAllocs(b *testing.B) {
	sk := newSigKey(b, "example.test.", dns.ECDSAP256SHA256, 256)
	rrs := mustRRs(b, "example.test. 300 IN MX 10 mx1.example.test.", "example.test. 300 IN MX 20 mx2.example.test.")
	sig := sk.sign(b, rrs)
	b.ReportAllocs()
	for b.Loop() {
		if err := verifyRRSIG(sig, sk.k, rrs); err != nil {
			b.Fatal(err)
		}
	}
}

// TestECDSADER: ecdsaDER encodes (r, s) as encoding/asn1 does, for every
// shape of integer: leading zero octets, high bit set, one octet; and
// refuses zero, as ecdsa.Verify does.
func TestECDSADER(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := func(n int) [][]byte {
		var out [][]byte
		for _, first := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff} {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			b[0] = first
			out = append(out, b)
		}
		lead := make([]byte, n)
		lead[n-1] = 0x80
		return append(out, lead)
	}
	for _, n := range []int{32, 48} {
		for _, r := range shapes(n) {
			for _, s := range shapes(n) {
				got, ok := ecdsaDER(nil, r, s)
				want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
				if err != nil || !ok || !bytes.Equal(got, want) {
					t.Errorf("r %x s %x: %x (%v), want %x (%v)", r, s, got, ok, want, err)
				}
			}
		}
		zero := make([]byte, n)
		if _, ok := ecdsaDER(nil, zero, shapes(n)[1]); ok {
			t.Errorf("r = 0 encoded")
		}
	}
}
