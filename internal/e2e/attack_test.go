package e2e_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
)

// The attack matrix (security invariants 1, 2 and 5 of DESIGN.md): every
// domain configuration against every attacker capability, alone and
// combined. Print it with
//
//	go test -run TestAttackMatrix -v ./internal/e2e
//
// An active attacker sits between the sender and the recipient. He runs
// his own MX (mx.attacker.test) in his own DNSSEC-signed zone, with a
// TLSA record and a WebPKI certificate for his own name: everything an
// attacker can legitimately own. He cannot sign data in zones he does not
// own, and cannot get a WebPKI certificate for names he does not own.

// target is one configured domain in a world.
type target struct {
	domain   string
	zone     *smtptlstest.Zone // holds the MX RRset and _mta-sts
	hostZone *smtptlstest.Zone // holds the MX hosts' A and TLSA records
	hosts    []string
	real     []*smtptlstest.SMTPServer
	attacker *smtptlstest.SMTPServer
	sts      bool
	w        *smtptlstest.World
}

// protection says what a configuration promises under attack.
type protection int

const (
	unprotected   protection = iota // opportunistic: anything goes, only reported
	encryptOnly                     // TLS mandatory, no authentication
	authenticated                   // TLS and authentication of the real MX mandatory
	insecureMX                      // DANE behind an unsigned MX: the MX itself can be spoofed (RFC 7672 2.2.1)
)

type configuration struct {
	name  string
	prot  protection
	build func(w *smtptlstest.World, d string) *target
}

func scenario(s smtptlstest.Scenario) func(w *smtptlstest.World, d string) *target {
	return func(w *smtptlstest.World, d string) *target {
		dom := w.AddDomain(d, s)
		t := &target{domain: dom.Name, zone: dom.Zone, hostZone: dom.Zone, real: dom.MX, sts: s.STS != smtptlstest.STSOff}
		for _, m := range dom.MX {
			t.hosts = append(t.hosts, m.Host())
		}
		return t
	}
}

// insecureMXTarget: an unsigned domain whose MX is a host with DANE in a
// signed hosting zone; with sts, an enforce policy lists that host.
func insecureMXTarget(sts bool) func(w *smtptlstest.World, d string) *target {
	return func(w *smtptlstest.World, d string) *target {
		z := w.AddZone(d, smtptlstest.ZoneConfig{})
		hz := w.AddZone("hosting-"+d, smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
		host := "mx.hosting-" + d
		cert, _ := w.CA().Issue(smtptlstest.CertOptions{}, host)
		srv := w.AddMX(host, smtptlstest.SMTPConfig{Certificate: cert})
		hz.MustAdd(smtptlstest.TLSARecord("_25._tcp."+host+".", cert.Leaf, 3, 1, 1))
		z.MustAdd("@ MX 10 " + host + ".")
		if sts {
			z.MustAdd(`_mta-sts TXT "v=STSv1; id=1"`)
			w.SetPolicy(d, smtptlstest.Policy{Body: "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: " + host + "\n"})
		}
		return &target{domain: d, zone: z, hostZone: hz, hosts: []string{host}, real: []*smtptlstest.SMTPServer{srv}, sts: sts}
	}
}

var configurations = []configuration{
	{"dane-ee", authenticated, scenario(smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})},
	{"dane-ta", authenticated, scenario(smtptlstest.Scenario{DANE: smtptlstest.DANETrustAnchor})},
	{"dane-unusable", encryptOnly, scenario(smtptlstest.Scenario{DANE: smtptlstest.DANEUnusable})},
	{"sts-enforce", authenticated, scenario(smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})},
	{"sts-testing", unprotected, scenario(smtptlstest.Scenario{STS: smtptlstest.STSTesting, Unsigned: true})},
	{"sts-none", unprotected, scenario(smtptlstest.Scenario{STS: smtptlstest.STSNone, Unsigned: true})},
	{"dane+sts", authenticated, scenario(smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce})},
	{"neither", unprotected, scenario(smtptlstest.Scenario{Unsigned: true})},
	{"insecure-mx+tlsa", insecureMX, insecureMXTarget(false)},
	{"insecure-mx+tlsa+sts", authenticated, insecureMXTarget(true)},
}

