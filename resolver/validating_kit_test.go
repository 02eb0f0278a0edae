package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// Tests of Validating against the project's test kit: a signed hierarchy
// on loopback, asked over the wire with CD=1 like any recursive resolver.

const kitTLSA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func kitLeafData(z *smtptlstest.Zone) {
	z.MustAdd(
		"@ MX 10 mail",
		"mail A 192.0.2.1",
		"mail AAAA 2001:db8::1",
		"_25._tcp.mail TLSA 3 1 1 "+kitTLSA,
		"www CNAME mail",
		"out CNAME host.unsigned.test.",
		"*.wild MX 10 mail",
		"*.wild A 192.0.2.2",
		"x.ent A 192.0.2.3",
	)
}

// kitWorld builds the kitVerdict world: a leaf per algorithm and per fault.
func kitWorld(t testing.TB) *smtptlstest.World {
	w := smtptlstest.New(t)
	tld := w.AddZone("test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3OptOut})
	kitLeafData(w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}))
	// The kit's front does not synthesize DNAMEs; they are tested on the
	// package's own world and in the interop suite.
	w.Zone("example.test.").MustAdd("bad CNAME mail.expired.test.")
	kitLeafData(w.AddZone("nsec.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}))
	for _, alg := range []uint8{5, 7, 8, 10, 14, 15} {
		kitLeafData(w.AddZone(fmt.Sprintf("alg%d.test.", alg), smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, Algorithm: alg}))
	}
	for name, f := range map[string]smtptlstest.Fault{
		"expired.test.":  smtptlstest.FaultExpiredSigs,
		"future.test.":   smtptlstest.FaultFutureSigs,
		"badsig.test.":   smtptlstest.FaultBadSignature,
		"wrongds.test.":  smtptlstest.FaultWrongDS,
		"stripped.test.": smtptlstest.FaultStripRRSIGs,
	} {
		z := w.AddZone(name, smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
		kitLeafData(z)
		z.SetFault(f)
	}
	kitLeafData(w.AddZone("iter200.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3, NSEC3Iterations: 200, NSEC3Salt: "abcd"}))
	kitLeafData(w.AddZone("island.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, NoDS: true}))
	w.AddZone("unsigned.test.", smtptlstest.ZoneConfig{}).MustAdd(
		"@ MX 10 host", "host A 192.0.2.3", "_25._tcp.host TLSA 3 1 1 "+kitTLSA, "back CNAME mail.example.test.")
	// A DS for a zone served unsigned, and DS sets naming only an unknown
	// algorithm or digest type.
	kitLeafData(w.AddZone("nosig.test.", smtptlstest.ZoneConfig{}))
	tld.MustAdd("nosig DS 12345 13 2 " + strings.Repeat("ab", 32))
	for _, c := range []struct {
		name string
		edit func(*dns.DS)
	}{
		{"unknownalg", func(d *dns.DS) { d.Algorithm = 200 }},
		{"unknowndigest", func(d *dns.DS) { d.DigestType = 200 }},
	} {
		z := w.AddZone(c.name+".test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, NoDS: true})
		kitLeafData(z)
		ds := z.DS()
		c.edit(ds)
		if err := tld.AddRR(ds); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func kitValidator(w *smtptlstest.World) *resolver.Validating {
	return &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors(), Timeout: 2 * time.Second}
}

// kitVerdict is what a lookup came to: "secure", "insecure" or "bogus".
func kitVerdict(a *resolver.Answer, err error) string {
	if err != nil {
		var e *resolver.Error
		if errors.As(err, &e) && e.Kind == resolver.KindBogus {
			return "bogus"
		}
		return "error: " + err.Error()
	}
	return a.Security.String()
}

func TestValidatingKitVerdicts(t *testing.T) {
	t.Parallel()
	w := kitWorld(t)
	cases := []struct {
		qtype  uint16
		name   string
		want   string
		nx     bool
		empty  bool   // NODATA or NXDOMAIN
		cnames int    // links followed
		ede    uint16 // for bogus
	}{
		{qtype: dns.TypeMX, name: "example.test", want: "secure"},
		{qtype: dns.TypeA, name: "mail.example.test", want: "secure"},
		{qtype: dns.TypeTLSA, name: "_25._tcp.mail.example.test", want: "secure"},
		{qtype: dns.TypeA, name: "WWW.Example.Test", want: "secure", cnames: 1},
		{qtype: dns.TypeTLSA, name: "_25._tcp.nosuch.example.test", want: "secure", nx: true, empty: true},
		{qtype: dns.TypeTXT, name: "mail.example.test", want: "secure", empty: true},
		{qtype: dns.TypeA, name: "ent.example.test", want: "secure", empty: true},
		{qtype: dns.TypeA, name: "a.wild.example.test", want: "secure"},
		{qtype: dns.TypeA, name: "a.b.wild.example.test", want: "secure"},
		{qtype: dns.TypeTXT, name: "a.wild.example.test", want: "secure", empty: true},
		{qtype: dns.TypeA, name: "out.example.test", want: "insecure", cnames: 1},
		{qtype: dns.TypeA, name: "back.unsigned.test", want: "insecure", cnames: 1},
		{qtype: dns.TypeA, name: "bad.example.test", want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired},
		{qtype: dns.TypeMX, name: "nsec.test", want: "secure"},
		{qtype: dns.TypeA, name: "nosuch.nsec.test", want: "secure", nx: true, empty: true},
		{qtype: dns.TypeTXT, name: "mail.nsec.test", want: "secure", empty: true},
		{qtype: dns.TypeA, name: "ent.nsec.test", want: "secure", empty: true},
		{qtype: dns.TypeA, name: "a.wild.nsec.test", want: "secure"},
		{qtype: dns.TypeTXT, name: "a.wild.nsec.test", want: "secure", empty: true},
		{qtype: dns.TypeMX, name: "alg5.test", want: "secure"},
		{qtype: dns.TypeMX, name: "alg7.test", want: "secure"},
		{qtype: dns.TypeMX, name: "alg8.test", want: "secure"},
		{qtype: dns.TypeMX, name: "alg10.test", want: "secure"},
		{qtype: dns.TypeMX, name: "alg14.test", want: "secure"},
		{qtype: dns.TypeMX, name: "alg15.test", want: "secure"},
		{qtype: dns.TypeMX, name: "expired.test", want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired},
		{qtype: dns.TypeMX, name: "future.test", want: "bogus", ede: dns.ExtendedErrorCodeSignatureNotYetValid},
		{qtype: dns.TypeMX, name: "badsig.test", want: "bogus", ede: dns.ExtendedErrorCodeDNSBogus},
		{qtype: dns.TypeMX, name: "wrongds.test", want: "bogus", ede: dns.ExtendedErrorCodeDNSKEYMissing},
		{qtype: dns.TypeMX, name: "stripped.test", want: "bogus", ede: dns.ExtendedErrorCodeRRSIGsMissing},
		{qtype: dns.TypeMX, name: "nosig.test", want: "bogus", ede: dns.ExtendedErrorCodeDNSKEYMissing},
		{qtype: dns.TypeMX, name: "unknownalg.test", want: "insecure"},
		{qtype: dns.TypeMX, name: "unknowndigest.test", want: "insecure"},
		{qtype: dns.TypeMX, name: "island.test", want: "insecure"},
		{qtype: dns.TypeMX, name: "iter200.test", want: "secure"},
		{qtype: dns.TypeA, name: "nosuch.iter200.test", want: "insecure", nx: true, empty: true},
		{qtype: dns.TypeMX, name: "unsigned.test", want: "insecure"},
		{qtype: dns.TypeTLSA, name: "_25._tcp.host.unsigned.test", want: "insecure"},
		{qtype: dns.TypeA, name: "nosuch.unsigned.test", want: "insecure", nx: true, empty: true},
		{qtype: dns.TypeDS, name: "unsigned.test", want: "insecure", empty: true}, // opt-out span
		{qtype: dns.TypeDS, name: "example.test", want: "secure"},
		{qtype: dns.TypeA, name: "nosuch.test", want: "insecure", nx: true, empty: true},
		{qtype: dns.TypeDNSKEY, name: "alg15.test", want: "secure"},
		{qtype: dns.TypeSOA, name: ".", want: "secure"},
	}
	v := kitValidator(w) // shared: concurrent lookups through one cache
	for _, tc := range cases {
		t.Run(dns.TypeToString[tc.qtype]+" "+tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := v.Lookup(context.Background(), tc.name, tc.qtype)
			if got := kitVerdict(a, err); got != tc.want {
				t.Fatalf("kitVerdict %s, want %s", got, tc.want)
			}
			if err != nil {
				var e *resolver.Error
				errors.As(err, &e)
				if tc.ede != 0 && e.EDE != tc.ede {
					t.Errorf("EDE %d, want %d (%v)", e.EDE, tc.ede, err)
				}
				if e.Name != resolver.Fqdn(tc.name) || e.Type != tc.qtype {
					t.Errorf("error names %s %d, want %s %d", e.Name, e.Type, resolver.Fqdn(tc.name), tc.qtype)
				}
				return
			}
			if a.NXDomain != tc.nx || (len(a.Records) == 0) != tc.empty || len(a.CNAMEs) != tc.cnames {
				t.Errorf("nx=%v records=%d cnames=%v, want nx=%v empty=%v cnames=%d", a.NXDomain, len(a.Records), a.CNAMEs, tc.nx, tc.empty, tc.cnames)
			}
			if a.Name != resolver.Fqdn(tc.name) || a.Type != tc.qtype {
				t.Errorf("answer for %s %d", a.Name, a.Type)
			}
			for _, rr := range a.Records {
				if rr.Header().Rrtype != tc.qtype || rr.Header().Name != a.Target() {
					t.Errorf("record %v does not answer %s at %s", rr, dns.TypeToString[tc.qtype], a.Target())
				}
			}
			if a.TTL <= 0 || a.TTL > 300*time.Second {
				t.Errorf("TTL %v", a.TTL)
			}
		})
	}
}

// TestValidatingKitRootAnchors: either of two anchors validates the root;
// anchors that do not match it make every answer Bogus, never Insecure.
func TestValidatingKitRootAnchors(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("@ MX 10 mail")
	iana := resolver.RootAnchors()
	world := w.Anchors()
	for _, tc := range []struct {
		name    string
		anchors []*dns.DS
		want    string
	}{
		{"world key first", append(append([]*dns.DS{}, world...), iana[1]), "secure"},
		{"world key second", append([]*dns.DS{iana[0]}, world...), "secure"},
		{"IANA anchors only", iana, "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: tc.anchors}
			if got := kitVerdict(v.Lookup(context.Background(), "example.test", dns.TypeMX)); got != tc.want {
				t.Errorf("kitVerdict %s, want %s", got, tc.want)
			}
		})
	}
}

// TestValidatingKitTransport: the wire exchange survives the kit's
// transport faults and reports the others as the right Kind.
func TestValidatingKitTransport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fault  smtptlstest.Fault
		at     string
		want   string
		kind   resolver.Kind
		cnames int
	}{
		{name: "truncated over UDP, complete over TCP", fault: smtptlstest.FaultTruncate, at: "mail.example.test", want: "secure"},
		{name: "spoofed replies first", fault: smtptlstest.FaultWrongID, at: "mail.example.test", want: "secure"},
		{name: "unchased CNAME chain", fault: smtptlstest.FaultPartialChain, at: "www.example.test", want: "secure", cnames: 1},
		{name: "SERVFAIL", fault: smtptlstest.FaultServFail, at: "mail.example.test", kind: resolver.KindServFail},
		{name: "no answer", fault: smtptlstest.FaultTimeout, at: "www.example.test", kind: resolver.KindTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := smtptlstest.New(t)
			kitLeafData(w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}))
			w.SetFault(tc.at, 0, tc.fault)
			v := kitValidator(w)
			if tc.kind == resolver.KindTimeout {
				v.Timeout, v.LookupTimeout = 300*time.Millisecond, 2*time.Second
			}
			a, err := v.Lookup(context.Background(), "www.example.test", dns.TypeA)
			if tc.kind != 0 {
				var e *resolver.Error
				if !errors.As(err, &e) || e.Kind != tc.kind {
					t.Fatalf("err = %v, want kind %v", err, tc.kind)
				}
				return
			}
			if got := kitVerdict(a, err); got != tc.want {
				t.Fatalf("kitVerdict %s, want %s", got, tc.want)
			}
			if len(a.CNAMEs) != 1 || len(a.Records) != 1 {
				t.Errorf("answer %+v", a)
			}
		})
	}
}

