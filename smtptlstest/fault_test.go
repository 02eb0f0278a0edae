package smtptlstest_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

func faultWorld(t *testing.T) *smtptlstest.World {
	w := smtptlstest.New(t)
	z := w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	z.MustAdd(
		"www A 192.0.2.1",
		"txt TXT hello",
		"a CNAME b",
		"b CNAME c.other.test.",
		"big TXT "+strings.Repeat(`"`+strings.Repeat("x", 250)+`" `, 8),
	)
	w.AddZone("other.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("c A 192.0.2.3")
	return w
}

func TestFaultServFail(t *testing.T) {
	t.Parallel()
	w := faultWorld(t)
	w.SetFault("www.example.test", dns.TypeA, smtptlstest.FaultServFail)
	for _, tt := range []struct {
		name  string
		x     q
		rcode int
	}{
		{"faulted question", q{name: "www.example.test", qtype: dns.TypeA}, dns.RcodeServerFailure},
		{"faulted question with CD=1", q{name: "www.example.test", qtype: dns.TypeA, do: true, cd: true}, dns.RcodeServerFailure},
		{"other type", q{name: "www.example.test", qtype: dns.TypeAAAA}, dns.RcodeSuccess},
		{"other name", q{name: "txt.example.test", qtype: dns.TypeTXT}, dns.RcodeSuccess},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r := exchange(t, w, tt.x); r.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
		})
	}
	// A faulted zone reached through a CNAME fails the chain.
	w.Zone("other.test").SetFault(smtptlstest.FaultServFail)
	if r := exchange(t, w, q{name: "a.example.test", qtype: dns.TypeA}); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("CNAME into a SERVFAIL zone: %v", r)
	}
	w.ClearFaults()
	if r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA}); r.Rcode != dns.RcodeSuccess {
		t.Errorf("after ClearFaults: %v", r)
	}
	if r := exchange(t, w, q{name: "a.example.test", qtype: dns.TypeA}); r.Rcode != dns.RcodeSuccess {
		t.Errorf("after ClearFaults, chain: %v", r)
	}
}

func TestFaultTimeout(t *testing.T) {
	t.Parallel()
	w := faultWorld(t)
	w.Zone("example.test").SetFault(smtptlstest.FaultTimeout)
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("www.example.test.", dns.TypeA)
			c := &dns.Client{Net: network, Timeout: 200 * time.Millisecond}
			_, _, err := c.Exchange(m, w.DNSAddr())
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("want a timeout, got %v", err)
			}
		})
	}
	// Other zones still answer.
	if r := exchange(t, w, q{name: "c.other.test", qtype: dns.TypeA}); r.Rcode != dns.RcodeSuccess {
		t.Errorf("other zone: %v", r)
	}
}

func TestFaultTruncate(t *testing.T) {
	t.Parallel()
	w := faultWorld(t)
	w.SetFault("www.example.test", 0, smtptlstest.FaultTruncate)
	r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA, udp: true, do: true})
	if !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("UDP: want TC=1 and no records: %v", r)
	}
	r = exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA, do: true})
	if r.Truncated || len(r.Answer) != 2 {
		t.Errorf("TCP: want the full answer: %v", r)
	}
}

// TestUDPSizeLimit checks EDNS0 buffer sizes and the 1232-byte cap.
func TestUDPSizeLimit(t *testing.T) {
	t.Parallel()
	w := faultWorld(t)
	for _, tt := range []struct {
		name string
		x    q
		tc   bool
	}{
		{"no EDNS: 512", q{udp: true}, true},
		{"EDNS 4096 is capped at 1232", q{udp: true, size: 4096}, true},
		{"EDNS 1232", q{udp: true, size: 1232, do: true}, true},
		{"TCP", q{do: true}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := tt.x
			x.name, x.qtype = "big.example.test", dns.TypeTXT
			r := exchange(t, w, x)
			if r.Truncated != tt.tc {
				t.Errorf("TC = %v, want %v", r.Truncated, tt.tc)
			}
			if r.Len() > 1232 && x.udp {
				t.Errorf("UDP answer of %d bytes", r.Len())
			}
			if !tt.tc && len(ofType(r.Answer, dns.TypeTXT)) != 1 {
				t.Errorf("answer: %v", r.Answer)
			}
		})
	}
	// Small answers fit.
	if r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA, udp: true}); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("small answer: %v", r)
	}
}

