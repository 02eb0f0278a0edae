package smtptlstest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestManyZonesAllSigned: a world of many zones signs every zone. Each
// zone's DNSKEY RRset must validate Secure through resolver.Validating,
// from the world's trust anchors: a zone whose key the kit cannot sign
// with (key tag 0, which miekg/dns refuses) would be answered SERVFAIL.
// A few hundred zones with ED25519 keys, the fastest the kit offers, keep
// this to a second or two; each zone has two keys, so a tag-0 key shows
// up in about one run in a hundred without the kit's regeneration
// (keytag_internal_test.go forces the case).
func TestManyZonesAllSigned(t *testing.T) {
	t.Parallel()
	const n = 300
	w := smtptlstest.New(t)
	cfg := smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, Algorithm: dns.ED25519}
	for i := range n {
		w.AddZone(fmt.Sprintf("z%d.many.test", i), cfg)
	}
	v := &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		name := fmt.Sprintf("z%d.many.test.", i)
		a, err := v.Lookup(ctx, name, dns.TypeDNSKEY)
		if err != nil {
			t.Errorf("%s DNSKEY: %v", name, err)
			continue
		}
		if a.Security != resolver.Secure || len(a.Records) == 0 {
			t.Errorf("%s DNSKEY: %v with %d records, want secure keys", name, a.Security, len(a.Records))
		}
	}
}