type attack struct {
	name  string
	apply func(t *target)
}

func eachReal(t *target, f func(host string, s *smtptlstest.SMTPServer)) {
	for i, s := range t.real {
		f(t.hosts[i], s)
	}
}

var (
	stripSTARTTLS = func(t *target) {
		eachReal(t, func(_ string, s *smtptlstest.SMTPServer) { s.SetConfig(smtptlstest.SMTPConfig{NoSTARTTLS: true}) })
	}
	selfSigned = func(t *target) {
		eachReal(t, func(h string, s *smtptlstest.SMTPServer) {
			c, _ := smtptlstest.SelfSigned(h)
			s.SetConfig(smtptlstest.SMTPConfig{Certificate: c})
		})
	}
	otherNameCert = func(t *target) {
		// A valid WebPKI certificate, for the attacker's own name.
		eachReal(t, func(_ string, s *smtptlstest.SMTPServer) {
			c, _ := t.w.CA().Issue(smtptlstest.CertOptions{}, "mx.attacker.test")
			s.SetConfig(smtptlstest.SMTPConfig{Certificate: c})
		})
	}
	// spoofMX answers the MX query with the attacker's host. In a signed
	// zone the forged answer cannot carry valid signatures.
	spoofMX = func(t *target) {
		t.zone.Remove("@", dns.TypeMX)
		t.zone.MustAdd("@ MX 10 mx.attacker.test.")
		if t.zone.Config().Signing != smtptlstest.Unsigned {
			t.w.SetFault(t.domain, dns.TypeMX, smtptlstest.FaultBadSignature)
		}
	}
	// spoofA points the real MX names at the attacker's server.
	spoofA = func(t *target) {
		addr := t.w.Zone("attacker.test").Records("mx.attacker.test.", dns.TypeA)[0].(*dns.A).A.String()
		for _, h := range t.hosts {
			t.hostZone.Remove(h+".", dns.TypeA)
			t.hostZone.MustAdd(h + ". 300 IN A " + addr)
			if t.hostZone.Config().Signing != smtptlstest.Unsigned {
				t.w.SetFault(h, dns.TypeA, smtptlstest.FaultBadSignature)
			}
		}
	}
	// spoofTXT removes the _mta-sts record, hoping for "no policy".
	removeTXT   = func(t *target) { t.zone.Remove("_mta-sts", dns.TypeTXT) }
	bogusDNSSEC = func(t *target) {
		t.zone.SetFault(smtptlstest.FaultBadSignature)
		t.hostZone.SetFault(smtptlstest.FaultBadSignature)
	}
	stripRRSIGs = func(t *target) {
		t.zone.SetFault(smtptlstest.FaultStripRRSIGs)
		t.hostZone.SetFault(smtptlstest.FaultStripRRSIGs)
	}
	blockTLSA = func(t *target) {
		for _, h := range t.hosts {
			t.w.SetFault("_25._tcp."+h, dns.TypeTLSA, smtptlstest.FaultServFail)
		}
	}
	timeoutTLSA = func(t *target) {
		for _, h := range t.hosts {
			t.w.SetFault("_25._tcp."+h, dns.TypeTLSA, smtptlstest.FaultTimeout)
		}
	}
	// newID forces a policy fetch by announcing a new policy id.
	newID = func(t *target, id string) {
		if !t.sts {
			return
		}
		t.zone.Remove("_mta-sts", dns.TypeTXT)
		t.zone.MustAdd(`_mta-sts TXT "v=STSv1; id=` + id + `"`)
	}
	blockPolicy = func(t *target) {
		newID(t, "2")
		if t.sts {
			t.w.SetPolicy(t.domain, smtptlstest.Policy{Status: 503, Body: "unavailable\n"})
		}
	}
	// hijackPolicy: a new id and a wider mx list over a hijacked HTTPS
	// path, without a valid certificate for mta-sts.<domain>.
	hijackPolicy = func(t *target) {
		newID(t, "3")
		if t.sts {
			t.w.SetPolicy(t.domain, smtptlstest.Policy{Cert: smtptlstest.CertSelfSigned,
				Body: "version: STSv1\nmode: testing\nmax_age: 604800\nmx: mx.attacker.test\nmx: *." + t.domain + "\n"})
		}
	}
	// replayPolicy: the id of an old policy and its body (mode none),
	// replayed by a server that cannot present a valid certificate.
	replayPolicy = func(t *target) {
		newID(t, "0")
		if t.sts {
			t.w.SetPolicy(t.domain, smtptlstest.Policy{Cert: smtptlstest.CertWrongName, Body: "version: STSv1\nmode: none\nmax_age: 604800\n"})
		}
	}
)