// TestValidatingKitFailover: a dead first server is skipped.
func TestValidatingKitFailover(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	kitLeafData(w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}))
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	v := &resolver.Validating{Servers: []string{dead, w.DNSAddr()}, Anchors: w.Anchors(), Timeout: 2 * time.Second}
	for range 3 { // rotation starts at different servers
		if got := kitVerdict(v.Lookup(context.Background(), "mail.example.test", dns.TypeA)); got != "secure" {
			t.Fatalf("kitVerdict %s", got)
		}
	}
}

// TestValidatingKitWarm: a warm lookup sends one query and verifies only
// its own answer's signature; concurrent cold lookups share one fetch per
// zone key set.
func TestValidatingKitWarm(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	kitLeafData(w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}))
	v := kitValidator(w)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := kitVerdict(v.Lookup(ctx, "example.test", dns.TypeMX)); got != "secure" {
				t.Errorf("cold kitVerdict %s", got)
			}
		}()
	}
	wg.Wait()
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{".", dns.TypeDNSKEY}, {"test.", dns.TypeDNSKEY}, {"example.test.", dns.TypeDNSKEY}, {"example.test.", dns.TypeDS}} {
		if n := w.QueryCountFor(q.name, q.qtype); n != 1 {
			t.Errorf("%s %s asked %d times by 16 concurrent cold lookups, want 1", q.name, dns.TypeToString[q.qtype], n)
		}
	}
	for _, tc := range []struct {
		name         string
		qtype        uint16
		verification uint64
	}{
		{"mail.example.test", dns.TypeA, 1},
		{"nosuch.example.test", dns.TypeA, 3}, // closest encloser, next closer, wildcard
		{"mail.example.test", dns.TypeTXT, 1},
		{"a.wild.example.test", dns.TypeA, 2}, // answer and next-closer proof
	} {
		before := v.Stats()
		if got := kitVerdict(v.Lookup(ctx, tc.name, tc.qtype)); got != "secure" {
			t.Fatalf("%s: %s", tc.name, got)
		}
		after := v.Stats()
		if q := after.Queries - before.Queries; q != 1 {
			t.Errorf("warm %s %s: %d queries, want 1", tc.name, dns.TypeToString[tc.qtype], q)
		}
		if n := after.Verifications - before.Verifications; n != tc.verification {
			t.Errorf("warm %s %s: %d verifications, want %d", tc.name, dns.TypeToString[tc.qtype], n, tc.verification)
		}
	}
}

