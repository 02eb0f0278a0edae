package resolver

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Tests of trust anchors at any zone, negative trust anchors (RFC 7646),
// signature time skew and the reasons of Insecure and Bogus verdicts, on
// the package's own signed world over loopback.

// twAnchorWorld: a root; test. (NSEC); example.test. (NSEC3, secure from
// the root); island.test. (signed, no DS: an island of security) with a
// signed child sub.island.test.; baddigest.test. (its parent's DS does
// not match: bogus from the root); expired.test. (bogus); unsigned.test.
func twAnchorWorld(t *testing.T) *twWorld {
	w := twNewWorld(t)
	w.zone("test.", twCfg{signing: twNSEC})
	w.zone("example.test.", twCfg{signing: twNSEC3}, twLeafWith("bad CNAME mail.expired.test.")...)
	w.zone("island.test.", twCfg{signing: twNSEC, noDS: true}, twLeaf...)
	w.zone("sub.island.test.", twCfg{signing: twNSEC3}, twLeaf...)
	w.zone("baddigest.test.", twCfg{signing: twNSEC, dsMutate: func(d *dns.DS) { d.Digest = "00" + d.Digest[2:] }}, twLeaf...)
	w.zone("expired.test.", twCfg{signing: twNSEC, inception: time.Now().Add(-60 * 24 * time.Hour), expiration: time.Now().Add(-30 * 24 * time.Hour)}, twLeaf...)
	w.zone("unsigned.test.", twCfg{}, "@ MX 10 host", "host A 192.0.2.3")
	w.seal()
	return w
}

// anchorOf returns the DS of the (first) KSK of zone: an anchor for it.
func (w *twWorld) anchorOf(zone string) *dns.DS {
	return w.zones[zone].ksk[0].key.ToDS(dns.SHA256)
}

type twAnchorCase struct {
	qname  string
	qtype  uint16
	want   string
	ede    uint16 // of the error, or of the Insecure answer
	reason string // substring of Reason (answer or error)
}

func twCheckCases(t *testing.T, v *Validating, cases []twAnchorCase) {
	t.Helper()
	for _, tc := range cases {
		a, err := v.Lookup(context.Background(), tc.qname, tc.qtype)
		got, e := twVerdict(a, err)
		what := tc.qname + " " + dns.TypeToString[tc.qtype]
		if got != tc.want {
			t.Errorf("%s: %s (%v), want %s", what, got, err, tc.want)
			continue
		}
		ede, reason := uint16(0), ""
		switch {
		case e != nil:
			ede, reason = e.EDE, e.Reason
		case a.Security == Insecure:
			ede, reason = a.EDE, a.Reason
			if reason == "" {
				t.Errorf("%s: Insecure answer without a Reason", what)
			}
		default:
			if a.EDE != 0 || a.Reason != "" {
				t.Errorf("%s: Secure answer with EDE %d, Reason %q", what, a.EDE, a.Reason)
			}
		}
		if ede != tc.ede {
			t.Errorf("%s: EDE %d, want %d (%s)", what, ede, tc.ede, reason)
		}
		if !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: reason %q lacks %q", what, reason, tc.reason)
		}
	}
}