func combine(fs ...func(*target)) func(*target) {
	return func(t *target) {
		for _, f := range fs {
			f(t)
		}
	}
}

var attacks = []attack{
	{"none", func(*target) {}},
	{"strip-starttls", stripSTARTTLS},
	{"self-signed", selfSigned},
	{"other-name-cert", otherNameCert},
	{"spoof-mx", spoofMX},
	{"spoof-a", spoofA},
	{"remove-sts-txt", removeTXT},
	{"bogus-dnssec", bogusDNSSEC},
	{"strip-rrsigs", stripRRSIGs},
	{"servfail-tlsa", blockTLSA},
	{"timeout-tlsa", timeoutTLSA},
	{"block-policy-fetch", blockPolicy},
	{"hijack-policy", hijackPolicy},
	{"replay-old-policy", replayPolicy},
	{"strip+remove-txt", combine(stripSTARTTLS, removeTXT)},
	{"spoof-mx+strip", combine(spoofMX, stripSTARTTLS)},
	{"spoof-mx+hijack-policy", combine(spoofMX, hijackPolicy, stripSTARTTLS)},
	{"servfail-tlsa+self-signed", combine(blockTLSA, selfSigned)},
}

// cellOutcome is what happened to one message.
type cellOutcome struct {
	what   string // verified, trusted, encrypted, cleartext, impostor(...), deferred, bounced
	result string // TLS-RPT result recorded, or "-"
}