// TestValidatingKitCheck: Check accepts the kit's front and names an
// upstream that strips signatures.
func TestValidatingKitCheck(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	v := kitValidator(w)
	if err := v.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	w.SetFault(".", dns.TypeDNSKEY, smtptlstest.FaultStripRRSIGs)
	err := v.Check(context.Background())
	var ce *resolver.CheckError
	if !errors.As(err, &ce) || ce.Kind != resolver.CheckNoRRSIG || ce.Server != w.DNSAddr() {
		t.Fatalf("Check = %v, want CheckNoRRSIG from %s", err, w.DNSAddr())
	}
	w.ClearFaults()
	v.Anchors = resolver.RootAnchors()
	if err := v.Check(context.Background()); !errors.As(err, &ce) || ce.Kind != resolver.CheckUntrusted {
		t.Fatalf("Check with foreign anchors = %v, want CheckUntrusted", err)
	}
}

// kitBenchWorld is the world of the benchmarks: an MX lookup through three
// zones (root, TLD with NSEC3 opt-out, NSEC3 leaf).
func kitBenchWorld(b *testing.B) *smtptlstest.World {
	w := smtptlstest.New(b)
	kitLeafData(w.AddZone("example.test.", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}))
	return w
}

func kitBenchLookups(b *testing.B, v func() *resolver.Validating, name string, qtype uint16) {
	ctx := context.Background()
	var verifs, queries uint64
	for b.Loop() {
		r := v()
		before := r.Stats()
		if got := kitVerdict(r.Lookup(ctx, name, qtype)); got != "secure" {
			b.Fatalf("kitVerdict %s", got)
		}
		after := r.Stats()
		verifs += after.Verifications - before.Verifications
		queries += after.Queries - before.Queries
	}
	b.ReportMetric(float64(verifs)/float64(b.N), "verifications/op")
	b.ReportMetric(float64(queries)/float64(b.N), "queries/op")
}

