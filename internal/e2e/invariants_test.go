package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// The security invariants of DESIGN.md, one test each, by name. The attack
// matrix (attack_test.go) exercises them across every configuration; these
// tests state each one directly. Package tests prove the parts: named in
// each test's comment.

func sendTo(t *testing.T, w *smtptlstest.World, h *smtptls.Host) smtptlstest.Outcome {
	t.Helper()
	return smtptlstest.Send(context.Background(), w.DialContext, h, 25, smtptls.Attempt{},
		smtptlstest.Message{From: "a@s.test", To: []string{"b@" + h.Name}, Data: []byte("\r\n")})
}

// Invariant 1: a failure never becomes a downgrade. A bogus or failed TLSA
// or MX lookup, a failed policy fetch, a removed TXT record never yields
// "deliver in clear" where a policy applied.
func TestInvariant1FailureNeverDowngrades(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// Two MX hosts, so that a host remains deliverable when the other's
	// TLSA lookup fails: the cleartext check then has a host to try.
	w.AddDomain("dane.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, MX: 2, Misconfig: smtptlstest.MisNoSTARTTLS})
	sts := w.AddDomain("sts.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisNoSTARTTLS})
	ev := w.evaluator()
	ctx := context.Background()
	if _, err := ev.Evaluate(ctx, "sts.test"); err != nil { // the policy is now cached
		t.Fatal(err)
	}
	cleartext := func(name string, d *smtptls.Decision) {
		t.Helper()
		hs := d.Deliverable()
		if len(hs) == 0 {
			t.Fatalf("%s: no deliverable host, nothing to try in clear: the scenario proves nothing", name)
		}
		for _, h := range hs {
			if o := sendTo(t, w.World, h); o.Delivered && !o.TLS {
				t.Errorf("%s: delivered in clear via %s (level %v)", name, h.Name, h.Level)
			}
		}
	}

	// TLSA lookup fails: the host is unusable, not "no DANE".
	w.SetFault("_25._tcp.mx1.dane.test", dns.TypeTLSA, smtptlstest.FaultServFail)
	d, err := ev.Evaluate(ctx, "dane.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Hosts) != 2 || d.Hosts[0].Err == nil || d.Hosts[1].Err != nil || d.Hosts[1].Level != smtptls.DANE {
		t.Fatalf("TLSA SERVFAIL on mx1: hosts %+v; want mx1 unusable, mx2 at level dane", d.Hosts)
	}
	cleartext("tlsa servfail", d)
	w.ClearFaults()

	// MX lookup bogus: an error (defer), never an insecure MX RRset.
	w.SetFault("dane.test", dns.TypeMX, smtptlstest.FaultBadSignature)
	var e *smtptls.Error
	if _, err := ev.Evaluate(ctx, "dane.test"); !errors.As(err, &e) || e.Kind != smtptls.KindMXLookup || !e.Temporary() {
		t.Errorf("bogus MX: err %v, want a temporary KindMXLookup error", err)
	}
	w.ClearFaults()

	// Policy fetch fails (new id, server down) and the TXT record vanishes:
	// the cached enforce policy still applies.
	sts.Zone.Remove("_mta-sts", dns.TypeTXT)
	sts.Zone.MustAdd(`_mta-sts TXT "v=STSv1; id=2"`)
	w.SetPolicy("sts.test", smtptlstest.Policy{Status: 500})
	if d, err = ev.Evaluate(ctx, "sts.test"); err != nil {
		t.Fatal(err)
	}
	if d.Hosts[0].Level != smtptls.STSEnforce || d.STS.FetchError == nil {
		t.Errorf("failed fetch: level %v, fetch error %v", d.Hosts[0].Level, d.STS.FetchError)
	}
	cleartext("failed fetch", d)
	sts.Zone.Remove("_mta-sts", dns.TypeTXT)
	if d, err = ev.Evaluate(ctx, "sts.test"); err != nil {
		t.Fatal(err)
	}
	if d.Hosts[0].Level != smtptls.STSEnforce {
		t.Errorf("removed TXT: level %v, want sts-enforce from the cache", d.Hosts[0].Level)
	}
	cleartext("removed txt", d)
}

// Invariant 2: DANE wins. With usable secure TLSA records, MTA-STS cannot
// override a DANE failure (RFC 8461 2).
func TestInvariant2DANEWins(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.AddDomain("both.test", smtptlstest.Scenario{DANE: smtptlstest.DANEMismatch, STS: smtptlstest.STSEnforce})
	d, err := w.evaluator().Evaluate(context.Background(), "both.test")
	if err != nil {
		t.Fatal(err)
	}
	h := d.Hosts[0]
	if h.Level != smtptls.DANE || d.STSPolicy() == nil {
		t.Fatalf("level %v, STS policy %v", h.Level, d.STSPolicy())
	}
	if o := sendTo(t, w.World, h); o.Delivered {
		t.Error("delivered although DANE failed and only MTA-STS would accept the certificate")
	}
}

// Invariant 3: a cached MTA-STS policy is only replaced by a newer valid
// policy, never removed by DNS alone, and a bounded cache evicts expired
// and mode-none entries before live ones. (mtasts: TestLookupNewIDReplaces,
// TestMemoryCacheEviction and the section 5 scenario tests.)
func TestInvariant3CachedPolicyOnlyReplacedByNewerValid(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	dom := w.AddDomain("sts.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
	c := &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: discard}
	ctx := context.Background()
	look := func() *mtasts.Result {
		r, err := c.Lookup(ctx, "sts.test")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := look(); r.Policy == nil || r.Policy.Mode != mtasts.Enforce {
		t.Fatalf("first lookup: %+v", r)
	}
	// DNS alone: the record removed, then NXDOMAIN for the whole name.
	dom.Zone.Remove("_mta-sts", dns.TypeTXT)
	if r := look(); r.Policy == nil || r.Source != mtasts.SourceCache {
		t.Errorf("after TXT removal: %+v", r)
	}
	// A new id with an invalid policy: the old one stays.
	dom.Zone.MustAdd(`_mta-sts TXT "v=STSv1; id=9"`)
	w.SetPolicy("sts.test", smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\n"}) // no mx, no max_age
	if r := look(); r.Policy == nil || r.Policy.Mode != mtasts.Enforce || r.FetchError == nil {
		t.Errorf("after an invalid new policy: %+v", r)
	}
	// A newer valid policy replaces it (after the fetch back-off).
	dom.Zone.Remove("_mta-sts", dns.TypeTXT)
	dom.Zone.MustAdd(`_mta-sts TXT "v=STSv1; id=10"`)
	w.SetPolicy("sts.test", smtptlstest.Policy{Body: "version: STSv1\nmode: testing\nmax_age: 86400\nmx: mx1.sts.test\n"})
	if r := look(); r.Policy == nil || r.Policy.Mode != mtasts.Testing || r.ID != "10" {
		t.Errorf("after a newer valid policy: %+v", r)
	}

	// The bounded cache: live policies survive a flood of other domains'
	// mode-none entries.
	mc := mtasts.NewMemoryCache(8)
	mc.Logger = discard
	fc := &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Cache: mc, Logger: discard}
	if r, err := fc.Lookup(ctx, "sts.test"); err != nil || r.Policy == nil {
		t.Fatalf("no policy: %v", err)
	}
	for i := range 20 {
		d := fmt.Sprintf("none%d.test", i)
		w.AddDomain(d, smtptlstest.Scenario{STS: smtptlstest.STSNone, Unsigned: true})
		if r, err := fc.Lookup(ctx, d); err != nil || r.Mode != mtasts.None {
			t.Fatalf("%s: %+v, %v; want a mode-none policy to cache", d, r, err)
		}
	}
	dom.Zone.Remove("_mta-sts", dns.TypeTXT) // so only the cache can answer
	fresh := &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Cache: mc, Logger: discard}
	if r, err := fresh.Lookup(ctx, "sts.test"); err != nil || r.Policy == nil {
		t.Errorf("a live policy was evicted by mode-none entries: %+v, %v", r, err)
	}
}

// Invariant 4: every peer-controlled input is bounded. (Also: resolver
// TestValidatingKeyTrapBounded and TestValidatingLimits, mtasts Fetch size
// and time tests, DirCache key tests, the hostile-peer tests.)
func TestInvariant4PeerInputBounded(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	z := w.zone("long.test", true)
	for i := range 20 {
		z.MustAdd(fmt.Sprintf("c%d CNAME c%d", i, i+1))
	}
	z.MustAdd("c20 A 192.0.2.1")
	var re *resolver.Error
	if _, err := w.Resolver().Lookup(context.Background(), "c0.long.test", dns.TypeA); !errors.As(err, &re) || re.Kind != resolver.KindLoop {
		t.Errorf("20-link CNAME chain: %v, want KindLoop (bounded at %d)", err, resolver.MaxCNAMEs)
	}
	w.AddDomain("big.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
	w.SetPolicy("big.test", smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx1.big.test\n", BodySize: mtasts.MaxPolicySize})
	r, err := (&mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: discard}).Lookup(context.Background(), "big.test")
	var me *mtasts.Error
	if err != nil || r.Policy != nil || !errors.As(r.FetchError, &me) || me.Kind != mtasts.KindBodyTooLarge {
		t.Errorf("oversized policy: policy %v, fetch error %v", r.Policy, r.FetchError)
	}
	if _, err := mtasts.DirCache(t.TempDir()).Get(context.Background(), "../../etc/passwd"); !errors.Is(err, mtasts.ErrCacheMiss) {
		t.Errorf("traversal key: %v, want a miss", err)
	}
}

// Invariant 5: with an insecure MX RRset, DANE cannot bypass MTA-STS:
// enforce MX matching still applies; with a secure MX RRset, usable DANE
// decides for its host.
func TestInvariant5InsecureMXCannotBypassSTS(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hz := w.zone("attacker.test", true)
	_, c := w.mx("mx.attacker.test")
	hz.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx.attacker.test.", c.Leaf, 3, 1, 1))
	z := w.zone("victim.test", false)
	z.MustAdd("@ MX 10 mx.attacker.test.")
	w.sts(z, "victim.test", "enforce", "mx.victim.test")
	d, err := w.evaluator().Evaluate(context.Background(), "victim.test")
	if err != nil {
		t.Fatal(err)
	}
	if h := d.Hosts[0]; !h.Excluded || len(d.Deliverable()) != 0 {
		t.Errorf("the attacker's DANE host behind an unsigned MX was accepted: level %v err %v", h.Level, h.Err)
	}
	// Secure MX RRset: the same DANE host (listed nowhere in the policy)
	// is decided by DANE alone.
	sz := w.zone("signedvictim.test", true)
	sz.MustAdd("@ MX 10 mx.attacker.test.")
	w.sts(sz, "signedvictim.test", "enforce", "mx.signedvictim.test")
	if d, err = w.evaluator().Evaluate(context.Background(), "signedvictim.test"); err != nil {
		t.Fatal(err)
	}
	if h := d.Hosts[0]; h.Err != nil || h.Level != smtptls.DANE {
		t.Errorf("secure MX with usable DANE: level %v err %v", h.Level, h.Err)
	}
}

// Invariant 6: security is on at the zero value: MTA-STS on, DANE on, and
// a resolver that cannot support DANE is reported by the start-up probe.
// Shown by behaviour: an Evaluator with nothing but a resolver and roots
// set both consults MTA-STS and authenticates with DANE.
func TestInvariant6SecureByDefault(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.AddDomain("both.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce})
	// Only the resolver and roots set: MTA-STS must still be consulted.
	ev := &smtptls.Evaluator{Resolver: w.Resolver(), Roots: w.CA().Pool(), Logger: discard}
	d, err := ev.Evaluate(context.Background(), "both.test")
	if err != nil {
		t.Fatal(err)
	}
	if d.STS == nil || d.Hosts[0].Level != smtptls.DANE {
		t.Errorf("zero-value evaluator: STS consulted %v, level %v", d.STS != nil, d.Hosts[0].Level)
	}
	bad := &smtptls.Evaluator{Resolver: &resolver.Stub{Servers: []string{"192.0.2.53:53"}}, Logger: discard}
	if err := bad.Check(context.Background()); !errors.Is(err, smtptls.ErrDANEUnavailable) {
		t.Errorf("start-up probe: %v", err)
	}
}
