package resolver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Tests on the package's own signed world (dnssec_world_test.go), for the
// cases the public test kit cannot express: algorithms and keys it cannot
// make (Ed448, RSA below 1024 bits, revoked keys, KeyTrap key sets), DNAME,
// and responses rewritten on the wire (forged signers, floods, stripped
// proofs).

const twTLSA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var twLeaf = []string{
	"@ MX 10 mail",
	"mail A 192.0.2.1",
	"mail AAAA 2001:db8::1",
	"_25._tcp.mail TLSA 3 1 1 " + twTLSA,
	"www CNAME mail",
	"out CNAME host.unsigned.test.",
	"*.wild MX 10 mail",
	"*.wild A 192.0.2.2",
	"x.ent A 192.0.2.3",
}

func twLeafWith(extra ...string) []string { return append(append([]string{}, twLeaf...), extra...) }

// twCraftedWorld builds the world of these tests.
func twCraftedWorld(t *testing.T) *twWorld {
	w := twNewWorld(t)
	w.zone("test.", twCfg{signing: twNSEC3OptOut})
	w.zone("example.test.", twCfg{signing: twNSEC3}, twLeafWith("bad CNAME mail.expired.test.", "loop1 CNAME loop2", "loop2 CNAME loop1",
		"c0 CNAME c1", "c1 CNAME c2", "c2 CNAME c3", "c3 CNAME c4", "c4 CNAME c5", "c5 CNAME c6", "c6 CNAME c7", "c7 CNAME c8", "c8 CNAME c9", "c9 A 192.0.2.9")...)
	w.zone("nsec.test.", twCfg{signing: twNSEC}, twLeafWith("sub DNAME example.test.", "long 60 A 192.0.2.4")...)
	w.zone("child.nsec.test.", twCfg{}, "@ A 192.0.2.5")
	for _, alg := range []uint8{5, 7, 8, 10, 13, 14, 15} {
		w.zone(fmt.Sprintf("alg%d.test.", alg), twCfg{signing: twNSEC, alg: alg}, twLeaf...)
	}
	w.zone("alg16.test.", twCfg{signing: twNSEC, alg: 16, fakeSig: true}, twLeaf...)
	w.zone("small.test.", twCfg{signing: twNSEC, alg: dns.RSASHA256, smallRSA: true}, twLeaf...)
	w.zone("revoked.test.", twCfg{signing: twNSEC, revoke: true}, twLeaf...)
	w.zone("expired.test.", twCfg{signing: twNSEC, inception: time.Now().Add(-60 * 24 * time.Hour), expiration: time.Now().Add(-30 * 24 * time.Hour)}, twLeaf...)
	w.zone("future.test.", twCfg{signing: twNSEC, inception: time.Now().Add(10 * 24 * time.Hour), expiration: time.Now().Add(40 * 24 * time.Hour)}, twLeaf...)
	w.zone("soon.test.", twCfg{signing: twNSEC, expiration: time.Now().Add(100 * time.Second)}, twLeaf...)
	w.zone("baddigest.test.", twCfg{signing: twNSEC, dsMutate: func(d *dns.DS) { d.Digest = "00" + d.Digest[2:] }}, twLeaf...)
	w.zone("nosig.test.", twCfg{forceDS: true}, twLeaf...)
	w.zone("unknownalg.test.", twCfg{signing: twNSEC, dsMutate: func(d *dns.DS) { d.Algorithm = 200 }}, twLeaf...)
	w.zone("unknowndigest.test.", twCfg{signing: twNSEC, dsMutate: func(d *dns.DS) { d.DigestType = 200 }}, twLeaf...)
	w.zone("iter200.test.", twCfg{signing: twNSEC3, iterations: 200, salt: "abcd"}, twLeaf...)
	w.zone("island.test.", twCfg{signing: twNSEC, noDS: true}, twLeaf...)
	w.zone("unsigned.test.", twCfg{}, "@ MX 10 host", "host A 192.0.2.3", "back CNAME mail.example.test.")
	// KeyTrap zones: keys sharing one key tag, 20 of them (past the
	// default MaxKeysPerTag) and 4 (at it).
	w.zone("keytrap.test.", twCfg{signing: twNSEC, extraKeys: twCollidingKeys(20, 4242)}, twLeaf...)
	w.zone("keytrap4.test.", twCfg{signing: twNSEC, extraKeys: twCollidingKeys(4, 4242)}, twLeaf...)
	w.seal()
	return w
}

