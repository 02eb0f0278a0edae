package smtptlstest_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

func TestFrontProtocol(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd(
		"www A 192.0.2.1", "www AAAA 2001:db8::1", "loop1 CNAME loop2", "loop2 CNAME loop1")
	send := func(t *testing.T, m *dns.Msg, network string) *dns.Msg {
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		r, _, err := c.Exchange(m, w.DNSAddr())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("question echoed, names answered case-insensitively", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("WwW.Example.TEST.", dns.TypeA)
		r := send(t, m, "udp")
		if r.Question[0].Name != "WwW.Example.TEST." || len(r.Answer) != 1 {
			t.Errorf("%v", r)
		}
	})
	t.Run("CHAOS is refused", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("version.bind.", dns.TypeTXT)
		m.Question[0].Qclass = dns.ClassCHAOS
		if r := send(t, m, "udp"); r.Rcode != dns.RcodeRefused {
			t.Errorf("%v", r)
		}
	})
	t.Run("AXFR is refused", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeAXFR)
		if r := send(t, m, "tcp"); r.Rcode != dns.RcodeRefused {
			t.Errorf("%v", r)
		}
	})
	t.Run("EDNS version 1 gets BADVERS", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(1)
		if r := send(t, m, "udp"); r.Rcode != dns.RcodeBadVers {
			t.Errorf("%v", r)
		}
	})
	t.Run("ANY", func(t *testing.T) {
		r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeANY})
		if len(r.Answer) != 2 {
			t.Errorf("%v", r)
		}
	})
	t.Run("NSEC query", func(t *testing.T) {
		r := exchange(t, w, q{name: "www.example.test", qtype: dns.TypeNSEC, do: true, cd: true})
		if len(rrset(r.Answer, "www.example.test.", dns.TypeNSEC)) != 1 || verifyRRsets(t, w, r.Answer) != 1 {
			t.Errorf("%v", r)
		}
	})
	t.Run("CNAME loop is returned as is", func(t *testing.T) {
		r := exchange(t, w, q{name: "loop1.example.test", qtype: dns.TypeA})
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
			t.Errorf("%v", r)
		}
	})
	t.Run("TLD and root", func(t *testing.T) {
		for _, x := range []q{{name: ".", qtype: dns.TypeSOA}, {name: "test", qtype: dns.TypeNS}, {name: ".", qtype: dns.TypeDNSKEY, do: true}} {
			r := exchange(t, w, x)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				t.Errorf("%s: %v", x.name, r)
			}
		}
	})
	t.Run("unknown TLD", func(t *testing.T) {
		if r := exchange(t, w, q{name: "example.invalid", qtype: dns.TypeA}); r.Rcode != dns.RcodeNameError {
			t.Errorf("%v", r)
		}
	})
	t.Run("lame delegation", func(t *testing.T) {
		w.Zone("example.test").MustAdd("lame NS ns.nowhere.invalid.")
		if r := exchange(t, w, q{name: "x.lame.example.test", qtype: dns.TypeA}); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%v", r)
		}
		if r := exchange(t, w, q{name: "lame.example.test", qtype: dns.TypeDS, do: true}); r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData {
			t.Errorf("DS at the cut: %v", r)
		}
	})
	t.Run("query counts", func(t *testing.T) {
		before, beforeFor := w.QueryCount(), w.QueryCountFor("www.example.test", dns.TypeA)
		exchange(t, w, q{name: "WWW.example.test", qtype: dns.TypeA})
		exchange(t, w, q{name: "www.example.test.", qtype: dns.TypeA, udp: true})
		if got := w.QueryCountFor("www.example.test", dns.TypeA) - beforeFor; got != 2 {
			t.Errorf("QueryCountFor: %d more, want 2", got)
		}
		if got := w.QueryCount() - before; got < 2 {
			t.Errorf("QueryCount: %d more", got)
		}
		if w.QueryCountFor("www.example.test", 0) < 2 {
			t.Errorf("QueryCountFor type 0")
		}
	})
}

// TestStubResolver uses the project's resolver.Stub against the front, as
// users of the kit do.
func TestStubResolver(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}).MustAdd(
		"@ MX 10 mx", "mx A 192.0.2.25", "alias CNAME mx.plain.test.")
	w.AddZone("plain.test", smtptlstest.ZoneConfig{}).MustAdd("mx A 192.0.2.26")
	ctx := context.Background()
	r := w.Resolver()
	a, err := r.Lookup(ctx, "example.test", dns.TypeMX)
	if err != nil {
		t.Fatal(err)
	}
	if a.Security != resolver.Secure || len(a.Records) != 1 {
		t.Errorf("MX: %+v", a)
	}
	a, err = r.Lookup(ctx, "alias.example.test", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if a.Security != resolver.Insecure || len(a.Records) != 1 || a.Target() != "mx.plain.test." {
		t.Errorf("CNAME to unsigned: %+v", a)
	}
	w.Zone("example.test").SetFault(smtptlstest.FaultBadSignature)
	_, err = r.Lookup(ctx, "example.test", dns.TypeMX)
	var re *resolver.Error
	if !errors.As(err, &re) || re.Kind != resolver.KindServFail {
		t.Errorf("bogus zone: %v", err)
	}
}

// TestParallelWorlds runs several Worlds at once: each has its own keys,
// zones and port.
func TestParallelWorlds(t *testing.T) {
	t.Parallel()
	const n = 6
	addrs := make(chan string, n)
	anchors := make(chan string, n)
	t.Run("group", func(t *testing.T) {
		for i := range n {
			t.Run(string(rune('a'+i)), func(t *testing.T) {
				t.Parallel()
				w := smtptlstest.New(t)
				name := string(rune('a'+i)) + ".test"
				w.AddZone(name, smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC}).MustAdd("www A 192.0.2.1")
				for range 20 {
					r := exchange(t, w, q{name: "www." + name, qtype: dns.TypeA, do: true, udp: true})
					if !r.AuthenticatedData || len(r.Answer) != 2 {
						t.Fatalf("%v", r)
					}
				}
				other := string(rune('a'+(i+1)%n)) + ".test"
				if r := exchange(t, w, q{name: "www." + other, qtype: dns.TypeA}); r.Rcode != dns.RcodeNameError {
					t.Errorf("a zone of another World is visible: %v", r)
				}
				addrs <- w.DNSAddr()
				anchors <- w.Anchors()[0].Digest
			})
		}
	})
	close(addrs)
	close(anchors)
	seenA, seenK := map[string]bool{}, map[string]bool{}
	for a := range addrs {
		seenA[a] = true
	}
	for k := range anchors {
		seenK[k] = true
	}
	if len(seenA) != n || len(seenK) != n {
		t.Errorf("%d addresses, %d anchors for %d Worlds", len(seenA), len(seenK), n)
	}
}

// TestConcurrentChanges changes zones while queries run (for -race).
func TestConcurrentChanges(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("busy.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			z.MustAdd("h" + strings.Repeat("x", i%5) + " A 192.0.2.1")
			z.Remove("h", 0)
			w.SetFault("h.busy.test", 0, smtptlstest.Fault(i%2)*smtptlstest.FaultBadSignature)
		}
	}()
	for ctx.Err() == nil {
		for _, name := range []string{"h.busy.test", "hx.busy.test", "nope.busy.test"} {
			r, err := tryExchange(w, q{name: name, qtype: dns.TypeA, do: true, cd: true, udp: true})
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				t.Fatal(err)
			}
			if r.Rcode == dns.RcodeServerFailure {
				t.Fatalf("SERVFAIL under CD=1: %v", r)
			}
		}
	}
	<-done
}