// BenchmarkValidatingCold validates from the root each time: DNSKEY and DS
// of every zone, then the answer.
func BenchmarkValidatingCold(b *testing.B) {
	w := kitBenchWorld(b)
	kitBenchLookups(b, func() *resolver.Validating { return kitValidator(w) }, "example.test", dns.TypeMX)
}

// BenchmarkValidatingWarm validates with the zones' keys cached: one
// query, one signature.
func BenchmarkValidatingWarm(b *testing.B) {
	w := kitBenchWorld(b)
	v := kitValidator(w)
	if _, err := v.Lookup(context.Background(), "example.test", dns.TypeMX); err != nil {
		b.Fatal(err)
	}
	kitBenchLookups(b, func() *resolver.Validating { return v }, "mail.example.test", dns.TypeA)
}

// BenchmarkValidatingWarmDenial is a warm NXDOMAIN through NSEC3.
func BenchmarkValidatingWarmDenial(b *testing.B) {
	w := kitBenchWorld(b)
	v := kitValidator(w)
	if _, err := v.Lookup(context.Background(), "example.test", dns.TypeMX); err != nil {
		b.Fatal(err)
	}
	kitBenchLookups(b, func() *resolver.Validating { return v }, "_25._tcp.nosuch.example.test", dns.TypeTLSA)
}

// BenchmarkValidatingColdRTT is the cold lookup with a 5 ms round trip to
// the upstream: the DS and DNSKEY fetches of the chain overlap, so it
// takes about two round trips rather than one per query.
func BenchmarkValidatingColdRTT(b *testing.B) {
	w := kitBenchWorld(b)
	w.SetDelay(5 * time.Millisecond)
	kitBenchLookups(b, func() *resolver.Validating { return kitValidator(w) }, "example.test", dns.TypeMX)
}