type twCase struct {
	name   string
	qtype  uint16
	qname  string
	tamper func(w *twWorld, q, r *dns.Msg) // applied to the answer to (qname, qtype) only
	want   string                          // secure, insecure, bogus, or an error Kind
	ede    uint16
	nx     bool
	empty  bool
	cnames int
	check  func(t *testing.T, v *Validating, a *Answer)
}

func twVerdict(a *Answer, err error) (string, *Error) {
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return "untyped: " + err.Error(), nil
		}
		if e.Kind == KindBogus {
			return "bogus", e
		}
		return e.Kind.String(), e
	}
	return a.Security.String(), nil
}

// twRemoveSigs drops the RRSIGs of section covering t (every type when 0).
func twRemoveSigs(section []dns.RR, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range section {
		if s, ok := rr.(*dns.RRSIG); ok && (t == 0 || s.TypeCovered == t) {
			continue
		}
		out = append(out, rr)
	}
	return out
}

func twFirstSig(section []dns.RR) *dns.RRSIG {
	for _, rr := range section {
		if s, ok := rr.(*dns.RRSIG); ok {
			return s
		}
	}
	return nil
}

func twRandomSig(s *dns.RRSIG) *dns.RRSIG {
	c := dns.Copy(s).(*dns.RRSIG)
	b, _ := base64.StdEncoding.DecodeString(c.Signature)
	b[len(b)/2] ^= 1
	c.Signature = base64.StdEncoding.EncodeToString(b)
	return c
}

func twRunCases(t *testing.T, w *twWorld, cases []twCase) {
	t.Helper()
	shared := w.serve(t, nil) // one server for the untampered cases
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tamper func(q, r *dns.Msg)
			if tc.tamper != nil {
				tamper = func(q, r *dns.Msg) {
					if q.Question[0].Qtype == tc.qtype && q.Question[0].Name == dns.Fqdn(tc.qname) {
						tc.tamper(w, q, r)
					}
				}
			}
			srv := shared
			if tamper != nil {
				srv = w.serve(t, tamper)
			}
			v := w.validator(srv)
			a, err := v.Lookup(context.Background(), tc.qname, tc.qtype)
			got, e := twVerdict(a, err)
			if got != tc.want {
				t.Fatalf("%s %s: %s (%v), want %s", tc.qname, dns.TypeToString[tc.qtype], got, err, tc.want)
			}
			if e != nil {
				if e.Reason == "" || e.Name != Fqdn(tc.qname) || e.Type != tc.qtype {
					t.Errorf("error without reason or question: %+v", e)
				}
				if tc.ede != 0 && e.EDE != tc.ede {
					t.Errorf("EDE %d, want %d: %v", e.EDE, tc.ede, err)
				}
				return
			}
			if a.NXDomain != tc.nx || (len(a.Records) == 0) != tc.empty || len(a.CNAMEs) != tc.cnames {
				t.Errorf("nx=%v records=%v cnames=%v, want nx=%v empty=%v cnames=%d", a.NXDomain, a.Records, a.CNAMEs, tc.nx, tc.empty, tc.cnames)
			}
			if tc.check != nil {
				tc.check(t, v, a)
			}
		})
	}
}

