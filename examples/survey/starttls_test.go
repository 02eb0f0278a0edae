package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smtptls/smtptls/examples/internal/rollover"
	"github.com/smtptls/smtptls/smtptlstest"
)

// probeHost is an MX host of the STARTTLS world and what a probe of it
// must report.
type probeHost struct {
	name     string // in mxp.test (signed) or plainp.test (unsigned)
	cfg      smtptlstest.SMTPConfig
	tlsa     func(w *smtptlstest.World, s *smtptlstest.SMTPServer) []string // zone lines, relative
	starttls string
	match    string // from a signed domain
	rollover rollover.Scheme
	server   *smtptlstest.SMTPServer
}

func ee(owner string) func(*smtptlstest.World, *smtptlstest.SMTPServer) []string {
	return func(_ *smtptlstest.World, s *smtptlstest.SMTPServer) []string {
		return []string{smtptlstest.TLSARecord(owner, s.Certificate().Leaf, 3, 1, 1)}
	}
}

// countingListener counts the connections it accepts and the most that
// were in a dialogue at once. A dialogue ends when the server has read
// QUIT (or the connection ended): the client learns that only
// afterwards, from the reply, so a client that waits for one connection
// to end before it opens the next is never seen with two.
type countingListener struct {
	net.Listener
	open, peak, total atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.total.Add(1)
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return c, nil
}

// serveSlowSMTP answers each connection as a slow SMTP server without
// STARTTLS: a greeting after a pause (long enough for a second probe to
// overlap if the prober let it), EHLO, QUIT.
func serveSlowSMTP(l *countingListener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			var once sync.Once
			end := func() { once.Do(func() { l.open.Add(-1) }) }
			defer end()
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			time.Sleep(100 * time.Millisecond)
			fmt.Fprint(c, "220 shared.plainp.test ESMTP\r\n")
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				switch strings.ToUpper(strings.Fields(line + " x")[0]) {
				case "EHLO":
					fmt.Fprint(c, "250-shared.plainp.test\r\n250 PIPELINING\r\n")
				case "QUIT":
					end()
					fmt.Fprint(c, "221 bye\r\n")
					return
				default:
					fmt.Fprint(c, "502 no\r\n")
				}
			}
		}()
	}
}