func runCell(t *testing.T, cfg configuration, a attack) cellOutcome {
	w := smtptlstest.New(t)
	az := w.AddZone("attacker.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	acert, _ := w.CA().Issue(smtptlstest.CertOptions{}, "mx.attacker.test")
	attacker := w.AddMX("mx.attacker.test", smtptlstest.SMTPConfig{Certificate: acert})
	az.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx.attacker.test.", acert.Leaf, 3, 1, 1))

	tg := cfg.build(w, "victim.test")
	tg.w, tg.attacker = w, attacker
	stsClient := &mtasts.Client{Resolver: w.Resolver(), HTTPClient: w.HTTPClient(), Logger: discard}
	r := w.Resolver()
	r.Timeout = 300 * time.Millisecond
	ev := &smtptls.Evaluator{Resolver: r, STS: stsClient, Roots: w.CA().Pool(), Logger: discard}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The sender has delivered to the domain before: its MTA-STS policy
	// (if any) is cached, as RFC 8461 intends.
	if _, err := ev.Evaluate(ctx, tg.domain); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	a.apply(tg)

	d, err := ev.Evaluate(ctx, tg.domain)
	if err != nil {
		return cellOutcome{what: "deferred", result: "-"}
	}
	out := cellOutcome{what: "deferred", result: "-"}
	for _, h := range d.Hosts {
		if h.Err != nil {
			if r := h.FailureResult(h.Err); r != "" && out.result == "-" {
				out.result = string(r)
			}
			continue
		}
		before := len(attacker.Deliveries())
		o := smtptlstest.Send(ctx, w.DialContext, h, 25, smtptls.Attempt{}, smtptlstest.Message{
			From: "a@sender.test", To: []string{"b@" + tg.domain}, Data: []byte("Subject: x\r\n\r\nx\r\n")})
		if o.Result != "" && out.result == "-" {
			out.result = string(o.Result)
		}
		if !o.Delivered {
			continue
		}
		what := o.Verdict.String()
		if !o.TLS {
			what = "cleartext"
		} else if o.Verdict == smtptls.Failed {
			what = "encrypted" // delivered despite a failed check (testing, opportunistic)
		}
		if len(attacker.Deliveries()) > before {
			what = "impostor(" + what + ")"
		}
		out.what = what
		return out
	}
	return out
}

// forbidden reports why an outcome breaks a configuration's promise, or "".
func forbidden(p protection, o cellOutcome) string {
	switch p {
	case authenticated:
		if o.what != "verified" && o.what != "trusted" && o.what != "deferred" {
			return "an authenticated domain got " + o.what
		}
	case encryptOnly:
		if o.what == "cleartext" || strings.HasPrefix(o.what, "impostor(cleartext") {
			return "TLS was mandatory"
		}
	case insecureMX:
		// RFC 7672 2.2.1: an unsigned MX RRset can be spoofed to the
		// attacker's DANE host; that session must never be "verified".
		if o.what == "cleartext" || o.what == "encrypted" || o.what == "impostor(verified)" || strings.HasPrefix(o.what, "impostor(c") || strings.HasPrefix(o.what, "impostor(e") {
			return "insecure MX with DANE got " + o.what
		}
	}
	return ""
}

func TestAttackMatrix(t *testing.T) {
	t.Parallel()
	type cell struct {
		cfg, att int
		out      cellOutcome
	}
	var mu sync.Mutex
	var cells []cell
	t.Run("cells", func(t *testing.T) {
		for ci, cfg := range configurations {
			for ai, a := range attacks {
				t.Run(cfg.name+"/"+a.name, func(t *testing.T) {
					t.Parallel()
					o := runCell(t, cfg, a)
					if why := forbidden(cfg.prot, o); why != "" {
						t.Errorf("DOWNGRADE: %s under %s: %s (%s)", cfg.name, a.name, o.what, why)
					}
					mu.Lock()
					cells = append(cells, cell{ci, ai, o})
					mu.Unlock()
				})
			}
		}
	})
	sort.Slice(cells, func(i, j int) bool {
		if cells[i].cfg != cells[j].cfg {
			return cells[i].cfg < cells[j].cfg
		}
		return cells[i].att < cells[j].att
	})
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-22s", "attack \\ config")
	for _, c := range configurations {
		fmt.Fprintf(&b, " %-22s", c.name)
	}
	b.WriteString("\n")
	grid := map[[2]int]cellOutcome{}
	for _, c := range cells {
		grid[[2]int{c.cfg, c.att}] = c.out
	}
	for ai, a := range attacks {
		fmt.Fprintf(&b, "%-22s", a.name)
		for ci := range configurations {
			o := grid[[2]int{ci, ai}]
			s := o.what
			if o.result != "-" && o.result != "" {
				s += "/" + abbrev(o.result)
			}
			fmt.Fprintf(&b, " %-22s", s)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nverified/trusted: delivered to the real MX, authenticated (trusted = DANE via an unsigned MX, RFC 7672 2.2.1);\n" +
		"encrypted: TLS without authentication; impostor(...): delivered to the attacker's MX; after '/': the TLS-RPT result.\n")
	t.Log(b.String())
	// Expected TLS-RPT results for well-known cells.
	want := map[string]string{
		"dane-ee/strip-starttls":     "starttls-not-supported",
		"sts-enforce/strip-starttls": "starttls-not-supported",
		"dane-ee/servfail-tlsa":      "dnssec-invalid",
		"dane-ta/other-name-cert":    "certificate-host-mismatch",
		"sts-enforce/self-signed":    "certificate-not-trusted",
		"dane-ee/self-signed":        "validation-failure",
		"sts-testing/self-signed":    "certificate-not-trusted",
	}
	for _, c := range cells {
		key := configurations[c.cfg].name + "/" + attacks[c.att].name
		if w, ok := want[key]; ok && c.out.result != w {
			t.Errorf("%s: TLS-RPT result %q, want %q", key, c.out.result, w)
		}
	}
}

func abbrev(r string) string {
	return map[string]string{
		"starttls-not-supported": "no-starttls", "certificate-host-mismatch": "host-mismatch",
		"certificate-not-trusted": "not-trusted", "validation-failure": "validation", "dnssec-invalid": "dnssec",
		"certificate-expired": "expired", "sts-policy-fetch-error": "sts-fetch", "sts-webpki-invalid": "sts-webpki",
	}[r]
}
