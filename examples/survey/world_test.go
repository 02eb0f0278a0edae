package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

// The synthetic world of the survey tests: mail domains in three zones
// (signed with NSEC, signed with NSEC3, unsigned), whose MX hosts live in
// provider zones with every TLSA situation, each domain of one of the
// kinds below, with the record the survey must write for it. Domains
// share the provider zones' MX hosts, as real ones do, and are built
// with Zone.Add in bulk (World.AddDomain costs a zone, a listener and a
// certificate per domain).

// digest is the data of the TLSA records: Evaluate decides usability
// without a connection, so any SHA-256-sized value is usable.
var digest = strings.Repeat("5a", 32)

// policyAddr is the one address every MTA-STS policy host resolves to;
// the World maps it, port 443, to its HTTPS server.
const policyAddr = "127.0.9.9"

// providerZones are the zones of the shared MX hosts.
var providerZones = []struct {
	name    string
	signing smtptlstest.Signing
	lines   []string
	fault   func(w *smtptlstest.World)
}{
	{"danehost.test", smtptlstest.NSEC, []string{
		"mx1 A 192.0.2.1", "mx2 A 192.0.2.2",
		"_25._tcp.mx1 TLSA 3 1 1 " + digest, "_25._tcp.mx2 TLSA 3 1 1 " + digest}, nil},
	{"plainhost.test", smtptlstest.Unsigned, []string{"mx1 A 192.0.2.11"}, nil},
	// PKIX-TA only: unusable in SMTP (RFC 7672 3.1.3).
	{"pkixhost.test", smtptlstest.NSEC, []string{"mx1 A 192.0.2.21", "_25._tcp.mx1 TLSA 0 0 1 " + digest}, nil},
	{"bogushost.test", smtptlstest.NSEC, []string{"mx1 A 192.0.2.31", "_25._tcp.mx1 TLSA 3 1 1 " + digest},
		func(w *smtptlstest.World) {
			w.SetFault("_25._tcp.mx1.bogushost.test", dns.TypeTLSA, smtptlstest.FaultBadSignature)
		}},
	{"sfhost.test", smtptlstest.NSEC3, []string{"mx1 A 192.0.2.41", "_25._tcp.mx1 TLSA 3 1 1 " + digest},
		func(w *smtptlstest.World) {
			w.SetFault("_25._tcp.mx1.sfhost.test", dns.TypeTLSA, smtptlstest.FaultServFail)
		}},
	{"notlsa.test", smtptlstest.NSEC, []string{"mx1 A 192.0.2.51"}, nil},
}

// domainZones are the zones the surveyed domains are in.
var domainZones = []struct {
	name    string
	signing smtptlstest.Signing
}{{"s.test", smtptlstest.NSEC}, {"n3.test", smtptlstest.NSEC3}, {"u.test", smtptlstest.Unsigned}}

// kind is a configuration of domain, with its truth. In lines, policy
// and want, "{d}" stands for the domain's label in its zone (lines are
// relative to the zone) and "{D}" for the whole domain.
type kind struct {
	name  string
	zone  string
	lines []string
	// policy is the MTA-STS policy body served for the domain; "" means
	// none (the policy host then does not even resolve).
	policy string
	// servfail makes the World answer SERVFAIL to the domain's MX
	// question.
	servfail bool
	want     Record
}

const rua = `_smtp._tls.{d} TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.net"`

func mx(host string, pref uint16, tlsa string) MXHost {
	return MXHost{Host: host, Preference: pref, TLSA: tlsa}
}

