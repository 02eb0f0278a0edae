package smtptlstest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

// TestSigningAlgorithms signs a zone with each algorithm and checks every
// RRSIG of positive and negative answers with dns.RRSIG.Verify and
// ValidityPeriod, and the DS in the parent against the zone's KSK.
func TestSigningAlgorithms(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	algs := []uint8{dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512,
		dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519}
	for i, alg := range algs {
		signing := smtptlstest.NSEC
		if alg != dns.RSASHA1 && i%2 == 1 {
			signing = smtptlstest.NSEC3
		}
		name := fmt.Sprintf("alg%d.test", alg)
		t.Run(fmt.Sprintf("%s/%s", dns.AlgorithmToString[alg], signing), func(t *testing.T) {
			t.Parallel()
			z := w.AddZone(name, smtptlstest.ZoneConfig{Signing: signing, Algorithm: alg})
			z.MustAdd("@ MX 10 mx", "mx A 192.0.2.25", "mx AAAA 2001:db8::25", "*.w TXT wild")
			zone := z.Name()
			for _, x := range []q{
				{name: zone, qtype: dns.TypeMX},
				{name: zone, qtype: dns.TypeDNSKEY},
				{name: "mx." + zone, qtype: dns.TypeA},
				{name: "mx." + zone, qtype: dns.TypeTLSA},          // NODATA
				{name: "nope." + zone, qtype: dns.TypeA},           // NXDOMAIN
				{name: "a.w." + zone, qtype: dns.TypeTXT},          // wildcard
				{name: "a.w." + zone, qtype: dns.TypeA},            // wildcard NODATA
				{name: "_25._tcp.mx." + zone, qtype: dns.TypeTLSA}, // NXDOMAIN below a name
			} {
				x.do, x.cd = true, true
				r := exchange(t, w, x)
				if r.Rcode == dns.RcodeServerFailure {
					t.Fatalf("%s: SERVFAIL", x.name)
				}
				n := verifyRRsets(t, w, r.Answer) + verifyRRsets(t, w, r.Ns)
				if n == 0 {
					t.Errorf("%s %s: no RRSIG verified: %v", x.name, dns.TypeToString[x.qtype], r)
				}
				for _, sig := range ofType(append(r.Answer, r.Ns...), dns.TypeRRSIG) {
					if s := sig.(*dns.RRSIG); s.Algorithm != alg {
						t.Errorf("RRSIG algorithm %d, want %d", s.Algorithm, alg)
					}
				}
			}
			ksk := z.KSK()
			if ksk == nil || ksk.Flags != 257 || ksk.Algorithm != alg {
				t.Fatalf("KSK = %v", ksk)
			}
			r := exchange(t, w, q{name: zone, qtype: dns.TypeDS, do: true, cd: true})
			ds := rrset(r.Answer, zone, dns.TypeDS)
			if len(ds) != 1 {
				t.Fatalf("DS: %v", r)
			}
			want := ksk.ToDS(dns.SHA256)
			if got := ds[0].(*dns.DS); !strings.EqualFold(got.Digest, want.Digest) || got.KeyTag != want.KeyTag {
				t.Errorf("DS %v does not match KSK (%v)", got, want)
			}
			if sigs := sigsFor(r.Answer, zone, dns.TypeDS); len(sigs) != 1 || sigs[0].SignerName != "test." {
				t.Errorf("DS not signed by the parent: %v", sigs)
			}
			// The validating front agrees: the zone is secure.
			if r := exchange(t, w, q{name: zone, qtype: dns.TypeMX, do: true}); !r.AuthenticatedData {
				t.Errorf("CD=0 MX: AD not set: %v", r)
			}
		})
	}
}