func TestValidatingAnchorsAnyZone(t *testing.T) {
	t.Parallel()
	w := twAnchorWorld(t)
	srv := w.serve(t, nil)
	root := w.anchors
	with := func(extra ...*dns.DS) []*dns.DS { return append(append([]*dns.DS{}, root...), extra...) }
	for _, tc := range []struct {
		name    string
		anchors []*dns.DS
		cases   []twAnchorCase
	}{
		{"root anchors only", root, []twAnchorCase{
			{qname: "island.test", qtype: dns.TypeMX, want: "insecure", reason: `insecure delegation: no DS for "island.test." (NSEC proof from "test.")`},
			{qname: "mail.sub.island.test", qtype: dns.TypeA, want: "insecure", reason: `no DS for "island.test."`},
			{qname: "example.test", qtype: dns.TypeMX, want: "secure"},
			{qname: "baddigest.test", qtype: dns.TypeMX, want: "bogus", ede: dns.ExtendedErrorCodeDNSKEYMissing, reason: `"baddigest.test."`},
		}},
		{"root and a private anchor", with(w.anchorOf("island.test.")), []twAnchorCase{
			{qname: "island.test", qtype: dns.TypeMX, want: "secure"},
			{qname: "mail.island.test", qtype: dns.TypeA, want: "secure"},
			{qname: "nosuch.island.test", qtype: dns.TypeA, want: "secure"},
			{qname: "_25._tcp.mail.sub.island.test", qtype: dns.TypeTLSA, want: "secure"},
			{qname: "nosuch.sub.island.test", qtype: dns.TypeA, want: "secure"},
			{qname: "example.test", qtype: dns.TypeMX, want: "secure"},
			{qname: "unsigned.test", qtype: dns.TypeMX, want: "insecure", reason: `no DS for "unsigned.test."`},
			{qname: "expired.test", qtype: dns.TypeMX, want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired},
		}},
		{"private anchor only", []*dns.DS{w.anchorOf("island.test.")}, []twAnchorCase{
			{qname: "island.test", qtype: dns.TypeMX, want: "secure"},
			{qname: "mail.sub.island.test", qtype: dns.TypeA, want: "secure"},
			// Nothing to validate against: Insecure, even a zone
			// that is bogus from the root.
			{qname: "example.test", qtype: dns.TypeMX, want: "insecure", reason: `no trust anchor encloses "example.test."`},
			{qname: "expired.test", qtype: dns.TypeMX, want: "insecure", reason: "no trust anchor encloses"},
			{qname: "nosuch.test", qtype: dns.TypeA, want: "insecure", reason: "no trust anchor encloses"},
		}},
		{"the closest anchor wins over the parent's DS", with(w.anchorOf("baddigest.test.")), []twAnchorCase{
			{qname: "baddigest.test", qtype: dns.TypeMX, want: "secure"},
			{qname: "mail.baddigest.test", qtype: dns.TypeA, want: "secure"},
		}},
		{"a wrong private anchor", with(w.anchorOf("example.test.")), []twAnchorCase{
			// island.test's anchor is example.test's key, renamed.
			{qname: "example.test", qtype: dns.TypeMX, want: "secure"},
		}},
		{"an anchor naming another zone's key", with(func() *dns.DS {
			d := w.anchorOf("example.test.")
			d.Hdr.Name = "island.test."
			return d
		}()), []twAnchorCase{
			{qname: "island.test", qtype: dns.TypeMX, want: "bogus", ede: dns.ExtendedErrorCodeDNSKEYMissing, reason: `"island.test."`},
			{qname: "mail.sub.island.test", qtype: dns.TypeA, want: "bogus", ede: dns.ExtendedErrorCodeDNSKEYMissing},
			{qname: "example.test", qtype: dns.TypeMX, want: "secure"},
		}},
		{"no anchors at all", []*dns.DS{}, []twAnchorCase{
			{qname: "example.test", qtype: dns.TypeMX, want: KindIndeterminate.String(), ede: dns.ExtendedErrorCodeDNSSECIndeterminate, reason: "no trust anchors"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := &Validating{Servers: []string{srv.addr}, Anchors: tc.anchors, Timeout: 2 * time.Second}
			twCheckCases(t, v, tc.cases)
		})
	}
}

// TestValidatingAnchorSignerAbove: below an anchored zone, a signature
// by a zone above the anchor is Bogus, even a genuine one (without the
// anchor the parent's genuine signature is accepted: a stub validator
// does not know where the cuts are).
func TestValidatingAnchorSignerAbove(t *testing.T) {
	t.Parallel()
	w := twAnchorWorld(t)
	srv := w.serve(t, func(q, r *dns.Msg) {
		if q.Question[0].Name != "mail.example.test." || q.Question[0].Qtype != dns.TypeA {
			return
		}
		tld := w.zones["test."]
		var set []dns.RR
		for _, rr := range r.Answer {
			if rr.Header().Rrtype == dns.TypeA {
				set = append(set, rr)
			}
		}
		r.Answer = append(twRemoveSigs(r.Answer, 0), w.signWith(set, tld.zsk, tld.name, tld.cfg))
	})
	v := &Validating{Servers: []string{srv.addr}, Anchors: w.anchors}
	twCheckCases(t, v, []twAnchorCase{{qname: "mail.example.test", qtype: dns.TypeA, want: "secure"}})
	v = &Validating{Servers: []string{srv.addr}, Anchors: append(append([]*dns.DS{}, w.anchors...), w.anchorOf("example.test."))}
	twCheckCases(t, v, []twAnchorCase{{qname: "mail.example.test", qtype: dns.TypeA, want: "bogus", ede: dns.ExtendedErrorCodeDNSBogus,
		reason: `RRSIG signer "test." of "mail.example.test." A lies above the trust anchor "example.test."`}})
}

// TestValidatingAnchorsCheck: Check reports anchors without a root
// anchor, and validates every anchored zone's keys.
func TestValidatingAnchorsCheck(t *testing.T) {
	t.Parallel()
	w := twAnchorWorld(t)
	srv := w.serve(t, nil)
	kinds := func(err error) []CheckKind {
		var out []CheckKind
		var joined interface{ Unwrap() []error }
		if !errors.As(err, &joined) {
			return nil
		}
		for _, e := range joined.Unwrap() {
			var ce *CheckError
			if errors.As(e, &ce) {
				out = append(out, ce.Kind)
			}
		}
		return out
	}
	ctx := context.Background()
	v := &Validating{Servers: []string{srv.addr}, Anchors: append(append([]*dns.DS{}, w.anchors...), w.anchorOf("island.test."))}
	if err := v.Check(ctx); err != nil {
		t.Errorf("root and private anchors: %v", err)
	}
	v = &Validating{Servers: []string{srv.addr}, Anchors: []*dns.DS{w.anchorOf("island.test.")}}
	if got := kinds(v.Check(ctx)); len(got) != 1 || got[0] != CheckNoRootAnchor {
		t.Errorf("private anchor only: Check kinds %v, want [CheckNoRootAnchor]", got)
	}
	wrong := w.anchorOf("example.test.")
	wrong.Hdr.Name = "island.test."
	v = &Validating{Servers: []string{srv.addr}, Anchors: append(append([]*dns.DS{}, w.anchors...), wrong)}
	if got := kinds(v.Check(ctx)); len(got) != 1 || got[0] != CheckUntrusted {
		t.Errorf("wrong private anchor: Check kinds %v, want [CheckUntrusted]", got)
	}
}

// twClock is a settable clock.
type twClock struct{ d atomic.Int64 }

func (c *twClock) now() time.Time         { return time.Now().Add(time.Duration(c.d.Load())) }
func (c *twClock) shift(by time.Duration) { c.d.Store(int64(by)) }

// twLogs records log lines.
type twLogs struct {
	mu    sync.Mutex
	lines []string
}

func (l *twLogs) Enabled(context.Context, slog.Level) bool { return true }
func (l *twLogs) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.Key + "=" + a.Value.String(); return true })
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	return nil
}
func (l *twLogs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *twLogs) WithGroup(string) slog.Handler      { return l }
func (l *twLogs) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

