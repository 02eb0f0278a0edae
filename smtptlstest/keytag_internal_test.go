package smtptlstest

import (
	"crypto"
	"encoding/base64"
	"encoding/binary"
	"testing"

	"github.com/miekg/dns"
)

// TestZoneKeyTagZeroRegenerated makes the generator produce a key whose
// tag is 0 (which miekg/dns cannot sign with) and checks that the kit
// generates another one instead of serving a zone that cannot be signed.
func TestZoneKeyTagZeroRegenerated(t *testing.T) {
	calls := 0
	gen := func(k *dns.DNSKEY, bits int) (crypto.PrivateKey, error) {
		calls++
		p, err := k.Generate(bits)
		if err != nil || calls > 1 {
			return p, err
		}
		// Adjust the public key so that the RFC 4034 appendix B
		// checksum over the RDATA comes out 0.
		forceKeyTagZero(t, k)
		return p, nil
	}
	zk, err := newZoneKeyWith("example.", dns.ZONE|dns.SEP, dns.ED25519, 256, gen)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("generator called %d times, want 2 (the tag-0 key regenerated)", calls)
	}
	if zk.tag == 0 || zk.dnskey.KeyTag() == 0 {
		t.Fatalf("key tag %d: a key with tag 0 was kept", zk.tag)
	}
	// The key signs: what failed with tag 0.
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"x"}}
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 60},
		KeyTag: zk.tag, SignerName: "example.", Algorithm: dns.ED25519, Expiration: 1 << 31, Inception: 1}
	if err := sig.Sign(zk.priv, []dns.RR{rr}); err != nil {
		t.Fatalf("signing with the regenerated key: %v", err)
	}
}

// TestZoneKeyTagZeroGivesUp checks that a generator that only ever yields
// tag-0 keys ends in an error, not a loop.
func TestZoneKeyTagZeroGivesUp(t *testing.T) {
	gen := func(k *dns.DNSKEY, bits int) (crypto.PrivateKey, error) {
		p, err := k.Generate(bits)
		if err == nil {
			forceKeyTagZero(t, k)
		}
		return p, err
	}
	if _, err := newZoneKeyWith("example.", dns.ZONE, dns.ED25519, 256, gen); err == nil {
		t.Fatal("no error from a generator that only yields key tag 0")
	}
}

// forceKeyTagZero rewrites the last two bytes of k's public key so that
// its key tag (a 16-bit ones'-complement-like sum over the RDATA, RFC 4034
// appendix B) is 0.
func forceKeyTagZero(t *testing.T, k *dns.DNSKEY) {
	t.Helper()
	pub, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil || len(pub) < 2 {
		t.Fatalf("public key: %v", err)
	}
	n := len(pub)
	for v := 0; v < 1<<16; v++ {
		binary.BigEndian.PutUint16(pub[n-2:], uint16(v))
		k.PublicKey = base64.StdEncoding.EncodeToString(pub)
		if k.KeyTag() == 0 {
			return
		}
	}
	t.Fatal("no public key variant with key tag 0")
}