// TestChainOfTrust walks from the World's anchor to a leaf zone, checking
// each DS against the child's DNSKEY RRset, as a validator does.
func TestChainOfTrust(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3})
	w.AddZone("sub.example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, Algorithm: dns.ED25519})
	anchors := w.Anchors()
	if len(anchors) != 1 || anchors[0].Hdr.Name != "." {
		t.Fatalf("Anchors() = %v", anchors)
	}
	ds := []*dns.DS{anchors[0]}
	for _, zone := range []string{".", "test.", "example.test.", "sub.example.test."} {
		ks := keys(t, w, zone)
		r := exchange(t, w, q{name: zone, qtype: dns.TypeDNSKEY, do: true, cd: true})
		if verifyRRsets(t, w, r.Answer) != 1 {
			t.Fatalf("%s: DNSKEY RRset not verified", zone)
		}
		matched := false
		for _, d := range ds {
			for _, k := range ks {
				if k.Flags&dns.SEP != 0 && strings.EqualFold(k.ToDS(d.DigestType).Digest, d.Digest) {
					// The key the DS names must sign the DNSKEY RRset.
					for _, s := range sigsFor(r.Answer, zone, dns.TypeDNSKEY) {
						matched = matched || s.KeyTag == k.KeyTag()
					}
				}
			}
		}
		if !matched {
			t.Fatalf("%s: no DS matches a key signing the DNSKEY RRset", zone)
		}
		if zone == "sub.example.test." {
			break
		}
		child := map[string]string{".": "test.", "test.": "example.test.", "example.test.": "sub.example.test."}[zone]
		r = exchange(t, w, q{name: child, qtype: dns.TypeDS, do: true, cd: true})
		if verifyRRsets(t, w, r.Answer) != 1 {
			t.Fatalf("%s DS not verified: %v", child, r)
		}
		ds = nil
		for _, rr := range rrset(r.Answer, child, dns.TypeDS) {
			ds = append(ds, rr.(*dns.DS))
		}
	}
}