var kinds = []kind{
	{name: "full", zone: "s.test",
		lines: []string{"{d} MX 10 mx1.danehost.test.", "{d} MX 20 mx2.danehost.test."},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "full", MTASTS: "absent", Provider: "danehost.test",
			MX: []MXHost{mx("mx1.danehost.test", 10, "usable"), mx("mx2.danehost.test", 20, "usable")}}},
	{name: "partial-insecure-host", zone: "s.test",
		lines: []string{"{d} MX 10 mx1.danehost.test.", "{d} MX 20 mx1.plainhost.test."},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "partial", MTASTS: "absent", Provider: "danehost.test",
			MX: []MXHost{mx("mx1.danehost.test", 10, "usable"), mx("mx1.plainhost.test", 20, "none")}}},
	{name: "unusable-tlsa", zone: "n3.test",
		lines: []string{"{d} MX 10 mx1.pkixhost.test."},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "none", MTASTS: "absent", Provider: "pkixhost.test",
			MX: []MXHost{mx("mx1.pkixhost.test", 10, "unusable")}}},
	{name: "partial-bogus", zone: "s.test",
		lines: []string{"{d} MX 10 mx1.bogushost.test.", "{d} MX 20 mx2.danehost.test."},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "partial", MTASTS: "absent", Provider: "bogushost.test",
			MX: []MXHost{mx("mx1.bogushost.test", 10, "bogus"), mx("mx2.danehost.test", 20, "usable")}}},
	// Equal preferences: the provider is the host first by name.
	{name: "partial-servfail-tie", zone: "n3.test",
		lines: []string{"{d} MX 10 mx1.sfhost.test.", "{d} MX 10 mx1.danehost.test."},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "partial", MTASTS: "absent", Provider: "danehost.test",
			MX: []MXHost{mx("mx1.danehost.test", 10, "usable"), mx("mx1.sfhost.test", 10, "servfail")}}},
	// RFC 7672 2.2.1: an insecure MX RRset gets no DANE, whatever its
	// hosts publish.
	{name: "insecure-mx-dane-host", zone: "u.test",
		lines: []string{"{d} MX 10 mx1.danehost.test."},
		want: Record{MXStatus: "ok", DANE: "none", MTASTS: "absent", Provider: "danehost.test",
			MX: []MXHost{mx("mx1.danehost.test", 10, "usable")}}},
	{name: "sts-enforce", zone: "u.test",
		lines:  []string{"{d} MX 10 mx1.plainhost.test."},
		policy: "version: STSv1\nmode: enforce\nmx: mx1.plainhost.test\nmax_age: 86400\n",
		want: Record{MXStatus: "ok", DANE: "none", MTASTS: "enforce", Provider: "plainhost.test",
			MX: []MXHost{mx("mx1.plainhost.test", 10, "none")}}},
	{name: "full-sts-testing", zone: "s.test",
		lines:  []string{"{d} MX 10 mx1.danehost.test."},
		policy: "version: STSv1\nmode: testing\nmx: *.danehost.test\nmax_age: 86400\n",
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "full", MTASTS: "testing", Provider: "danehost.test",
			MX: []MXHost{mx("mx1.danehost.test", 10, "usable")}}},
	{name: "sts-none", zone: "u.test",
		lines:  []string{"{d} MX 10 mx1.plainhost.test."},
		policy: "version: STSv1\nmode: none\nmax_age: 86400\n",
		want: Record{MXStatus: "ok", DANE: "none", MTASTS: "none", Provider: "plainhost.test",
			MX: []MXHost{mx("mx1.plainhost.test", 10, "none")}}},
	// A TXT record whose policy host does not resolve: no policy.
	{name: "sts-no-policy", zone: "u.test",
		lines: []string{"{d} MX 10 mx1.plainhost.test.", `_mta-sts.{d} TXT "v=STSv1; id=1"`},
		want: Record{MXStatus: "ok", DANE: "none", MTASTS: "invalid", Provider: "plainhost.test",
			MX: []MXHost{mx("mx1.plainhost.test", 10, "none")}}},
	{name: "sts-bad-record", zone: "s.test",
		lines: []string{"{d} MX 10 mx1.danehost.test.", `_mta-sts.{d} TXT "v=STSv1; id=no spaces allowed"`},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "full", MTASTS: "invalid", Provider: "danehost.test",
			MX: []MXHost{mx("mx1.danehost.test", 10, "usable")}}},
	{name: "sts-bad-policy", zone: "u.test",
		lines:  []string{"{d} MX 10 mx1.plainhost.test."},
		policy: "version: STSv1\nmode: sometimes\nmx: mx1.plainhost.test\nmax_age: 86400\n",
		want: Record{MXStatus: "ok", DANE: "none", MTASTS: "invalid", Provider: "plainhost.test",
			MX: []MXHost{mx("mx1.plainhost.test", 10, "none")}}},
	{name: "tlsrpt", zone: "s.test",
		lines: []string{"{d} MX 10 mx1.danehost.test.", rua},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "full", MTASTS: "absent", TLSRPT: true, Provider: "danehost.test",
			MX: []MXHost{mx("mx1.danehost.test", 10, "usable")}}},
	// RFC 8460 3: two TLS-RPT records are none.
	{name: "tlsrpt-two", zone: "u.test",
		lines: []string{"{d} MX 10 mx1.plainhost.test.", rua, `_smtp._tls.{d} TXT "v=TLSRPTv1; rua=mailto:other@example.net"`},
		want: Record{MXStatus: "ok", DANE: "none", MTASTS: "absent", Provider: "plainhost.test",
			MX: []MXHost{mx("mx1.plainhost.test", 10, "none")}}},
	{name: "null-mx", zone: "s.test",
		lines: []string{"{d} MX 0 ."},
		want:  Record{MXStatus: "null", MXSecure: true, DANE: "none", MTASTS: "absent"}},
	{name: "null-mx-unsigned-tlsrpt", zone: "u.test",
		lines: []string{"{d} MX 0 .", rua},
		want:  Record{MXStatus: "null", DANE: "none", MTASTS: "absent", TLSRPT: true}},
	{name: "nxdomain-signed", zone: "n3.test",
		want: Record{MXStatus: "nxdomain", MXSecure: true, DANE: "none", MTASTS: "absent"}},
	{name: "nxdomain-unsigned", zone: "u.test",
		want: Record{MXStatus: "nxdomain", DANE: "none", MTASTS: "absent"}},
	// No MX: the domain is its own host (RFC 5321 5.1), its NODATA
	// proven secure.
	{name: "implicit-dane", zone: "s.test",
		lines: []string{"{d} A 192.0.2.61", "_25._tcp.{d} TLSA 3 1 1 " + digest},
		want: Record{MXStatus: "implicit", MXSecure: true, DANE: "full", MTASTS: "absent", Provider: "s.test",
			MX: []MXHost{mx("{D}", 0, "usable")}}},
	// RFC 7672 2.2.2: the TLSA records of a CNAME'd MX host are those of
	// its target when the chain is secure.
	{name: "cname-mx-host", zone: "s.test",
		lines: []string{"{d} MX 10 mail.{d}", "mail.{d} CNAME mx2.danehost.test."},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "full", MTASTS: "absent", Provider: "s.test",
			MX: []MXHost{mx("mail.{D}", 10, "usable")}}},
	{name: "own-hosts-nsec3", zone: "n3.test",
		lines: []string{"{d} MX 10 mx.{d}", "mx.{d} A 192.0.2.71", "_25._tcp.mx.{d} TLSA 3 1 1 " + digest},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "full", MTASTS: "absent", Provider: "n3.test",
			MX: []MXHost{mx("mx.{D}", 10, "usable")}}},
	{name: "mx-servfail", zone: "s.test", servfail: true,
		lines: []string{"{d} MX 10 mx1.danehost.test."},
		want:  Record{Error: "*"}},
	{name: "secure-no-tlsa", zone: "s.test",
		lines: []string{"{d} MX 10 mx1.notlsa.test."},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "none", MTASTS: "absent", Provider: "notlsa.test",
			MX: []MXHost{mx("mx1.notlsa.test", 10, "none")}}},
	// MTA-STS enforce excludes a host outside the policy (RFC 8461 4.1);
	// the survey still reports the host.
	{name: "sts-enforce-excluded", zone: "u.test",
		lines:  []string{"{d} MX 10 mx1.plainhost.test."},
		policy: "version: STSv1\nmode: enforce\nmx: mx.elsewhere.example\nmax_age: 86400\n",
		want: Record{MXStatus: "ok", DANE: "none", MTASTS: "enforce", Provider: "plainhost.test",
			MX: []MXHost{mx("mx1.plainhost.test", 10, "none")}}},
	// An MX target that is not a host name is never dialled, has no
	// DANE and names no provider.
	{name: "numeric-mx-target", zone: "s.test",
		lines: []string{"{d} MX 10 192.0.2.44."},
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "none", MTASTS: "absent",
			MX: []MXHost{mx("192.0.2.44", 10, "none")}}},
	{name: "partial-sts-enforce-tlsrpt", zone: "n3.test",
		lines:  []string{"{d} MX 20 mx1.plainhost.test.", "{d} MX 10 mx2.danehost.test.", rua},
		policy: "version: STSv1\nmode: enforce\nmx: mx1.plainhost.test\nmx: *.danehost.test\nmax_age: 86400\n",
		want: Record{MXStatus: "ok", MXSecure: true, DANE: "partial", MTASTS: "enforce", TLSRPT: true, Provider: "danehost.test",
			MX: []MXHost{mx("mx2.danehost.test", 10, "usable"), mx("mx1.plainhost.test", 20, "none")}}},
}

