package resolver

import "github.com/miekg/dns"

// RootAnchors returns the IANA root zone trust anchors in DS form: the
// key-signing keys KSK-2017 (key tag 20326) and KSK-2024 (key tag 38696),
// both algorithm 8 with SHA-256 digests, as published in
// https://data.iana.org/root-anchors/root-anchors.xml. Either validates the
// root DNSKEY RRset (RFC 6840 5.11: one valid path suffices), which carries
// a validator across the KSK rollover. KSK-2010 (19036) is retired and not
// included.
//
// Each call returns fresh records that the caller may modify.
func RootAnchors() []*dns.DS {
	mk := func(tag uint16, digest string) *dns.DS {
		return &dns.DS{
			Hdr:        dns.RR_Header{Name: ".", Rrtype: dns.TypeDS, Class: dns.ClassINET, Ttl: 172800},
			KeyTag:     tag,
			Algorithm:  dns.RSASHA256,
			DigestType: dns.SHA256,
			Digest:     digest,
		}
	}
	return []*dns.DS{
		mk(20326, "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"),
		mk(38696, "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16"),
	}
}