func TestValidatingVerdicts(t *testing.T) {
	t.Parallel()
	w := twCraftedWorld(t)
	twRunCases(t, w, []twCase{
		{name: "secure chain", qtype: dns.TypeMX, qname: "example.test", want: "secure"},
		{name: "secure TLSA", qtype: dns.TypeTLSA, qname: "_25._tcp.mail.example.test", want: "secure"},
		{name: "algorithm 5", qtype: dns.TypeMX, qname: "alg5.test", want: "secure"},
		{name: "algorithm 7", qtype: dns.TypeMX, qname: "alg7.test", want: "secure"},
		{name: "algorithm 8", qtype: dns.TypeMX, qname: "alg8.test", want: "secure"},
		{name: "algorithm 10", qtype: dns.TypeMX, qname: "alg10.test", want: "secure"},
		{name: "algorithm 13", qtype: dns.TypeMX, qname: "alg13.test", want: "secure"},
		{name: "algorithm 14", qtype: dns.TypeMX, qname: "alg14.test", want: "secure"},
		{name: "algorithm 15", qtype: dns.TypeMX, qname: "alg15.test", want: "secure"},
		{name: "algorithm 16 unsupported", qtype: dns.TypeMX, qname: "alg16.test", want: "insecure"},
		{name: "RSA key below 1024 bits", qtype: dns.TypeMX, qname: "small.test", want: "insecure"},
		{name: "expired RRSIG", qtype: dns.TypeMX, qname: "expired.test", want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired},
		{name: "future RRSIG", qtype: dns.TypeMX, qname: "future.test", want: "bogus", ede: dns.ExtendedErrorCodeSignatureNotYetValid},
		{name: "wrong DS digest", qtype: dns.TypeMX, qname: "baddigest.test", want: "bogus", ede: dns.ExtendedErrorCodeDNSKEYMissing},
		{name: "DS with unsigned child", qtype: dns.TypeMX, qname: "nosig.test", want: "bogus", ede: dns.ExtendedErrorCodeDNSKEYMissing},
		{name: "unknown DS algorithm", qtype: dns.TypeMX, qname: "unknownalg.test", want: "insecure"},
		{name: "unknown DS digest", qtype: dns.TypeMX, qname: "unknowndigest.test", want: "insecure"},
		{name: "revoked KSK", qtype: dns.TypeMX, qname: "revoked.test", want: "bogus", ede: dns.ExtendedErrorCodeDNSBogus},
		{name: "island without DS", qtype: dns.TypeMX, qname: "island.test", want: "insecure"},
		{name: "opt-out unsigned delegation", qtype: dns.TypeMX, qname: "unsigned.test", want: "insecure"},
		{name: "opt-out DS denial", qtype: dns.TypeDS, qname: "unsigned.test", want: "insecure", empty: true},
		{name: "signed DS", qtype: dns.TypeDS, qname: "example.test", want: "secure"},
		{name: "CNAME signed to unsigned", qtype: dns.TypeA, qname: "out.example.test", want: "insecure", cnames: 1},
		{name: "CNAME unsigned to signed", qtype: dns.TypeA, qname: "back.unsigned.test", want: "insecure", cnames: 1},
		{name: "CNAME into a bogus zone", qtype: dns.TypeA, qname: "bad.example.test", want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired},
		{name: "CNAME within a zone", qtype: dns.TypeA, qname: "www.example.test", want: "secure", cnames: 1},
		{name: "CNAME loop", qtype: dns.TypeA, qname: "loop1.example.test", want: KindLoop.String()},
		{name: "CNAME chain too long", qtype: dns.TypeA, qname: "c0.example.test", want: KindLoop.String()},
		{name: "DNAME", qtype: dns.TypeA, qname: "mail.sub.nsec.test", want: "secure", cnames: 1},
		{name: "DNAME to NXDOMAIN", qtype: dns.TypeA, qname: "nosuch.sub.nsec.test", want: "secure", cnames: 1, nx: true, empty: true},
		{name: "wildcard NSEC3", qtype: dns.TypeMX, qname: "foo.wild.example.test", want: "secure"},
		{name: "wildcard NSEC two labels", qtype: dns.TypeA, qname: "a.b.wild.nsec.test", want: "secure"},
		{name: "wildcard NODATA NSEC", qtype: dns.TypeTXT, qname: "foo.wild.nsec.test", want: "secure", empty: true},
		{name: "wildcard NODATA NSEC3", qtype: dns.TypeTXT, qname: "foo.wild.example.test", want: "secure", empty: true},
		{name: "NXDOMAIN NSEC", qtype: dns.TypeA, qname: "nosuch.nsec.test", want: "secure", nx: true, empty: true},
		{name: "NXDOMAIN NSEC3", qtype: dns.TypeA, qname: "nosuch.example.test", want: "secure", nx: true, empty: true},
		{name: "NXDOMAIN deep NSEC3", qtype: dns.TypeTLSA, qname: "_25._tcp.a.b.c.nosuch.example.test", want: "secure", nx: true, empty: true},
		{name: "NODATA NSEC", qtype: dns.TypeTXT, qname: "mail.nsec.test", want: "secure", empty: true},
		{name: "NODATA NSEC3", qtype: dns.TypeTXT, qname: "mail.example.test", want: "secure", empty: true},
		{name: "empty non-terminal NSEC", qtype: dns.TypeA, qname: "ent.nsec.test", want: "secure", empty: true},
		{name: "empty non-terminal NSEC3", qtype: dns.TypeA, qname: "ent.example.test", want: "secure", empty: true},
		{name: "NXDOMAIN in an opt-out span", qtype: dns.TypeA, qname: "nosuch.test", want: "insecure", nx: true, empty: true},
		{name: "NSEC3 iterations 200: data", qtype: dns.TypeMX, qname: "iter200.test", want: "secure"},
		{name: "NSEC3 iterations 200: denial", qtype: dns.TypeA, qname: "nosuch.iter200.test", want: "insecure", nx: true, empty: true},
		{name: "unsigned zone NXDOMAIN", qtype: dns.TypeA, qname: "nosuch.unsigned.test", want: "insecure", nx: true, empty: true},
		{name: "insecure delegation below an NSEC zone", qtype: dns.TypeA, qname: "child.nsec.test", want: "insecure"},
		{name: "root", qtype: dns.TypeSOA, qname: ".", want: "secure"},
		{
			name: "TTL capped by signature expiration", qtype: dns.TypeMX, qname: "soon.test", want: "secure",
			check: func(t *testing.T, _ *Validating, a *Answer) {
				if a.TTL > 100*time.Second || a.Records[0].Header().Ttl > 100 {
					t.Errorf("TTL %v beyond the signature's expiration in 100 s", a.TTL)
				}
			},
		},
		{
			name: "TTL capped by the original TTL", qtype: dns.TypeA, qname: "long.nsec.test", want: "secure",
			tamper: func(_ *twWorld, _, r *dns.Msg) {
				for _, rr := range r.Answer {
					rr.Header().Ttl = 99999
				}
			},
			check: func(t *testing.T, _ *Validating, a *Answer) {
				if a.TTL != 60*time.Second || a.Records[0].Header().Ttl != 60 {
					t.Errorf("TTL %v, want the RRSIG's original TTL 60 s", a.TTL)
				}
			},
		},
		{
			name: "answer names lowercase", qtype: dns.TypeA, qname: "WWW.Example.TEST.", want: "secure", cnames: 1,
			check: func(t *testing.T, _ *Validating, a *Answer) {
				if a.Name != "www.example.test." || a.CNAMEs[0] != "mail.example.test." || a.Records[0].Header().Name != "mail.example.test." {
					t.Errorf("names %s %v %s", a.Name, a.CNAMEs, a.Records[0].Header().Name)
				}
			},
		},
	})
}