// TestFaultWrongID reads the datagrams the front sends with a raw socket.
func TestFaultWrongID(t *testing.T) {
	t.Parallel()
	w := faultWorld(t)
	w.SetFault("www.example.test", dns.TypeA, smtptlstest.FaultWrongID)
	c, err := net.Dial("udp", w.DNSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	wire, _ := m.Pack()
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	var got []*dns.Msg
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for len(got) < 3 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d replies: %v", len(got), err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if got[0].Id == m.Id {
		t.Errorf("first reply has the right ID")
	}
	if got[1].Id != m.Id || got[1].Question[0] == m.Question[0] {
		t.Errorf("second reply: want right ID, wrong question: %v", got[1])
	}
	if got[2].Id != m.Id || got[2].Question[0] != m.Question[0] || len(got[2].Answer) != 1 {
		t.Errorf("third reply is not the answer: %v", got[2])
	}
	// A client that checks IDs and questions gets the right answer.
	r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA, udp: true})
	if len(r.Answer) != 1 {
		t.Errorf("%v", r)
	}
}

func TestFaultSignatures(t *testing.T) {
	t.Parallel()
	w := faultWorld(t)
	key := func(t *testing.T) *dns.DNSKEY {
		for _, k := range keys(t, w, "example.test.") {
			if k.Flags == dns.ZONE {
				return k
			}
		}
		t.Fatal("no ZSK")
		return nil
	}
	now := time.Now()
	for _, tt := range []struct {
		fault smtptlstest.Fault
		check func(t *testing.T, sig *dns.RRSIG, set []dns.RR)
	}{
		{smtptlstest.FaultExpiredSigs, func(t *testing.T, sig *dns.RRSIG, set []dns.RR) {
			if sig.ValidityPeriod(now) || int64(sig.Expiration) > now.Unix() {
				t.Errorf("not expired: %v", sig)
			}
			if err := sig.Verify(key(t), set); err != nil {
				t.Errorf("the crypto should still verify: %v", err)
			}
		}},
		{smtptlstest.FaultFutureSigs, func(t *testing.T, sig *dns.RRSIG, set []dns.RR) {
			if sig.ValidityPeriod(now) || int64(sig.Inception) < now.Unix() {
				t.Errorf("not in the future: %v", sig)
			}
		}},
		{smtptlstest.FaultBadSignature, func(t *testing.T, sig *dns.RRSIG, set []dns.RR) {
			if !sig.ValidityPeriod(now) {
				t.Errorf("validity period should be fine")
			}
			if err := sig.Verify(key(t), set); err == nil {
				t.Errorf("bad signature verifies")
			}
		}},
	} {
		t.Run(tt.fault.String(), func(t *testing.T) {
			w.SetFault("www.example.test", dns.TypeA, tt.fault)
			defer w.SetFault("www.example.test", dns.TypeA, 0)
			r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA, do: true, cd: true})
			sigs := sigsFor(r.Answer, "www.example.test.", dns.TypeA)
			if len(sigs) != 1 {
				t.Fatalf("%v", r)
			}
			tt.check(t, sigs[0], rrset(r.Answer, "www.example.test.", dns.TypeA))
			// Other names keep good signatures.
			r = exchange(t, w, q{name: "txt.example.test", qtype: dns.TypeTXT, do: true, cd: true})
			if verifyRRsets(t, w, r.Answer) != 1 {
				t.Errorf("other name affected")
			}
		})
	}
	t.Run("strip-rrsigs", func(t *testing.T) {
		w.SetFault("www.example.test", 0, smtptlstest.FaultStripRRSIGs)
		defer w.SetFault("www.example.test", 0, 0)
		r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA, do: true, cd: true})
		if len(r.Answer) != 1 || len(ofType(r.Answer, dns.TypeRRSIG)) != 0 {
			t.Errorf("%v", r)
		}
		// A denial for the faulted name loses its RRSIGs too.
		r = exchange(t, w, q{name: "www.example.test", qtype: dns.TypeTXT, do: true, cd: true})
		if len(ofType(r.Ns, dns.TypeNSEC)) == 0 || len(ofType(r.Ns, dns.TypeRRSIG)) != 0 {
			t.Errorf("denial: %v", r)
		}
	})
}

