package interop_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
)

// env is the lab that run.sh built.
type env struct {
	dir      string // zones, keys, configurations
	auth     string // nsd serving every zone
	upstream string // unbound, iterator only, forwarding to auth
	anchors  []*dns.DS
}

func setup(t *testing.T) *env {
	t.Helper()
	e := &env{
		dir:      os.Getenv("SMTPTLS_INTEROP_DIR"),
		auth:     os.Getenv("SMTPTLS_INTEROP_AUTH"),
		upstream: os.Getenv("SMTPTLS_INTEROP_UPSTREAM"),
	}
	if e.dir == "" || e.auth == "" || e.upstream == "" {
		t.Skip("interop suite: run interop/run.sh (it builds signed zones and starts nsd and unbound)")
	}
	b, err := os.ReadFile(filepath.Join(e.dir, "root.ds"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("root.ds: %v", err)
		}
		e.anchors = append(e.anchors, rr.(*dns.DS))
	}
	return e
}

func (e *env) validator(server string) *resolver.Validating {
	return &resolver.Validating{Servers: []string{server}, Anchors: e.anchors, Timeout: 3 * time.Second}
}

// question is one scenario: an id naming what it tests, the question
// asked, a description, and (questions-anchors.txt only) the trust
// anchors the validators start from.
type question struct {
	id      string
	qtype   uint16
	name    string
	desc    string
	anchors []string // names of the anchor files anchor-NAME.ds; nil = the root
}

func (q question) String() string { return dns.TypeToString[q.qtype] + " " + q.name }

// readQuestions reads a scenario file: "ID TYPE NAME description" per line
// ("ID ANCHORS TYPE NAME description" when withAnchors, ANCHORS being
// names joined by "+").
func readQuestions(t *testing.T, file string, withAnchors bool) []question {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var qs []question
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		var q question
		if withAnchors && len(fields) > 1 {
			q.anchors = strings.Split(fields[1], "+")
			fields = append(fields[:1], fields[2:]...)
		}
		var qt uint16
		ok := len(fields) >= 4
		if ok {
			qt, ok = dns.StringToType[strings.ToUpper(fields[1])]
		}
		if !ok {
			t.Fatalf("%s:%d: want ID %sTYPE NAME DESCRIPTION, got %q", file, n, map[bool]string{true: "ANCHORS "}[withAnchors], sc.Text())
		}
		if ids[fields[0]] {
			t.Fatalf("%s:%d: duplicate scenario id %s", file, n, fields[0])
		}
		ids[fields[0]] = true
		q.id, q.qtype, q.name, q.desc = fields[0], qt, fields[2], strings.Join(fields[3:], " ")
		qs = append(qs, q)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return qs
}

// expected is one accepted disagreement.
type expected struct {
	ours, theirs, reason string
	seen                 bool
}