// listed is one domain of a synthetic list with its truth.
type listed struct {
	domain string
	rank   int
	kind   *kind
	want   Record
}

// synthWorld is a World holding n domains, domain i of kinds[i%len(kinds)].
type synthWorld struct {
	w       *smtptlstest.World
	domains []listed
	anchors string // a file with the World's trust anchors
	ca      string // a file with the World CA's root
}

// label is the label of domain i in its zone.
func label(i int) string { return fmt.Sprintf("d%05d", i) }

func newSynthWorld(t testing.TB, n int) *synthWorld {
	t.Helper()
	w := smtptlstest.New(t)
	for _, p := range providerZones {
		w.AddZone(p.name, smtptlstest.ZoneConfig{Signing: p.signing}).MustAdd(p.lines...)
		if p.fault != nil {
			p.fault(w)
		}
	}
	zb := map[string]*strings.Builder{}
	for _, z := range domainZones {
		w.AddZone(z.name, smtptlstest.ZoneConfig{Signing: z.signing})
		zb[z.name] = &strings.Builder{}
	}
	sw := &synthWorld{w: w}
	type pol struct{ domain, body string }
	var policies []pol
	for i := range n {
		k := &kinds[i%len(kinds)]
		d := label(i) + "." + k.zone
		exp := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "{d}", label(i)), "{D}", d) }
		b := zb[k.zone]
		for _, l := range k.lines {
			b.WriteString(exp(l) + "\n")
		}
		if k.policy != "" {
			fmt.Fprintf(b, "_mta-sts.%s TXT \"v=STSv1; id=1\"\nmta-sts.%s A %s\n", label(i), label(i), policyAddr)
			policies = append(policies, pol{d, k.policy})
		}
		want := k.want
		want.Domain = d
		want.MX = []MXHost{}
		for _, h := range k.want.MX {
			h.Host = exp(h.Host)
			want.MX = append(want.MX, h)
		}
		want.Provider = exp(want.Provider)
		if k.servfail {
			w.SetFault(d, dns.TypeMX, smtptlstest.FaultServFail)
		}
		rank := 0
		if i%3 != 2 {
			rank = i + 1 // two thirds of the list is ranked
		}
		want.Rank = rank
		sw.domains = append(sw.domains, listed{domain: d, rank: rank, kind: k, want: want})
	}
	for name, b := range zb {
		if b.Len() > 0 {
			w.Zone(name).MustAdd(b.String())
		}
	}
	for _, p := range policies {
		w.SetPolicy(p.domain, smtptlstest.Policy{Body: p.body})
	}
	dir := t.TempDir()
	sw.anchors, sw.ca = writeAnchors(t, w, dir), writeCA(t, w, dir)
	return sw
}