func TestValidatingNegativeAnchors(t *testing.T) {
	t.Parallel()
	w := twAnchorWorld(t)
	forged := w.serve(t, func(q, r *dns.Msg) {
		if q.Question[0].Name == "mail.example.test." {
			for i, rr := range r.Answer {
				if s, ok := rr.(*dns.RRSIG); ok {
					r.Answer[i] = twRandomSig(s)
				}
			}
		}
	})
	var clk twClock
	logs := &twLogs{}
	v := &Validating{Servers: []string{forged.addr}, Anchors: w.anchors, Now: clk.now, Logger: slog.New(logs)}
	in := time.Now().Add(time.Hour)
	if err := v.SetNegativeAnchors([]NegativeAnchor{{Zone: "Expired.Test", Expires: in}, {Zone: "ample.test.", Expires: in}}); err != nil {
		t.Fatal(err)
	}
	logs.take()
	const nta = `negative trust anchor "expired.test." until `
	twCheckCases(t, v, []twAnchorCase{
		{qname: "expired.test", qtype: dns.TypeMX, want: "insecure", reason: nta},
		{qname: "mail.expired.test", qtype: dns.TypeA, want: "insecure", reason: nta},
		{qname: "nosuch.expired.test", qtype: dns.TypeA, want: "insecure", reason: nta},
		{qname: "expired.test", qtype: dns.TypeDS, want: "insecure", reason: nta},
		{qname: "bad.example.test", qtype: dns.TypeA, want: "insecure", reason: `"mail.expired.test." A: ` + nta},
		// An NTA never reaches beyond its zone, even by a string
		// suffix ("ample.test." is not above "example.test."): the
		// forged answer stays Bogus.
		{qname: "mail.example.test", qtype: dns.TypeA, want: "bogus", ede: dns.ExtendedErrorCodeDNSBogus, reason: `"mail.example.test."`},
		{qname: "example.test", qtype: dns.TypeMX, want: "secure"},
	})
	var lines []string
	for _, l := range logs.take() {
		if !strings.HasPrefix(l, "INFO ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 5 {
		t.Errorf("%d log lines for 5 lookups under the NTA, want 5: %q", len(lines), lines)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "WARN ") || !strings.Contains(l, `zone="expired.test."`) {
			t.Errorf("log line %q", l)
		}
	}

	// An NTA on a secure zone never makes anything Secure, and never
	// excuses a forgery: the forged answer becomes Insecure (no
	// validation), which is what the operator asked for.
	if err := v.SetNegativeAnchors([]NegativeAnchor{{Zone: "example.test", Expires: in}}); err != nil {
		t.Fatal(err)
	}
	twCheckCases(t, v, []twAnchorCase{
		{qname: "example.test", qtype: dns.TypeMX, want: "insecure", reason: `negative trust anchor "example.test."`},
		{qname: "mail.example.test", qtype: dns.TypeA, want: "insecure", reason: `negative trust anchor "example.test."`},
		{qname: "expired.test", qtype: dns.TypeMX, want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired},
		{qname: "island.test", qtype: dns.TypeMX, want: "insecure", reason: "insecure delegation"},
	})

	// Expiry, judged by the validator's clock; nothing cached survives
	// it (NTA verdicts are never cached by the validator).
	if err := v.SetNegativeAnchors([]NegativeAnchor{{Zone: "expired.test", Expires: in}}); err != nil {
		t.Fatal(err)
	}
	twCheckCases(t, v, []twAnchorCase{{qname: "expired.test", qtype: dns.TypeMX, want: "insecure", reason: nta}})
	clk.shift(2 * time.Hour)
	twCheckCases(t, v, []twAnchorCase{{qname: "expired.test", qtype: dns.TypeMX, want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired}})
	clk.shift(0)
	if err := v.SetNegativeAnchors(nil); err != nil {
		t.Fatal(err)
	}
	twCheckCases(t, v, []twAnchorCase{{qname: "expired.test", qtype: dns.TypeMX, want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired}})
	var warns []string
	for _, l := range logs.take() {
		if strings.HasPrefix(l, "WARN ") {
			warns = append(warns, l)
		}
	}
	if len(warns) != 3 || !strings.Contains(warns[2], `zone="expired.test." name="expired.test." type=MX`) {
		t.Errorf("warnings %q, want 2 for example.test. and one for expired.test.", warns)
	}
}