// readExpected reads expected-differences.txt: "ID PEER OURS THEIRS
// reason" per line, keyed by "ID PEER".
func readExpected(t *testing.T) map[string]*expected {
	t.Helper()
	f, err := os.Open("expected-differences.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]*expected{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 5 {
			t.Fatalf("expected-differences.txt: want ID PEER OURS THEIRS REASON, got %q", line)
		}
		key := strings.Join(fields[:2], " ")
		if m[key] != nil {
			t.Fatalf("expected-differences.txt: %s listed twice", key)
		}
		m[key] = &expected{ours: fields[2], theirs: fields[3], reason: strings.Join(fields[4:], " ")}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// A verdict is the security status and the outcome, "secure/DATA":
// security is secure, insecure, bogus or error (a failure that is not a
// validation failure, such as a CNAME loop); the outcome is DATA (NOERROR
// with records of the type asked), NODATA (NOERROR without them),
// NXDOMAIN or SERVFAIL (always with bogus and error).
func verdict(security, outcome string) string {
	if security == "bogus" || security == "error" {
		outcome = "SERVFAIL"
	}
	return security + "/" + outcome
}

// ours asks Validating.
func ours(ctx context.Context, v *resolver.Validating, q question) (verdict_, detail string) {
	a, err := v.Lookup(ctx, q.name, q.qtype)
	if err != nil {
		var e *resolver.Error
		if errors.As(err, &e) && e.Kind == resolver.KindBogus {
			return verdict("bogus", ""), fmt.Sprintf("EDE %d: %s", e.EDE, e.Reason)
		}
		return verdict("error", ""), err.Error()
	}
	outcome := "DATA"
	if a.NXDomain {
		outcome = "NXDOMAIN"
	} else if len(a.Records) == 0 {
		outcome = "NODATA"
	}
	return verdict(a.Security.String(), outcome), ""
}

// unboundHost asks libunbound (validating, forwarding to nsd) with the
// configuration conf.
func unboundHost(ctx context.Context, conf string, q question) (v, raw string) {
	for range peerTries {
		out, _ := exec.CommandContext(ctx, "unbound-host", "-v", "-C", conf,
			"-t", dns.TypeToString[q.qtype], q.name).CombinedOutput()
		if v, raw = parseUnboundHost(string(out)), string(out); v != "?" || ctx.Err() != nil {
			break
		}
	}
	return v, raw
}

// peerTries bounds the runs of a peer validator for one question: a run
// whose output has no verdict at all (seen once with delv on a loaded
// machine) is repeated; a verdict, whatever it is, is never asked again.
const peerTries = 3

// parseUnboundHost reads unbound-host -v output: one line per part of a
// CNAME chain, each ending in the verdict of the whole answer.
func parseUnboundHost(s string) string {
	security := "?"
	switch {
	case strings.Contains(s, "(BOGUS"):
		security = "bogus"
	case strings.Contains(s, "(error)"):
		security = "error"
	case strings.Contains(s, "(insecure)"):
		security = "insecure"
	case strings.Contains(s, "(secure)"):
		security = "secure"
	}
	outcome := "DATA"
	switch {
	case strings.Contains(s, "not found: 3(NXDOMAIN)"):
		outcome = "NXDOMAIN"
	case strings.Contains(s, "not found:"):
		outcome = "SERVFAIL"
	case strings.Contains(s, " has no "):
		outcome = "NODATA"
	}
	if security == "?" {
		return "?"
	}
	return verdict(security, outcome)
}

// delv asks BIND's delv (stub validation against nsd) with the anchors
// of anchorConf, starting from the one at root: delv validates from one
// anchor per run (+root=NAME) and leaves names outside it unvalidated
// ("; authoritative", which counts as insecure). delv prints a verdict per
// part of a chain but none for a negative answer at the end of a CNAME or
// DNAME chain; that name is then asked on its own, and the chain takes its
// worst part.
func (e *env) delv(ctx context.Context, anchorConf, root string, q question) (string, string) {
	v, neg, raw := e.delvOnce(ctx, anchorConf, root, q.name, q.qtype)
	if neg != "" {
		v2, _, _ := e.delvOnce(ctx, anchorConf, root, neg, q.qtype)
		sec, out, _ := strings.Cut(v, "/")
		sec2, _, _ := strings.Cut(v2, "/")
		if rank[sec2] > rank[sec] {
			sec = sec2
		}
		v = verdict(sec, out)
	}
	return v, raw
}

var rank = map[string]int{"?": 0, "secure": 1, "insecure": 2, "bogus": 3, "error": 4}

// delvOnce returns the verdict of one delv run and, for a negative
// answer at the end of a chain, the name whose negative answer delv did
// not judge.
func (e *env) delvOnce(ctx context.Context, anchorConf, root, name string, qtype uint16) (v, negName, raw string) {
	host, port, _ := net.SplitHostPort(e.auth)
	for range peerTries {
		out, _ := exec.CommandContext(ctx, "delv", "@"+host, "-p", port, "-a", anchorConf,
			"+root="+root, name, dns.TypeToString[qtype]).CombinedOutput()
		v, negName = parseDelv(string(out))
		raw = string(out)
		if v != "?" || ctx.Err() != nil {
			break
		}
	}
	return v, negName, raw
}

func parseDelv(s string) (v, negName string) {
	security, outcome := "?", "DATA"
	worse := func(sec string) {
		if rank[sec] > rank[security] {
			security = sec
		}
	}
	negJudged := false
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, ";; resolution failed: ncache nxdomain"):
			outcome = "NXDOMAIN"
		case strings.HasPrefix(line, ";; resolution failed: ncache nxrrset"):
			outcome = "NODATA"
		case strings.HasPrefix(line, ";; resolution failed: quota reached"),
			strings.HasPrefix(line, ";; resolution failed: timed out"),
			strings.HasPrefix(line, ";; resolution failed: SERVFAIL"):
			worse("error")
		case strings.HasPrefix(line, ";; resolution failed:"),
			strings.Contains(line, "broken trust chain"):
			worse("bogus")
		case strings.Contains(line, "negative response, fully validated"):
			negJudged = true
			worse("secure")
		case strings.Contains(line, "negative response, signed answer, pending validation"):
			// A signed negative answer delv could not validate (it
			// printed "no valid signature found" for the zone's data,
			// as with its KeyTrap limit on keys sharing a tag): for a
			// validating resolver that is a validation failure.
			negJudged = true
			worse("bogus")
		case strings.Contains(line, "negative response, unsigned answer"):
			negJudged = true
			worse("insecure")
		case strings.HasPrefix(line, "; fully validated"):
			worse("secure")
		case strings.HasPrefix(line, "; unsigned answer"), strings.HasPrefix(line, "; authoritative"):
			worse("insecure")
		case strings.HasPrefix(line, "; ") && (strings.Contains(line, ";-$NXDOMAIN") || strings.Contains(line, ";-$NXRRSET")):
			if f := strings.Fields(line); len(f) > 1 {
				negName = f[1]
			}
		}
	}
	if security == "?" {
		return "?", ""
	}
	if negJudged || outcome == "DATA" || security == "bogus" || security == "error" {
		negName = ""
	}
	return verdict(security, outcome), negName
}