// nsecWorld builds one zone per denial method with the same names:
// an apex MX, a host, an empty non-terminal, wildcards, a secure and an
// insecure delegation.
func nsecWorld(t *testing.T, signing smtptlstest.Signing, iter uint16, salt string) (*smtptlstest.World, string) {
	w := smtptlstest.New(t)
	z := w.AddZone("proof.test", smtptlstest.ZoneConfig{Signing: signing, NSEC3Iterations: iter, NSEC3Salt: salt})
	z.MustAdd(
		"@ MX 10 mx",
		"mx A 192.0.2.1",
		"host.ent.deep TXT deep", // ent.deep and deep are empty non-terminals
		"*.wild TXT wildcard",
		"*.wcname CNAME mx",
		"insecure NS ns.elsewhere.example.",
	)
	w.AddZone("child.proof.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	return w, z.Name()
}

func TestNSECProofs(t *testing.T) {
	t.Parallel()
	w, zone := nsecWorld(t, smtptlstest.NSEC, 0, "")
	tests := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		check func(t *testing.T, r *dns.Msg)
	}{
		{"nodata", "mx", dns.TypeTXT, dns.RcodeSuccess, func(t *testing.T, r *dns.Msg) {
			n := rrset(r.Ns, "mx."+zone, dns.TypeNSEC)
			if len(n) != 1 {
				t.Fatalf("no NSEC at the name")
			}
			bm := n[0].(*dns.NSEC).TypeBitMap
			if hasType(bm, dns.TypeTXT) || hasType(bm, dns.TypeCNAME) || !hasType(bm, dns.TypeA) {
				t.Errorf("bitmap %v", bm)
			}
		}},
		{"nodata at empty non-terminal", "ent.deep", dns.TypeA, dns.RcodeSuccess, func(t *testing.T, r *dns.Msg) {
			ok := false
			for _, n := range nsecs(r.Ns) {
				ok = ok || (nsecCovers(n, "ent.deep."+zone) && dns.IsSubDomain("ent.deep."+zone, n.NextDomain))
			}
			if !ok {
				t.Errorf("no NSEC covers the ENT with a descendant as next name")
			}
		}},
		{"nxdomain", "nope", dns.TypeA, dns.RcodeNameError, func(t *testing.T, r *dns.Msg) {
			coveredName, coveredWild := false, false
			for _, n := range nsecs(r.Ns) {
				coveredName = coveredName || nsecCovers(n, "nope."+zone)
				coveredWild = coveredWild || nsecCovers(n, "*."+zone)
			}
			if !coveredName || !coveredWild {
				t.Errorf("name covered %v, wildcard covered %v", coveredName, coveredWild)
			}
		}},
		{"wildcard answer", "a.b.wild", dns.TypeTXT, dns.RcodeSuccess, func(t *testing.T, r *dns.Msg) {
			sigs := sigsFor(r.Answer, "a.b.wild."+zone, dns.TypeTXT)
			if len(sigs) != 1 || int(sigs[0].Labels) != dns.CountLabel("wild."+zone) {
				t.Fatalf("wildcard RRSIG labels: %v", sigs)
			}
			ok := false
			for _, n := range nsecs(r.Ns) {
				ok = ok || nsecCovers(n, "a.b.wild."+zone)
			}
			if !ok {
				t.Errorf("no NSEC proves that no closer name exists")
			}
		}},
		{"wildcard nodata", "x.wild", dns.TypeA, dns.RcodeSuccess, func(t *testing.T, r *dns.Msg) {
			w := rrset(r.Ns, "*.wild."+zone, dns.TypeNSEC)
			if len(w) != 1 || hasType(w[0].(*dns.NSEC).TypeBitMap, dns.TypeA) {
				t.Errorf("no NSEC at the wildcard without A: %v", w)
			}
			ok := false
			for _, n := range nsecs(r.Ns) {
				ok = ok || nsecCovers(n, "x.wild."+zone)
			}
			if !ok {
				t.Errorf("qname not covered")
			}
		}},
		{"wildcard cname", "x.wcname", dns.TypeA, dns.RcodeSuccess, func(t *testing.T, r *dns.Msg) {
			if len(rrset(r.Answer, "x.wcname."+zone, dns.TypeCNAME)) != 1 || len(rrset(r.Answer, "mx."+zone, dns.TypeA)) != 1 {
				t.Errorf("CNAME not synthesized and chased: %v", r.Answer)
			}
		}},
		{"insecure delegation DS", "insecure", dns.TypeDS, dns.RcodeSuccess, func(t *testing.T, r *dns.Msg) {
			n := rrset(r.Ns, "insecure."+zone, dns.TypeNSEC)
			if len(n) != 1 {
				t.Fatalf("no NSEC at the cut")
			}
			bm := n[0].(*dns.NSEC).TypeBitMap
			if !hasType(bm, dns.TypeNS) || hasType(bm, dns.TypeDS) || hasType(bm, dns.TypeSOA) {
				t.Errorf("bitmap %v: want NS without DS and SOA", bm)
			}
		}},
		{"secure delegation DS", "child", dns.TypeDS, dns.RcodeSuccess, func(t *testing.T, r *dns.Msg) {
			if len(rrset(r.Answer, "child."+zone, dns.TypeDS)) != 1 {
				t.Errorf("no DS")
			}
		}},
		{"child apex NODATA comes from the child", "child", dns.TypeTXT, dns.RcodeSuccess, func(t *testing.T, r *dns.Msg) {
			if len(rrset(r.Ns, "child."+zone, dns.TypeSOA)) != 1 {
				t.Errorf("SOA is not the child's: %v", r.Ns)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := exchange(t, w, q{name: tt.qname + "." + zone, qtype: tt.qtype, do: true, cd: true})
			if r.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s: %v", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode], r)
			}
			if verifyRRsets(t, w, r.Answer)+verifyRRsets(t, w, r.Ns) == 0 {
				t.Errorf("nothing signed")
			}
			for _, rr := range append(r.Answer, r.Ns...) {
				if _, ok := rr.(*dns.RRSIG); ok {
					continue
				}
				if len(sigsFor(append(r.Answer, r.Ns...), rr.Header().Name, rr.Header().Rrtype)) == 0 {
					t.Errorf("unsigned RRset %v", rr)
				}
			}
			tt.check(t, r)
		})
	}
}

// proveEncloser checks an NSEC3 closest encloser proof for qname (RFC 5155
// section 8.3) and returns the closest encloser and the record covering
// the next closer name.
func proveEncloser(t *testing.T, recs []*dns.NSEC3, qname string) (string, *dns.NSEC3) {
	t.Helper()
	labels := dns.SplitDomainName(qname)
	for i := 1; i < len(labels); i++ {
		ce := dns.Fqdn(strings.Join(labels[i:], "."))
		nc := dns.Fqdn(strings.Join(labels[i-1:], "."))
		var matched, covering *dns.NSEC3
		for _, n := range recs {
			if n.Match(ce) {
				matched = n
			}
			if n.Cover(nc) {
				covering = n
			}
		}
		if matched != nil {
			if hasType(matched.TypeBitMap, dns.TypeDNAME) || (hasType(matched.TypeBitMap, dns.TypeNS) && !hasType(matched.TypeBitMap, dns.TypeSOA)) {
				t.Errorf("closest encloser %s is a delegation or DNAME", ce)
			}
			if covering == nil {
				t.Fatalf("closest encloser %s, but next closer %s not covered", ce, nc)
			}
			return ce, covering
		}
	}
	t.Fatalf("no closest encloser for %s", qname)
	return "", nil
}

