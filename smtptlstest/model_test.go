package smtptlstest_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

// TestValidatingFront checks the CD=0 path: AD for secure answers, no AD
// for insecure ones, SERVFAIL with an Extended DNS Error for bogus ones;
// and that CD=1 returns the data of a bogus zone.
func TestValidatingFront(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	signed := smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}
	add := func(name string, cfg smtptlstest.ZoneConfig) *smtptlstest.Zone {
		z := w.AddZone(name, cfg)
		z.MustAdd("www A 192.0.2.80", "txt TXT hello")
		return z
	}
	add("secure.test", signed)
	add("nsec.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, Algorithm: dns.RSASHA256})
	add("unsigned.test", smtptlstest.ZoneConfig{})
	add("island.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, NoDS: true})
	add("signed.unsigned.test", signed) // below an unsigned zone: insecure
	add("wrongds.test", signed).SetFault(smtptlstest.FaultWrongDS)
	add("expired.test", signed).SetFault(smtptlstest.FaultExpiredSigs)
	add("future.test", signed).SetFault(smtptlstest.FaultFutureSigs)
	add("badsig.test", signed).SetFault(smtptlstest.FaultBadSignature)
	add("stripped.test", signed).SetFault(smtptlstest.FaultStripRRSIGs)
	add("below.badsig.test", signed) // below a bogus zone: bogus
	add("iter.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3, NSEC3Iterations: 200})
	// DS in the parent, but the child is unsigned.
	add("dsnokey.test", smtptlstest.ZoneConfig{})
	w.Zone("test").MustAdd("dsnokey DS 12345 13 2 " + "aa" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab")
	// Only a DS with an algorithm no validator knows: insecure (RFC 4035
	// section 5.2).
	unk := add("unknownalg.test", signed)
	w.Zone("test").Remove("unknownalg", dns.TypeDS)
	ds := unk.DS()
	ds.Algorithm = 253
	if err := w.Zone("test").AddRR(ds); err != nil {
		t.Fatal(err)
	}
	// Name faults: one RRset of a secure zone.
	w.SetFault("www.secure.test", dns.TypeA, smtptlstest.FaultBadSignature)
	w.SetFault("nodata.secure.test", dns.TypeTXT, smtptlstest.FaultStripRRSIGs)
	w.Zone("secure.test").MustAdd(
		"good A 192.0.2.81",
		"nodata A 192.0.2.82",
		"to-secure CNAME txt.nsec.test.",
		"to-unsigned CNAME txt.unsigned.test.",
		"to-bogus CNAME txt.badsig.test.",
		"to-nx CNAME nothing.secure.test.",
		"*.wild TXT wild",
	)

	const (
		secure = iota
		insecure
		bogus
	)
	tests := []struct {
		name  string
		qname string
		qtype uint16
		want  int
		rcode int    // for secure and insecure
		ede   uint16 // for bogus
	}{
		{"secure NSEC3 zone", "txt.secure.test", dns.TypeTXT, secure, dns.RcodeSuccess, 0},
		{"secure NSEC RSA zone", "txt.nsec.test", dns.TypeTXT, secure, dns.RcodeSuccess, 0},
		{"secure NXDOMAIN", "nothing.secure.test", dns.TypeA, secure, dns.RcodeNameError, 0},
		{"secure NODATA", "txt.secure.test", dns.TypeMX, secure, dns.RcodeSuccess, 0},
		{"secure wildcard", "x.wild.secure.test", dns.TypeTXT, secure, dns.RcodeSuccess, 0},
		{"secure DS", "secure.test", dns.TypeDS, secure, dns.RcodeSuccess, 0},
		{"secure DS of a wrong-DS zone", "wrongds.test", dns.TypeDS, secure, dns.RcodeSuccess, 0},
		{"secure insecure-delegation proof", "unsigned.test", dns.TypeDS, insecure, dns.RcodeSuccess, 0},
		{"unsigned zone", "txt.unsigned.test", dns.TypeTXT, insecure, dns.RcodeSuccess, 0},
		{"unsigned NXDOMAIN", "nothing.unsigned.test", dns.TypeTXT, insecure, dns.RcodeNameError, 0},
		{"island", "txt.island.test", dns.TypeTXT, insecure, dns.RcodeSuccess, 0},
		{"signed below unsigned", "txt.signed.unsigned.test", dns.TypeTXT, insecure, dns.RcodeSuccess, 0},
		{"unknown DS algorithm", "txt.unknownalg.test", dns.TypeTXT, insecure, dns.RcodeSuccess, 0},
		{"opt-out NXDOMAIN in the TLD", "nothing.test", dns.TypeA, insecure, dns.RcodeNameError, 0},
		{"200 NSEC3 iterations: denial", "nothing.iter.test", dns.TypeA, insecure, dns.RcodeNameError, 0},
		{"200 NSEC3 iterations: answer", "txt.iter.test", dns.TypeTXT, secure, dns.RcodeSuccess, 0},
		{"wrong DS", "txt.wrongds.test", dns.TypeTXT, bogus, 0, dns.ExtendedErrorCodeDNSKEYMissing},
		{"DS without DNSKEY", "txt.dsnokey.test", dns.TypeTXT, bogus, 0, dns.ExtendedErrorCodeDNSKEYMissing},
		{"expired", "txt.expired.test", dns.TypeTXT, bogus, 0, dns.ExtendedErrorCodeSignatureExpired},
		{"future", "txt.future.test", dns.TypeTXT, bogus, 0, dns.ExtendedErrorCodeSignatureNotYetValid},
		{"bad signature", "txt.badsig.test", dns.TypeTXT, bogus, 0, dns.ExtendedErrorCodeDNSBogus},
		{"stripped", "txt.stripped.test", dns.TypeTXT, bogus, 0, dns.ExtendedErrorCodeRRSIGsMissing},
		{"below bogus", "txt.below.badsig.test", dns.TypeTXT, bogus, 0, dns.ExtendedErrorCodeDNSBogus},
		{"bogus RRset", "www.secure.test", dns.TypeA, bogus, 0, dns.ExtendedErrorCodeDNSBogus},
		{"other RRset of a bogus name", "good.secure.test", dns.TypeA, secure, dns.RcodeSuccess, 0},
		{"bogus denial", "nodata.secure.test", dns.TypeTXT, bogus, 0, dns.ExtendedErrorCodeRRSIGsMissing},
		{"CNAME secure to secure", "to-secure.secure.test", dns.TypeTXT, secure, dns.RcodeSuccess, 0},
		{"CNAME secure to unsigned", "to-unsigned.secure.test", dns.TypeTXT, insecure, dns.RcodeSuccess, 0},
		{"CNAME secure to bogus", "to-bogus.secure.test", dns.TypeTXT, bogus, 0, dns.ExtendedErrorCodeDNSBogus},
		{"CNAME to NXDOMAIN", "to-nx.secure.test", dns.TypeTXT, secure, dns.RcodeNameError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := exchange(t, w, q{name: tt.qname, qtype: tt.qtype, do: true})
			switch tt.want {
			case bogus:
				if r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 0 {
					t.Fatalf("want SERVFAIL, got %v", r)
				}
				if got := ede(r); got != int(tt.ede) {
					t.Errorf("EDE %d, want %d", got, tt.ede)
				}
				if r.AuthenticatedData {
					t.Errorf("AD on SERVFAIL")
				}
				// CD=1: the data, as is, for a validator to judge.
				cd := exchange(t, w, q{name: tt.qname, qtype: tt.qtype, do: true, cd: true})
				if cd.Rcode == dns.RcodeServerFailure || !cd.CheckingDisabled || cd.AuthenticatedData {
					t.Errorf("CD=1: %v", cd)
				}
			default:
				if r.Rcode != tt.rcode {
					t.Fatalf("rcode %s, want %s: %v", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode], r)
				}
				if r.AuthenticatedData != (tt.want == secure) {
					t.Errorf("AD = %v, want %v: %v", r.AuthenticatedData, tt.want == secure, r)
				}
			}
		})
	}
}

// TestADRequiresDOorAD checks RFC 6840 section 5.7 and that CD=1 never
// gets AD.
func TestADRequiresDOorAD(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("@ MX 0 mx")
	for _, tt := range []struct {
		name string
		x    q
		ad   bool
	}{
		{"plain", q{}, false},
		{"EDNS without DO", q{edns: true}, false},
		{"AD=1", q{ad: true}, true},
		{"DO=1", q{do: true}, true},
		{"CD=1 DO=1", q{do: true, cd: true}, false},
		{"UDP DO=1", q{do: true, udp: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := tt.x
			x.name, x.qtype = "example.test", dns.TypeMX
			r := exchange(t, w, x)
			if r.AuthenticatedData != tt.ad || !r.RecursionAvailable || r.Authoritative {
				t.Errorf("AD %v (want %v), RA %v, AA %v", r.AuthenticatedData, tt.ad, r.RecursionAvailable, r.Authoritative)
			}
			if r.CheckingDisabled != x.cd {
				t.Errorf("CD not echoed")
			}
		})
	}
}