func TestValidatingNegativeAnchorsInvalid(t *testing.T) {
	t.Parallel()
	w := twAnchorWorld(t)
	srv := w.serve(t, nil)
	in := time.Now().Add(time.Hour)
	logs := &twLogs{}
	v := &Validating{Servers: []string{srv.addr}, Anchors: w.anchors, Logger: slog.New(logs),
		NegativeAnchors: []NegativeAnchor{{Zone: "expired.test."}, {Zone: "baddigest.test.", Expires: in}}}
	// The zero Expires entry is ignored: the zone stays Bogus, never
	// silently Insecure; the valid one applies.
	twCheckCases(t, v, []twAnchorCase{
		{qname: "expired.test", qtype: dns.TypeMX, want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired},
		{qname: "baddigest.test", qtype: dns.TypeMX, want: "insecure", reason: "negative trust anchor"},
	})
	if lines := logs.take(); len(lines) < 1 || !strings.HasPrefix(lines[0], "ERROR ") || !strings.Contains(lines[0], "no expiry") {
		t.Errorf("log lines %q, want the ignored NTA first", lines)
	}
	err := v.Check(context.Background())
	var ce *CheckError
	var ne *NegativeAnchorError
	if !errors.As(err, &ce) || ce.Kind != CheckBadNegativeAnchor || !errors.As(err, &ne) || ne.Zone != "expired.test." {
		t.Errorf("Check = %v, want CheckBadNegativeAnchor for expired.test.", err)
	}
	for _, bad := range [][]NegativeAnchor{
		{{Zone: "expired.test"}},
		{{Zone: ".", Expires: in}},
		{{Zone: "", Expires: in}},
		{{Zone: "a..b", Expires: in}},
		{{Zone: "expired.test", Expires: in}, {Zone: "example.test"}},
	} {
		err := v.SetNegativeAnchors(bad)
		if !errors.As(err, &ne) {
			t.Errorf("SetNegativeAnchors(%v) = %v, want a *NegativeAnchorError", bad, err)
		}
	}
	// Nothing changed.
	twCheckCases(t, v, []twAnchorCase{{qname: "baddigest.test", qtype: dns.TypeMX, want: "insecure", reason: "negative trust anchor"}})
}