func TestValidatingTampered(t *testing.T) {
	t.Parallel()
	w := twCraftedWorld(t)
	twRunCases(t, w, []twCase{
		{
			name: "stripped signatures", qtype: dns.TypeMX, qname: "example.test", want: "bogus", ede: dns.ExtendedErrorCodeRRSIGsMissing,
			tamper: func(_ *twWorld, _, r *dns.Msg) { r.Answer = twRemoveSigs(r.Answer, 0) },
		},
		{
			name: "stripped denial", qtype: dns.TypeA, qname: "nosuch.nsec.test", want: "bogus", ede: dns.ExtendedErrorCodeNSECMissing,
			tamper: func(_ *twWorld, _, r *dns.Msg) { r.Ns = twRemoveSigs(r.Ns, 0) },
		},
		{
			name: "signer outside the owner's tree", qtype: dns.TypeA, qname: "mail.example.test", want: "bogus",
			tamper: func(w *twWorld, _, r *dns.Msg) {
				// A genuine signature by another zone's key, over the
				// same data.
				other := w.zones["alg13.test."]
				var set []dns.RR
				for _, rr := range r.Answer {
					if rr.Header().Rrtype == dns.TypeA {
						set = append(set, rr)
					}
				}
				r.Answer = append(twRemoveSigs(r.Answer, 0), w.signWith(set, other.zsk, other.name, other.cfg))
			},
		},
		{
			name: "signer a sibling with a common suffix", qtype: dns.TypeA, qname: "mail.alg13.test", want: "bogus",
			tamper: func(_ *twWorld, _, r *dns.Msg) {
				for _, rr := range r.Answer {
					if s, ok := rr.(*dns.RRSIG); ok {
						s.SignerName = "g13.test."
					}
				}
			},
		},
		{
			name: "one bad and one good RRSIG", qtype: dns.TypeMX, qname: "alg13.test", want: "secure",
			tamper: func(_ *twWorld, _, r *dns.Msg) {
				r.Answer = append([]dns.RR{twRandomSig(twFirstSig(r.Answer))}, r.Answer...)
			},
		},
		{
			name: "wildcard without proof", qtype: dns.TypeMX, qname: "foo.wild.example.test", want: "bogus", ede: dns.ExtendedErrorCodeNSECMissing,
			tamper: func(_ *twWorld, _, r *dns.Msg) { r.Ns = nil },
		},
		{
			name: "wildcard proof from NSEC zone removed", qtype: dns.TypeA, qname: "x.wild.nsec.test", want: "bogus", ede: dns.ExtendedErrorCodeNSECMissing,
			tamper: func(_ *twWorld, _, r *dns.Msg) { r.Ns = nil },
		},
		{
			name: "fake wildcard expansion (Labels lowered)", qtype: dns.TypeA, qname: "mail.nsec.test", want: "bogus",
			tamper: func(_ *twWorld, _, r *dns.Msg) { twFirstSig(r.Answer).Labels-- },
		},
		{
			name: "parent-side NSEC denies a name below the delegation", qtype: dns.TypeA, qname: "x.child.nsec.test", want: "bogus",
			tamper: func(w *twWorld, _, r *dns.Msg) {
				z := w.zones["nsec.test."]
				r.Rcode, r.Answer = dns.RcodeNameError, nil
				r.Ns = append(z.soa(), z.nsecFor("child.nsec.test.")...)
			},
		},
		{
			name: "DNAME with a forged synthesis", qtype: dns.TypeA, qname: "mail.sub.nsec.test", want: "bogus",
			tamper: func(_ *twWorld, _, r *dns.Msg) {
				for _, rr := range r.Answer {
					if c, ok := rr.(*dns.CNAME); ok {
						c.Target = "mail.alg13.test."
					}
				}
			},
		},
		{
			name: "NODATA replaced by NXDOMAIN", qtype: dns.TypeTXT, qname: "mail.nsec.test", want: "bogus",
			tamper: func(_ *twWorld, _, r *dns.Msg) { r.Rcode = dns.RcodeNameError },
		},
		{
			name: "KeyTrap: key tag shared by 20 keys", qtype: dns.TypeMX, qname: "keytrap.test", want: "bogus",
			tamper: func(_ *twWorld, _, r *dns.Msg) { r.Answer = twFlood(r.Answer, 100, 4242) },
			check:  nil,
		},
		{
			name: "KeyTrap: 100 signatures over 4 colliding keys", qtype: dns.TypeMX, qname: "keytrap4.test", want: "bogus",
			tamper: func(_ *twWorld, _, r *dns.Msg) { r.Answer = twFlood(r.Answer, 100, 4242) },
		},
	})
}