// writeAnchors writes the World's trust anchors as DS records in
// zone-file syntax, for -anchors.
func writeAnchors(t testing.TB, w *smtptlstest.World, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, ds := range w.Anchors() {
		b.WriteString(ds.String() + "\n")
	}
	return writeTemp(t, dir, "anchors.zone", b.String())
}

// writeCA writes the root of the World's CA as PEM, for -ca.
func writeCA(t testing.TB, w *smtptlstest.World, dir string) string {
	t.Helper()
	return writeTemp(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.CA().Root.Raw})))
}

func writeTemp(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// list writes the domains as a list file: "rank,domain" lines for ranked
// domains, bare names for the others, with a comment and a blank line.
func (sw *synthWorld) list(t testing.TB, dir string, domains []listed) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# synthetic list\n\n")
	for _, d := range domains {
		if d.rank > 0 {
			fmt.Fprintf(&b, "%d,%s\n", d.rank, d.domain)
		} else {
			b.WriteString(d.domain + "\n")
		}
	}
	return writeTemp(t, dir, "list.csv", b.String())
}

// args are the flags that point a survey at the World: its DNS front,
// its anchors (in-process validation, the default) and its CA, with a
// time limit per domain for a loaded machine.
func (sw *synthWorld) args(extra ...string) []string {
	return append([]string{"-resolver", sw.w.DNSAddr(), "-anchors", sw.anchors, "-ca", sw.ca, "-timeout", "3m"}, extra...)
}

// hooks dial through the World, and wait for its DNS front as long as a
// loaded machine (the race detector, other tests) may need: it answers
// from this process, behind the survey's own work.
func (sw *synthWorld) hooks() hooks {
	return hooks{dial: sw.w.DialContext, queryTimeout: 30 * time.Second, lookupTimeout: 2 * time.Minute}
}

// runSurvey runs the command and fails the test on a non-zero exit.
func runSurvey(t testing.TB, ctx context.Context, args []string, hk hooks) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(ctx, args, strings.NewReader(""), &out, &errb, hk); code != 0 {
		t.Fatalf("survey %s: exit %d\nstderr:\n%s", strings.Join(args, " "), code, errb.String())
	}
	return out.String(), errb.String()
}