// anchorConfs writes an unbound-host configuration and a delv anchor
// file for a set of anchors (names of anchor-NAME.ds files run.sh wrote)
// and returns their paths and the anchored zones. Nil means the root
// anchor of the lab.
func (e *env) anchorConfs(t *testing.T, anchors []string) (unboundConf, delvConf string, zones []string) {
	t.Helper()
	if anchors == nil {
		return filepath.Join(e.dir, "unbound-host.conf"), filepath.Join(e.dir, "delv-anchor.conf"), []string{"."}
	}
	key := strings.Join(anchors, "+")
	unboundConf = filepath.Join(e.dir, "unbound-host-"+key+".conf")
	delvConf = filepath.Join(e.dir, "delv-anchor-"+key+".conf")
	base, err := os.ReadFile(filepath.Join(e.dir, "unbound-host.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var ub, dv strings.Builder
	dv.WriteString("trust-anchors {\n")
	for _, line := range strings.Split(string(base), "\n") {
		if strings.Contains(line, "trust-anchor-file:") {
			for _, a := range anchors {
				fmt.Fprintf(&ub, "  trust-anchor-file: %q\n", filepath.Join(e.dir, "anchor-"+a+".ds"))
			}
			continue
		}
		ub.WriteString(line + "\n")
	}
	for _, a := range anchors {
		for _, ds := range e.readDS(t, "anchor-"+a+".ds") {
			zones = append(zones, ds.Hdr.Name)
			fmt.Fprintf(&dv, "  %s static-ds %d %d %d \"%s\";\n", ds.Hdr.Name, ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
		}
	}
	dv.WriteString("};\n")
	if err := os.WriteFile(unboundConf, []byte(ub.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(delvConf, []byte(dv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return unboundConf, delvConf, zones
}

// closestAnchor returns the anchored zone closest to name, or the first
// one when none encloses it (delv then validates nothing).
func closestAnchor(zones []string, name string) string {
	best := ""
	for _, z := range zones {
		if dns.IsSubDomain(z, dns.Fqdn(name)) && dns.CountLabel(z) >= dns.CountLabel(best) {
			best = z
		}
	}
	if best == "" {
		best = zones[0]
	}
	return best
}

// readDS reads a file of DS records that run.sh wrote.
func (e *env) readDS(t *testing.T, file string) []*dns.DS {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, file))
	if err != nil {
		t.Fatal(err)
	}
	var out []*dns.DS
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, rr.(*dns.DS))
	}
	return out
}

// TestInteropMatrix asks every scenario of questions.txt of the three
// validators and fails on an unlisted disagreement.
func TestInteropMatrix(t *testing.T) {
	e := setup(t)
	qs := readQuestions(t, "questions.txt", false)
	exp := readExpected(t)
	v := e.validator(e.upstream) // one validator: warm cache across questions, as in an MTA
	rows := e.ask(t, qs, func(question) *resolver.Validating { return v })
	e.report(t, rows, exp)
	st := v.Stats()
	t.Logf("Validating work for %d scenarios: %d queries, %d signature verifications, %d NSEC3 hashes",
		len(qs), st.Queries, st.Verifications, st.NSEC3Hashes)
	for k, x := range exp {
		if !x.seen && !strings.HasPrefix(k, "anchor-") {
			t.Logf("listed difference not seen in this run: %s (ours %s, theirs %s)", k, x.ours, x.theirs)
		}
	}
}

// TestInteropAnchors asks the scenarios of questions-anchors.txt, whose
// validators start from trust anchors at zones other than the root. It
// runs when Validating starts chains of trust at such anchors (a lookup
// under an island anchor alone is Secure) or when SMTPTLS_INTEROP_ANCHORS=1
// demands it; otherwise it lists the scenarios and skips.
func TestInteropAnchors(t *testing.T) {
	e := setup(t)
	qs := readQuestions(t, "questions-anchors.txt", true)
	exp := readExpected(t)
	probe := &resolver.Validating{Servers: []string{e.upstream}, Anchors: e.readDS(t, "anchor-island.ds"), Timeout: 3 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	got, detail := ours(ctx, probe, question{qtype: dns.TypeMX, name: "island.test"})
	cancel()
	if got != "secure/DATA" && os.Getenv("SMTPTLS_INTEROP_ANCHORS") != "1" {
		var b strings.Builder
		for _, q := range qs {
			fmt.Fprintf(&b, "\n  %-24s %-16s %-30s %s", q.id, strings.Join(q.anchors, "+"), q, q.desc)
		}
		t.Skipf("%d anchor scenarios skipped: Validating does not start chains of trust at non-root anchors yet "+
			"(MX island.test with only island.test's DS as anchor: %s %s); they run once it does, "+
			"or with SMTPTLS_INTEROP_ANCHORS=1:%s", len(qs), got, detail, b.String())
	}
	validators := map[string]*resolver.Validating{}
	for _, q := range qs {
		key := strings.Join(q.anchors, "+")
		if validators[key] == nil {
			var anchors []*dns.DS
			for _, a := range q.anchors {
				anchors = append(anchors, e.readDS(t, "anchor-"+a+".ds")...)
			}
			validators[key] = &resolver.Validating{Servers: []string{e.upstream}, Anchors: anchors, Timeout: 3 * time.Second}
		}
	}
	rows := e.ask(t, qs, func(q question) *resolver.Validating { return validators[strings.Join(q.anchors, "+")] })
	e.report(t, rows, exp)
	for k, x := range exp {
		if !x.seen && strings.HasPrefix(k, "anchor-") {
			t.Logf("listed difference not seen in this run: %s (ours %s, theirs %s)", k, x.ours, x.theirs)
		}
	}
}

type row struct {
	q                   question
	us, detail, ub, dlv string
	ubRaw, dlvRaw       string // the peers' output, shown when it has no verdict
}

// ask puts every question to the three validators, a few at a time.
func (e *env) ask(t *testing.T, qs []question, val func(question) *resolver.Validating) []row {
	t.Helper()
	type confs struct {
		ub, dlv string
		zones   []string
	}
	cf := map[string]confs{}
	for _, q := range qs {
		if key := strings.Join(q.anchors, "+"); cf[key].ub == "" {
			u, d, z := e.anchorConfs(t, q.anchors)
			cf[key] = confs{u, d, z}
		}
	}
	rows := make([]row, len(qs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := cf[strings.Join(q.anchors, "+")]
			r := row{q: q}
			r.us, r.detail = ours(ctx, val(q), q)
			r.ub, r.ubRaw = unboundHost(ctx, c.ub, q)
			r.dlv, r.dlvRaw = e.delv(ctx, c.dlv, closestAnchor(c.zones, q.name), q)
			rows[i] = r
		}()
	}
	wg.Wait()
	return rows
}

// report prints the verdict table and fails on disagreements not listed
// in expected-differences.txt.
func (e *env) report(t *testing.T, rows []row, exp map[string]*expected) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-4s %-22s %-40s %-17s %-17s %-17s %s\n", "#", "SCENARIO", "QUESTION", "ours", "unbound", "delv", "what it tests; notes")
	var failures []string
	agree := 0
	for i, r := range rows {
		var notes []string
		for _, peer := range []struct{ name, verdict, raw string }{{"unbound", r.ub, r.ubRaw}, {"delv", r.dlv, r.dlvRaw}} {
			if peer.verdict == r.us {
				continue
			}
			key := r.q.id + " " + peer.name
			if x := exp[key]; x != nil && x.ours == r.us && x.theirs == peer.verdict {
				x.seen = true
				notes = append(notes, "expected difference with "+peer.name)
				continue
			}
			f := fmt.Sprintf("%s (%s, %s): ours %s %s, %s %s", r.q.id, r.q, r.q.desc, r.us, r.detail, peer.name, peer.verdict)
			if peer.verdict == "?" {
				f += fmt.Sprintf(" (no verdict in %d runs; its output: %.600q)", peerTries, peer.raw)
			}
			failures = append(failures, f)
			notes = append(notes, "DISAGREES with "+peer.name)
		}
		if r.us == r.ub && r.us == r.dlv {
			agree++
		}
		if r.detail != "" {
			notes = append(notes, r.detail)
		}
		desc := r.q.desc
		if len(notes) > 0 {
			desc += " [" + strings.Join(notes, "; ") + "]"
		}
		fmt.Fprintf(&b, "%-4d %-22s %-40s %-17s %-17s %-17s %s\n", i+1, r.q.id, r.q, r.us, r.ub, r.dlv, desc)
	}
	fmt.Fprintf(&b, "%d scenarios, %d with one verdict from all three validators\n", len(rows), agree)
	t.Log(b.String())
	for _, f := range failures {
		t.Errorf("unlisted disagreement: %s", f)
	}
}

// TestInteropCheck probes the real upstream (fit) and one that strips
// signatures (unfit).
func TestInteropCheck(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if err := e.validator(e.upstream).Check(ctx); err != nil {
		t.Fatalf("Check of the unbound upstream: %v", err)
	}
	p := newProxy(t, e.upstream)
	p.set(question{}, func(_ *proxy, m *dns.Msg) { m.Answer = dropType(m.Answer, dns.TypeRRSIG) })
	err := e.validator(p.addr).Check(ctx)
	var ce *resolver.CheckError
	if !errors.As(err, &ce) || ce.Kind != resolver.CheckNoRRSIG {
		t.Fatalf("Check through a stripping proxy = %v, want CheckNoRRSIG", err)
	}
}