// twFlood replaces the RRSIGs of section with n forged ones naming key tag
// tag (algorithm 8).
func twFlood(section []dns.RR, n int, tag uint16) []dns.RR {
	sig := twFirstSig(section)
	out := twRemoveSigs(section, 0)
	for range n {
		c := twRandomSig(sig)
		c.KeyTag, c.Algorithm = tag, dns.RSASHA256
		out = append(out, c)
	}
	return out
}

// TestValidatingKeyTrapBounded: a flood is Bogus after a bounded number of
// verifications, whatever its size.
func TestValidatingKeyTrapBounded(t *testing.T) {
	t.Parallel()
	w := twNewWorld(t)
	w.zone("test.", twCfg{signing: twNSEC})
	w.zone("trap.test.", twCfg{signing: twNSEC, extraKeys: twCollidingKeys(4, 4242)}, twLeaf...)
	w.seal()
	for _, n := range []int{10, 300} { // 300 forged RRSIGs fill a 64 KiB TCP message
		t.Run(fmt.Sprint(n, " signatures"), func(t *testing.T) {
			t.Parallel()
			s := w.serve(t, func(q, r *dns.Msg) {
				if q.Question[0].Name == "trap.test." && q.Question[0].Qtype == dns.TypeMX {
					r.Answer = twFlood(r.Answer, n, 4242)
				}
			})
			v := w.validator(s)
			// Warm the keys first, so the count is the flood's alone.
			if _, err := v.Lookup(context.Background(), "mail.trap.test", dns.TypeA); err != nil {
				t.Fatal(err)
			}
			before := v.Stats().Verifications
			_, err := v.Lookup(context.Background(), "trap.test", dns.TypeMX)
			if got, _ := twVerdict(nil, err); got != "bogus" {
				t.Fatalf("verdict %s (%v)", got, err)
			}
			// MaxSignatures (8) RRSIGs, each against MaxKeysPerTag (4) keys.
			if n := v.Stats().Verifications - before; n > 8*4 {
				t.Errorf("%d verifications for the flood, want at most 32", n)
			}
		})
	}
}