// TestSurveySTARTTLS probes MX hosts of every kind, each shared by
// several domains: each (host, address) must be probed once, an address
// never by two connections at a time, and each host's outcome judged by
// each domain's policy, with the TLSA rollover scheme seen.
func TestSurveySTARTTLS(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	mxp := w.AddZone("mxp.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	plainp := w.AddZone("plainp.test", smtptlstest.ZoneConfig{})
	dom := w.AddZone("dom.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	udom := w.AddZone("udom.test", smtptlstest.ZoneConfig{})
	next, err := smtptlstest.SelfSigned("next.mxp.test")
	if err != nil {
		t.Fatal(err)
	}
	hosts := []*probeHost{
		{name: "ee.mxp.test", tlsa: ee("_25._tcp.ee"), starttls: "ok", match: "verified", rollover: rollover.None},
		{name: "next.mxp.test", starttls: "ok", match: "verified", rollover: rollover.CurrentNext,
			tlsa: func(w *smtptlstest.World, s *smtptlstest.SMTPServer) []string {
				return append(ee("_25._tcp.next")(w, s), smtptlstest.TLSARecord("_25._tcp.next", next.Leaf, 3, 1, 1))
			}},
		{name: "issuer.mxp.test", starttls: "ok", match: "verified", rollover: rollover.CurrentIssuer,
			tlsa: func(w *smtptlstest.World, s *smtptlstest.SMTPServer) []string {
				return append(ee("_25._tcp.issuer")(w, s), smtptlstest.TLSARecord("_25._tcp.issuer", w.CA().Intermediate, 2, 1, 1))
			}},
		{name: "ta.mxp.test", starttls: "ok", match: "verified", rollover: rollover.IssuerOnly,
			tlsa: func(w *smtptlstest.World, _ *smtptlstest.SMTPServer) []string {
				return []string{smtptlstest.TLSARecord("_25._tcp.ta", w.CA().Intermediate, 2, 1, 1)}
			}},
		{name: "mismatch.mxp.test", starttls: "ok", match: "failed", rollover: rollover.NoMatch,
			tlsa: func(*smtptlstest.World, *smtptlstest.SMTPServer) []string {
				return []string{"_25._tcp.mismatch TLSA 3 1 1 " + digest}
			}},
		{name: "stripped.mxp.test", cfg: smtptlstest.SMTPConfig{NoSTARTTLS: true}, tlsa: ee("_25._tcp.stripped"),
			starttls: "not-offered", match: "failed"},
		{name: "broken.mxp.test", cfg: smtptlstest.SMTPConfig{BrokenHandshake: true}, tlsa: ee("_25._tcp.broken"),
			starttls: "failed", match: "failed"},
		{name: "plain.plainp.test", starttls: "ok", match: "encrypted"},
		{name: "clear.plainp.test", cfg: smtptlstest.SMTPConfig{NoSTARTTLS: true}, starttls: "not-offered", match: "cleartext"},
		{name: "multi.plainp.test", starttls: "ok", match: "encrypted"},
	}
	plainp.MustAdd("multi A 127.0.6.1", "multi A 127.0.6.2", "dead A 127.0.5.5",
		"shared1 A 127.0.7.7", "shared2 A 127.0.7.7")
	for _, h := range hosts {
		h.server = w.AddMX(h.name, h.cfg)
		if h.tlsa != nil {
			mxp.MustAdd(h.tlsa(w, h.server)...)
		}
	}
	// multi's first address refuses connections: the probe moves on.
	w.Register(netip.MustParseAddr("127.0.6.1"), 25, "")
	// shared1 and shared2 are two names of one slow server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cl := &countingListener{Listener: ln}
	go serveSlowSMTP(cl)
	w.Listen(netip.MustParseAddr("127.0.7.7"), 25, cl)
	hosts = append(hosts,
		&probeHost{name: "dead.plainp.test", starttls: "unreachable"},
		&probeHost{name: "shared1.plainp.test", starttls: "not-offered", match: "cleartext"},
		&probeHost{name: "shared2.plainp.test", starttls: "not-offered", match: "cleartext"})

	// Three signed domains per host; two unsigned domains for ee (DANE
	// from an insecure MX: trusted) and two with an MTA-STS enforce
	// policy for plain (verified by WebPKI).
	type want struct {
		h     *probeHost
		match string
	}
	wants := map[string]want{}
	var list strings.Builder
	n := 0
	for _, h := range hosts {
		for range 3 {
			label := fmt.Sprintf("d%02d", n)
			n++
			dom.MustAdd(label + " MX 10 " + h.name + ".")
			wants[label+".dom.test"] = want{h, h.match}
			list.WriteString(label + ".dom.test\n")
		}
	}
	for i, h := range []*probeHost{hosts[0], hosts[0], hosts[7], hosts[7]} {
		label := fmt.Sprintf("u%02d", i)
		udom.MustAdd(label + " MX 10 " + h.name + ".")
		m := "trusted"
		if h.name == "plain.plainp.test" {
			m = "verified"
			udom.MustAdd("_mta-sts."+label+` TXT "v=STSv1; id=1"`, "mta-sts."+label+" A "+policyAddr)
			w.SetPolicy(label+".udom.test", smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmx: plain.plainp.test\nmax_age: 86400\n"})
		}
		wants[label+".udom.test"] = want{h, m}
		list.WriteString(label + ".udom.test\n")
	}
	sw := &synthWorld{w: w}
	dir := t.TempDir()
	sw.anchors = writeAnchors(t, w, dir)
	sw.ca = writeCA(t, w, dir)
	listFile := writeTemp(t, dir, "list.txt", list.String())
	js := filepath.Join(dir, "s.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _ := runSurvey(t, ctx, sw.args("-starttls", "-concurrency", "16", "-json-summary", js, listFile), sw.hooks())

	recs := readJSONL(t, out)
	if len(recs) != len(wants) {
		t.Errorf("%d records for %d domains", len(recs), len(wants))
	}
	roll := map[rollover.Scheme]int{}
	for d, wt := range wants {
		r := recs[d]
		if r.Error != "" || len(r.MX) != 1 {
			t.Errorf("%s: %+v", d, r)
			continue
		}
		m := r.MX[0]
		wantRoll := wt.h.rollover
		if m.STARTTLS != wt.h.starttls || m.Match != wt.match || m.Rollover != wantRoll {
			t.Errorf("%s via %s: starttls %q match %q rollover %q; want %q %q %q",
				d, wt.h.name, m.STARTTLS, m.Match, m.Rollover, wt.h.starttls, wt.match, wantRoll)
		}
		wantAddr := ""
		switch wt.h.name {
		case "multi.plainp.test":
			wantAddr = "127.0.6.2"
		case "dead.plainp.test":
			wantAddr = "127.0.5.5"
		case "shared1.plainp.test", "shared2.plainp.test":
			wantAddr = "127.0.7.7"
		}
		if wantAddr != "" && m.Addr != wantAddr {
			t.Errorf("%s: probed %s, want %s", d, m.Addr, wantAddr)
		}
		if wantRoll != "" {
			roll[wantRoll]++
		}
	}
	// Each (host, address) once, however many domains share it.
	for _, h := range hosts {
		if h.server != nil && h.server.Connections() != 1 {
			t.Errorf("%s: %d connections, want 1", h.name, h.server.Connections())
		}
	}
	if total, peak := cl.total.Load(), cl.peak.Load(); total != 2 || peak != 1 {
		t.Errorf("shared address: %d connections (want 2: one per host name), at most %d at once (want 1)", total, peak)
	}
	s := readSummary(t, js)
	if !s.STARTTLS || fmt.Sprint(s.Rollover) != fmt.Sprint(roll) {
		t.Errorf("summary rollover %v (starttls %v), want %v", s.Rollover, s.STARTTLS, roll)
	}
}