// TestValidatingNegativeAnchorsConcurrent: SetNegativeAnchors while
// lookups run (run with -race). Whatever the interleaving, the NTA zone
// is Insecure or Bogus, another bogus zone stays Bogus and a secure zone
// stays Secure.
func TestValidatingNegativeAnchorsConcurrent(t *testing.T) {
	t.Parallel()
	w := twAnchorWorld(t)
	srv := w.serve(t, nil)
	v := &Validating{Servers: []string{srv.addr}, Anchors: w.anchors, Logger: slog.New(slog.DiscardHandler)}
	in := time.Now().Add(time.Hour)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var ntas []NegativeAnchor
			if i%2 == 0 {
				ntas = []NegativeAnchor{{Zone: "expired.test", Expires: in}}
			}
			if err := v.SetNegativeAnchors(ntas); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var lookups sync.WaitGroup
	for range 4 {
		lookups.Add(1)
		go func() {
			defer lookups.Done()
			for range 25 {
				for _, c := range []struct {
					name string
					ok   func(string) bool
				}{
					{"mail.expired.test", func(s string) bool { return s == "insecure" || s == "bogus" }},
					{"mail.baddigest.test", func(s string) bool { return s == "bogus" }},
					{"mail.example.test", func(s string) bool { return s == "secure" }},
				} {
					got, _ := twVerdict(v.Lookup(context.Background(), c.name, dns.TypeA))
					if !c.ok(got) {
						t.Errorf("%s: %s", c.name, got)
					}
				}
			}
		}()
	}
	lookups.Wait()
	close(stop)
	wg.Wait()
}