// TestValidatingRootAnchors: a root with two KSKs, the DNSKEY RRset signed
// by one of them; either anchor validates it, the other alone does not.
func TestValidatingRootAnchors(t *testing.T) {
	t.Parallel()
	for signer := range 2 {
		w := &twWorld{t: t, zones: map[string]*twZone{}}
		w.zone(".", twCfg{signing: twNSEC, ksks: 2, signWith: signer})
		w.zone("test.", twCfg{signing: twNSEC}, "@ MX 10 mail")
		w.seal()
		s := w.serve(t, nil)
		for _, tc := range []struct {
			name    string
			anchors []*dns.DS
			want    string
		}{
			{"both anchors", w.anchors, "secure"},
			{"signing key's anchor", w.anchors[signer : signer+1], "secure"},
			{"other key's anchor", w.anchors[1-signer : 2-signer], "bogus"},
			{"anchor with an unsupported digest", []*dns.DS{{Hdr: w.anchors[0].Hdr, KeyTag: 1, Algorithm: 8, DigestType: 200, Digest: "00"}}, KindIndeterminate.String()},
		} {
			t.Run(fmt.Sprintf("signed by key %d, %s", signer, tc.name), func(t *testing.T) {
				v := &Validating{Servers: []string{s.addr}, Anchors: tc.anchors}
				got, _ := twVerdict(v.Lookup(context.Background(), "test", dns.TypeMX))
				if got != tc.want {
					t.Errorf("verdict %s, want %s", got, tc.want)
				}
			})
		}
	}
}

// TestValidatingLimits: each work bound ends a lookup as Bogus.
func TestValidatingLimits(t *testing.T) {
	t.Parallel()
	w := twNewWorld(t)
	w.zone("test.", twCfg{signing: twNSEC3})
	w.zone("example.test.", twCfg{signing: twNSEC3}, twLeaf...)
	w.seal()
	s := w.serve(t, nil)
	for _, tc := range []struct {
		name  string
		set   func(v *Validating)
		qname string
	}{
		{"queries", func(v *Validating) { v.MaxQueries = 2 }, "example.test"},
		{"verifications", func(v *Validating) { v.MaxVerifications = 2 }, "example.test"},
		{"NSEC3 hashes", func(v *Validating) { v.MaxNSEC3Hashes = 3 }, "a.b.c.d.nosuch.example.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := w.validator(s)
			tc.set(v)
			_, err := v.Lookup(context.Background(), tc.qname, dns.TypeMX)
			if got, _ := twVerdict(nil, err); got != "bogus" {
				t.Fatalf("verdict %s (%v), want bogus", got, err)
			}
		})
	}
}

// TestValidatingBadInput: questions that cannot be validated are refused
// before any query.
func TestValidatingBadInput(t *testing.T) {
	t.Parallel()
	v := &Validating{Servers: []string{"127.0.0.1:1"}}
	for _, tc := range []struct {
		name  string
		qtype uint16
	}{
		{"example.test", dns.TypeANY},
		{"example.test", dns.TypeRRSIG},
		{"a..b", dns.TypeA},
		{string(make([]byte, 300)), dns.TypeA},
	} {
		_, err := v.Lookup(context.Background(), tc.name, tc.qtype)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindMalformed {
			t.Errorf("%q %d: %v, want KindMalformed", tc.name, tc.qtype, err)
		}
	}
	if s := v.Stats(); s.Queries != 0 {
		t.Errorf("%d queries sent", s.Queries)
	}
}

// TestValidatingCheck: Check names an upstream that hides DNSKEYs or is
// unreachable.
func TestValidatingCheck(t *testing.T) {
	t.Parallel()
	w := twNewWorld(t)
	w.seal()
	good := w.serve(t, nil)
	noKeys := w.serve(t, func(q, r *dns.Msg) { r.Answer = nil })
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	v := &Validating{Servers: []string{good.addr, noKeys.addr, dead}, Anchors: w.anchors, Timeout: time.Second}
	err = v.Check(context.Background())
	kinds := map[string]CheckKind{}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("Check = %v, want joined errors", err)
	}
	for _, e := range joined.Unwrap() {
		var ce *CheckError
		if !errors.As(e, &ce) {
			t.Fatalf("untyped %v", e)
		}
		kinds[ce.Server] = ce.Kind
	}
	want := map[string]CheckKind{noKeys.addr: CheckNoDNSKEY, dead: CheckUnreachable}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("Check kinds %v, want %v", kinds, want)
	}
}