func TestFaultWrongDS(t *testing.T) {
	t.Parallel()
	w := faultWorld(t)
	z := w.Zone("example.test")
	want := z.DS()
	get := func() *dns.DS {
		r := exchange(t, w, q{name: "example.test", qtype: dns.TypeDS, do: true, cd: true})
		ds := rrset(r.Answer, "example.test.", dns.TypeDS)
		if len(ds) != 1 || verifyRRsets(t, w, r.Answer) != 1 {
			t.Fatalf("DS not signed by the parent: %v", r)
		}
		return ds[0].(*dns.DS)
	}
	if got := get(); !strings.EqualFold(got.Digest, want.Digest) {
		t.Fatalf("DS %v, want %v", got, want)
	}
	z.SetFault(smtptlstest.FaultWrongDS)
	if got := get(); strings.EqualFold(got.Digest, want.Digest) || got.KeyTag != want.KeyTag {
		t.Errorf("DS not altered: %v", got)
	}
	if r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA}); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("CD=0 under a wrong DS: %v", r)
	}
	z.SetFault(0)
	w.SetFault("example.test", dns.TypeDS, smtptlstest.FaultWrongDS)
	if got := get(); strings.EqualFold(got.Digest, want.Digest) {
		t.Errorf("name fault: DS not altered")
	}
}

func TestFaultPartialChain(t *testing.T) {
	t.Parallel()
	w := faultWorld(t)
	r := exchange(t, w, q{name: "a.example.test", qtype: dns.TypeA, do: true})
	if len(ofType(r.Answer, dns.TypeCNAME)) != 2 || len(ofType(r.Answer, dns.TypeA)) != 1 || !r.AuthenticatedData {
		t.Fatalf("full chain: %v", r)
	}
	w.SetFault("a.example.test", dns.TypeA, smtptlstest.FaultPartialChain)
	r = exchange(t, w, q{name: "a.example.test", qtype: dns.TypeA, do: true})
	if len(r.Answer) != 2 || len(rrset(r.Answer, "a.example.test.", dns.TypeCNAME)) != 1 {
		t.Errorf("want only the first CNAME and its RRSIG: %v", r)
	}
}

func TestFaultDelay(t *testing.T) {
	t.Parallel()
	w := faultWorld(t)
	w.SetFaultDelay(150 * time.Millisecond)
	w.SetFault("www.example.test", dns.TypeA, smtptlstest.FaultDelay)
	timed := func(x q) time.Duration {
		start := time.Now()
		exchange(t, w, x)
		return time.Since(start)
	}
	if d := timed(q{name: "www.example.test", qtype: dns.TypeA}); d < 150*time.Millisecond {
		t.Errorf("faulted answer after %v", d)
	}
	w.SetDelay(100 * time.Millisecond)
	if d := timed(q{name: "txt.example.test", qtype: dns.TypeTXT, udp: true}); d < 100*time.Millisecond {
		t.Errorf("world delay: answer after %v", d)
	}
	if d := timed(q{name: "www.example.test", qtype: dns.TypeA}); d < 250*time.Millisecond {
		t.Errorf("both delays: answer after %v", d)
	}
}

func TestFaultString(t *testing.T) {
	t.Parallel()
	for f, want := range map[smtptlstest.Fault]string{
		0:                         "none",
		smtptlstest.FaultServFail: "servfail",
		smtptlstest.FaultTimeout | smtptlstest.FaultDelay: "timeout|delay",
		smtptlstest.Fault(1 << 30):                        "unknown",
	} {
		if got := f.String(); got != want {
			t.Errorf("%d: %q, want %q", uint32(f), got, want)
		}
	}
}
