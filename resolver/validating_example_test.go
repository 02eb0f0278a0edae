package resolver_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// A Validating resolver checks DNSSEC itself, from trust anchors, over any
// recursive resolver. Here the upstream is the test kit's front and the
// anchors are its private root's; in production both fields stay empty:
// the servers of /etc/resolv.conf and the IANA root anchors.
func ExampleValidating() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}).MustAdd(
		"@ MX 10 mail", "mail A 192.0.2.1", "_25._tcp.mail TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	w.AddZone("plain.test.", smtptlstest.ZoneConfig{}).MustAdd("@ MX 10 mail")
	w.AddZone("broken.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("@ MX 10 mail")
	w.SetFault("broken.test.", dns.TypeMX, smtptlstest.FaultBadSignature)

	v := &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}
	ctx := context.Background()
	if err := v.Check(ctx); err != nil {
		fmt.Println("upstream unfit for DNSSEC:", err)
		return
	}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"_25._tcp.mail.example.test", dns.TypeTLSA},
		{"_25._tcp.nosuch.example.test", dns.TypeTLSA},
		{"plain.test", dns.TypeMX},
		{"broken.test", dns.TypeMX},
	} {
		a, err := v.Lookup(ctx, q.name, q.qtype)
		if err != nil {
			var e *resolver.Error
			if errors.As(err, &e) {
				fmt.Printf("%s: %s (EDE %d)\n", q.name, e.Kind, e.EDE)
			}
			continue
		}
		fmt.Printf("%s: %s, %d records, nxdomain %v\n", q.name, a.Security, len(a.Records), a.NXDomain)
	}
	// Output:
	// _25._tcp.mail.example.test: secure, 1 records, nxdomain false
	// _25._tcp.nosuch.example.test: secure, 0 records, nxdomain true
	// plain.test: insecure, 1 records, nxdomain false
	// broken.test: bogus (EDE 6)
}