func TestNSEC3Proofs(t *testing.T) {
	t.Parallel()
	for _, cfg := range []struct {
		name    string
		signing smtptlstest.Signing
		iter    uint16
		salt    string
	}{
		{"plain", smtptlstest.NSEC3, 0, ""},
		{"salted-iterated", smtptlstest.NSEC3, 5, "c0ffee"},
		{"opt-out", smtptlstest.NSEC3OptOut, 0, ""},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			t.Parallel()
			w, zone := nsecWorld(t, cfg.signing, cfg.iter, cfg.salt)
			optOut := cfg.signing == smtptlstest.NSEC3OptOut
			get := func(t *testing.T, name string, qtype uint16, rcode int) (*dns.Msg, []*dns.NSEC3) {
				r := exchange(t, w, q{name: name + "." + zone, qtype: qtype, do: true, cd: true})
				if r.Rcode != rcode {
					t.Fatalf("rcode %s: %v", dns.RcodeToString[r.Rcode], r)
				}
				verifyRRsets(t, w, r.Answer)
				verifyRRsets(t, w, r.Ns)
				recs := nsec3s(r.Ns)
				for _, n := range recs {
					if n.Iterations != cfg.iter || !strings.EqualFold(n.Salt, cfg.salt) || n.Hash != dns.SHA1 {
						t.Errorf("NSEC3 parameters %v", n)
					}
					if got := n.Flags&1 != 0; got != optOut {
						t.Errorf("opt-out flag %v, want %v", got, optOut)
					}
				}
				return r, recs
			}
			t.Run("nsec3param", func(t *testing.T) {
				r := exchange(t, w, q{name: zone, qtype: dns.TypeNSEC3PARAM, do: true, cd: true})
				p := rrset(r.Answer, zone, dns.TypeNSEC3PARAM)
				if len(p) != 1 || p[0].(*dns.NSEC3PARAM).Iterations != cfg.iter || p[0].(*dns.NSEC3PARAM).Flags != 0 {
					t.Errorf("NSEC3PARAM %v", p)
				}
			})
			t.Run("nodata", func(t *testing.T) {
				_, recs := get(t, "mx", dns.TypeTXT, dns.RcodeSuccess)
				ok := false
				for _, n := range recs {
					if n.Match("mx." + zone) {
						ok = !hasType(n.TypeBitMap, dns.TypeTXT) && hasType(n.TypeBitMap, dns.TypeA) && hasType(n.TypeBitMap, dns.TypeRRSIG)
					}
				}
				if !ok {
					t.Errorf("no matching NSEC3 with the right bitmap: %v", recs)
				}
			})
			t.Run("nodata at empty non-terminal", func(t *testing.T) {
				_, recs := get(t, "ent.deep", dns.TypeA, dns.RcodeSuccess)
				ok := false
				for _, n := range recs {
					ok = ok || (n.Match("ent.deep."+zone) && len(n.TypeBitMap) == 0)
				}
				if !ok {
					t.Errorf("no NSEC3 with an empty bitmap for the ENT: %v", recs)
				}
			})
			t.Run("nxdomain", func(t *testing.T) {
				_, recs := get(t, "a.nope", dns.TypeA, dns.RcodeNameError)
				ce, nc := proveEncloser(t, recs, "a.nope."+zone)
				if ce != zone {
					t.Errorf("closest encloser %s, want %s", ce, zone)
				}
				if got := nc.Flags&1 != 0; got != optOut {
					t.Errorf("next closer opt-out %v", got)
				}
				ok := false
				for _, n := range recs {
					ok = ok || n.Cover("*."+zone)
				}
				if !ok {
					t.Errorf("wildcard at the closest encloser not covered")
				}
			})
			t.Run("wildcard answer", func(t *testing.T) {
				r, recs := get(t, "a.b.wild", dns.TypeTXT, dns.RcodeSuccess)
				sigs := sigsFor(r.Answer, "a.b.wild."+zone, dns.TypeTXT)
				if len(sigs) != 1 || int(sigs[0].Labels) != dns.CountLabel("wild."+zone) {
					t.Fatalf("wildcard RRSIG: %v", sigs)
				}
				// RFC 5155 section 8.8: the next closer name (one label
				// below the closest encloser the labels imply) is covered.
				ok := false
				for _, n := range recs {
					ok = ok || n.Cover("b.wild."+zone)
				}
				if !ok {
					t.Errorf("next closer not covered: %v", recs)
				}
			})
			t.Run("wildcard nodata", func(t *testing.T) {
				_, recs := get(t, "x.wild", dns.TypeA, dns.RcodeSuccess)
				ce, _ := proveEncloser(t, recs, "x.wild."+zone)
				ok := false
				for _, n := range recs {
					ok = ok || (n.Match("*."+ce) && !hasType(n.TypeBitMap, dns.TypeA))
				}
				if ce != "wild."+zone || !ok {
					t.Errorf("closest encloser %s; wildcard NSEC3 matched without A: %v", ce, ok)
				}
			})
			t.Run("insecure delegation DS", func(t *testing.T) {
				_, recs := get(t, "insecure", dns.TypeDS, dns.RcodeSuccess)
				var match *dns.NSEC3
				for _, n := range recs {
					if n.Match("insecure." + zone) {
						match = n
					}
				}
				if optOut {
					// RFC 5155 section 7.2.4: no NSEC3 of its own;
					// an opt-out span covers it.
					if match != nil {
						t.Fatalf("opt-out zone has an NSEC3 for an insecure delegation")
					}
					ce, nc := proveEncloser(t, recs, "insecure."+zone)
					if ce != zone || nc.Flags&1 == 0 {
						t.Errorf("closest encloser %s, covering opt-out %v", ce, nc.Flags&1)
					}
					return
				}
				if match == nil || !hasType(match.TypeBitMap, dns.TypeNS) || hasType(match.TypeBitMap, dns.TypeDS) ||
					hasType(match.TypeBitMap, dns.TypeSOA) || hasType(match.TypeBitMap, dns.TypeRRSIG) {
					t.Errorf("NSEC3 at the cut: %v", match)
				}
			})
			t.Run("secure delegation DS", func(t *testing.T) {
				r, _ := get(t, "child", dns.TypeDS, dns.RcodeSuccess)
				if len(rrset(r.Answer, "child."+zone, dns.TypeDS)) != 1 {
					t.Errorf("no DS: %v", r)
				}
			})
			t.Run("missing DS at a secure delegation's name below", func(t *testing.T) {
				// A name under an existing host, not a cut.
				get(t, "x.mx", dns.TypeDS, dns.RcodeNameError)
			})
		})
	}
}