// TestCacheFlushAfterNegativeAnchors: a Cache above the validator keeps
// the verdicts it has until the zone is flushed; the answer it keeps
// carries its Reason and EDE.
func TestCacheFlushAfterNegativeAnchors(t *testing.T) {
	t.Parallel()
	w := twAnchorWorld(t)
	srv := w.serve(t, nil)
	v := &Validating{Servers: []string{srv.addr}, Anchors: w.anchors, Logger: slog.New(slog.DiscardHandler)}
	c := &Cache{Resolver: v, ErrorTTL: 5 * time.Second}
	ctx := context.Background()
	verdict := func(name string) (string, *Answer) {
		a, err := c.Lookup(ctx, name, dns.TypeA)
		got, _ := twVerdict(a, err)
		return got, a
	}
	if got, _ := verdict("mail.expired.test"); got != "bogus" {
		t.Fatalf("before the NTA: %s", got)
	}
	verdict("mail.island.test")
	if err := v.SetNegativeAnchors([]NegativeAnchor{{Zone: "expired.test", Expires: time.Now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := verdict("mail.expired.test"); got != "bogus" {
		t.Errorf("cached failure: %s", got)
	}
	c.Flush("expired.test")
	got, a := verdict("mail.expired.test")
	if got != "insecure" || !strings.Contains(a.Reason, "negative trust anchor") {
		t.Fatalf("after the flush: %s %+v", got, a)
	}
	// The cached answer keeps its reason.
	verdict("mail.island.test")
	_, a = verdict("mail.island.test")
	if a.Security != Insecure || !strings.Contains(a.Reason, `no DS for "island.test."`) {
		t.Errorf("cached insecure answer: %+v", a)
	}
	if err := v.SetNegativeAnchors(nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := verdict("mail.expired.test"); got != "insecure" {
		t.Errorf("cached NTA verdict before the flush: %s", got)
	}
	c.Flush("expired.test.")
	if got, _ := verdict("mail.expired.test"); got != "bogus" {
		t.Errorf("after lifting the NTA and flushing: %s", got)
	}
	if _, ok, _ := c.Peek("mail.island.test", dns.TypeA); !ok {
		t.Errorf("Flush(expired.test) dropped mail.island.test")
	}
}

// TestValidatingSignatureSkew: signatures a few minutes outside their
// validity period are accepted (RFC 4035 5.3.1 relaxed by a skew of 10%
// of the period within [5 min, 1 h]); well beyond, Bogus.
func TestValidatingSignatureSkew(t *testing.T) {
	t.Parallel()
	now := time.Now()
	w := twNewWorld(t)
	w.zone("test.", twCfg{signing: twNSEC})
	w.zone("ok.test.", twCfg{signing: twNSEC}, twLeaf...)
	// Short periods: 10% is below the 5-minute floor.
	w.zone("short.test.", twCfg{signing: twNSEC, inception: now.Add(-20 * time.Minute), expiration: now.Add(-4 * time.Minute)}, twLeaf...)
	w.zone("shortgone.test.", twCfg{signing: twNSEC, inception: now.Add(-20 * time.Minute), expiration: now.Add(-6 * time.Minute)}, twLeaf...)
	w.seal()
	srv := w.serve(t, nil)
	// The world signs from an hour ago for 30 days: its skew is an hour
	// (10% of 30 days, capped).
	inception, expiration := now.Add(-time.Hour), now.Add(30*24*time.Hour)
	for _, tc := range []struct {
		name  string
		clock time.Time
		qname string
		want  string
		ede   uint16
	}{
		{"clock 3 minutes before inception", inception.Add(-3 * time.Minute), "ok.test", "secure", 0},
		{"clock 59 minutes before inception", inception.Add(-59 * time.Minute), "ok.test", "secure", 0},
		{"clock 2 hours before inception", inception.Add(-2 * time.Hour), "ok.test", "bogus", dns.ExtendedErrorCodeSignatureNotYetValid},
		{"clock 3 minutes after expiration", expiration.Add(3 * time.Minute), "ok.test", "secure", 0},
		{"clock 2 hours after expiration", expiration.Add(2 * time.Hour), "ok.test", "bogus", dns.ExtendedErrorCodeSignatureExpired},
		{"16-minute period expired 4 minutes ago", now, "short.test", "secure", 0},
		{"16-minute period expired 6 minutes ago", now, "shortgone.test", "bogus", dns.ExtendedErrorCodeSignatureExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := tc.clock
			v := &Validating{Servers: []string{srv.addr}, Anchors: w.anchors, Now: func() time.Time { return clock }}
			twCheckCases(t, v, []twAnchorCase{{qname: tc.qname, qtype: dns.TypeMX, want: tc.want, ede: tc.ede}})
		})
	}
}

// TestValidatingInsecureReasons: each kind of Insecure verdict says why,
// with the RFC 8914 code where one fits.
func TestValidatingInsecureReasons(t *testing.T) {
	t.Parallel()
	w := twCraftedWorld(t)
	srv := w.serve(t, nil)
	v := w.validator(srv)
	twCheckCases(t, v, []twAnchorCase{
		{qname: "island.test", qtype: dns.TypeMX, want: "insecure", reason: `"island.test." MX: insecure delegation: no DS for "island.test." (NSEC3 opt-out span of "test.")`},
		{qname: "unsigned.test", qtype: dns.TypeMX, want: "insecure", reason: `NSEC3 opt-out span of "test."`},
		{qname: "child.nsec.test", qtype: dns.TypeA, want: "insecure", reason: `insecure delegation: no DS for "child.nsec.test." (NSEC proof from "nsec.test.")`},
		{qname: "alg16.test", qtype: dns.TypeMX, want: "insecure", ede: dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm, reason: `DS RRset of "alg16.test."`},
		{qname: "small.test", qtype: dns.TypeMX, want: "insecure", ede: dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm, reason: "fewer than 1024"},
		{qname: "unknownalg.test", qtype: dns.TypeMX, want: "insecure", ede: dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm, reason: "unsupported algorithms 200"},
		{qname: "unknowndigest.test", qtype: dns.TypeMX, want: "insecure", ede: dns.ExtendedErrorCodeUnsupportedDSDigestType, reason: "unsupported digest types 200"},
		{qname: "nosuch.iter200.test", qtype: dns.TypeA, want: "insecure", ede: dns.ExtendedErrorCodeUnsupportedNSEC3IterValue, reason: `NSEC3 iterations 200 in "iter200.test." exceed 150`},
		{qname: "nosuch.test", qtype: dns.TypeA, want: "insecure", reason: `"nosuch.test." A: NSEC3 opt-out span in "test."`},
		{qname: "out.example.test", qtype: dns.TypeA, want: "insecure", reason: `"host.unsigned.test." A: insecure delegation`},
		{qname: "expired.test", qtype: dns.TypeMX, want: "bogus", ede: dns.ExtendedErrorCodeSignatureExpired, reason: `RRSIG over "expired.test." DNSKEY by "expired.test." has expired`},
		{qname: "nosig.test", qtype: dns.TypeMX, want: "bogus", ede: dns.ExtendedErrorCodeDNSKEYMissing, reason: `"nosig.test."`},
	})
}
