// Command tagclash writes ECDSA P-256 (algorithm 13) DNSSEC keys whose key
// tags collide, in the files ldns-signzone reads (K<zone>+013+<tag>.key
// and .private, BIND private-key format), for the interop suite's
// "keys with one tag" scenarios. ldns-keygen would need hundreds of runs
// to find a collision; generating here takes milliseconds.
//
//	go run ./interop/tagclash ZONE DIR
//
// It prints three key file bases, one per line: two KSKs (flags 257) and
// one ZSK (flags 256) that all have the same key tag. Each base has its
// own subdirectory of DIR, since the three file names are identical.
package main

import (
	"crypto/ecdsa"
	"fmt"
	"os"
	"path/filepath"

	"github.com/miekg/dns"
)

type key struct {
	k    *dns.DNSKEY
	priv *ecdsa.PrivateKey
}

func gen(zone string, flags uint16) key {
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 300},
		Flags:     flags,
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	p, err := k.Generate(256)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tagclash:", err)
		os.Exit(1)
	}
	return key{k, p.(*ecdsa.PrivateKey)}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: tagclash ZONE DIR")
		os.Exit(2)
	}
	zone, dir := dns.Fqdn(os.Args[1]), os.Args[2]
	ksks := map[uint16][]key{}
	zsks := map[uint16]key{}
	var out []key
	for out == nil {
		// Alternate roles; a tag with two KSKs and one ZSK ends the search.
		for _, flags := range []uint16{257, 256} {
			k := gen(zone, flags)
			tag := k.k.KeyTag()
			if flags == 257 {
				ksks[tag] = append(ksks[tag], k)
			} else if _, ok := zsks[tag]; !ok {
				zsks[tag] = k
			}
			if z, ok := zsks[tag]; ok && len(ksks[tag]) >= 2 {
				out = []key{ksks[tag][0], ksks[tag][1], z}
				break
			}
		}
	}
	for i, k := range out {
		sub := filepath.Join(dir, fmt.Sprintf("clash%d", i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "tagclash:", err)
			os.Exit(1)
		}
		base := filepath.Join(sub, fmt.Sprintf("K%s+%03d+%05d", zone, k.k.Algorithm, k.k.KeyTag()))
		if err := os.WriteFile(base+".key", []byte(k.k.String()+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "tagclash:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(base+".private", []byte(k.k.PrivateKeyString(k.priv)), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "tagclash:", err)
			os.Exit(1)
		}
		fmt.Println(base)
	}
}