// TestDNSSECRecordsOnlyWithDO checks RFC 4035 section 3.2.1.
func TestDNSSECRecordsOnlyWithDO(t *testing.T) {
	t.Parallel()
	w, zone := nsecWorld(t, smtptlstest.NSEC3, 0, "")
	for _, x := range []q{
		{name: "mx." + zone, qtype: dns.TypeA},
		{name: "nope." + zone, qtype: dns.TypeA},
		{name: "a.wild." + zone, qtype: dns.TypeTXT, edns: true},
	} {
		r := exchange(t, w, x)
		for _, rr := range append(r.Answer, r.Ns...) {
			switch rr.Header().Rrtype {
			case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
				t.Errorf("%s: DNSSEC record without DO: %v", x.name, rr)
			}
		}
		if x.name == "nope."+zone && len(ofType(r.Ns, dns.TypeSOA)) != 1 {
			t.Errorf("NXDOMAIN without SOA: %v", r)
		}
	}
}

func TestSignatureCache(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("cache.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	z.MustAdd("www A 192.0.2.1")
	sig := func() *dns.RRSIG {
		r := exchange(t, w, q{name: "www.cache.test", qtype: dns.TypeA, do: true, cd: true})
		s := sigsFor(r.Answer, "www.cache.test.", dns.TypeA)
		if len(s) != 1 {
			t.Fatalf("no RRSIG: %v", r)
		}
		return s[0]
	}
	first := sig()
	// ECDSA signatures are randomized: the same bytes mean a cached one.
	if again := sig(); again.Signature != first.Signature {
		t.Errorf("signature not cached")
	}
	z.MustAdd("www A 192.0.2.2")
	changed := sig()
	if changed.Signature == first.Signature {
		t.Errorf("signature not recomputed after a change")
	}
	r := exchange(t, w, q{name: "www.cache.test", qtype: dns.TypeA, do: true, cd: true})
	if len(ofType(r.Answer, dns.TypeA)) != 2 || verifyRRsets(t, w, r.Answer) != 1 {
		t.Errorf("changed RRset: %v", r)
	}
}
