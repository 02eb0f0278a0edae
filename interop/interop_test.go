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

type question struct {
	qtype uint16
	name  string
}

func (q question) String() string { return dns.TypeToString[q.qtype] + " " + q.name }

func readQuestions(t *testing.T) []question {
	t.Helper()
	f, err := os.Open("questions.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var qs []question
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		qt, ok := dns.StringToType[fields[0]]
		if len(fields) != 2 || !ok {
			t.Fatalf("questions.txt: bad line %q", sc.Text())
		}
		qs = append(qs, question{qt, fields[1]})
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
		if len(fields) < 6 {
			t.Fatalf("expected-differences.txt: want TYPE NAME PEER OURS THEIRS REASON, got %q", line)
		}
		key := strings.Join(fields[:3], " ")
		m[key] = &expected{ours: fields[3], theirs: fields[4], reason: strings.Join(fields[5:], " ")}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// ours asks Validating.
func ours(ctx context.Context, v *resolver.Validating, q question) (verdict, detail string) {
	a, err := v.Lookup(ctx, q.name, q.qtype)
	if err != nil {
		var e *resolver.Error
		if errors.As(err, &e) && e.Kind == resolver.KindBogus {
			return "bogus", fmt.Sprintf("EDE %d: %s", e.EDE, e.Reason)
		}
		return "error", err.Error()
	}
	detail = fmt.Sprintf("%d records", len(a.Records))
	if a.NXDomain {
		detail = "NXDOMAIN"
	} else if len(a.Records) == 0 {
		detail = "NODATA"
	}
	return a.Security.String(), detail
}

// unboundHost asks libunbound (validating, forwarding to nsd).
func (e *env) unboundHost(ctx context.Context, q question) string {
	out, _ := exec.CommandContext(ctx, "unbound-host", "-v", "-C", filepath.Join(e.dir, "unbound-host.conf"),
		"-t", dns.TypeToString[q.qtype], q.name).CombinedOutput()
	s := string(out)
	switch {
	case strings.Contains(s, "(BOGUS"):
		return "bogus"
	case strings.Contains(s, "(secure)"):
		return "secure"
	case strings.Contains(s, "(insecure)"):
		return "insecure"
	}
	return "?"
}

// delv asks BIND's delv (stub validation against nsd).
func (e *env) delv(ctx context.Context, q question) string {
	host, port, _ := net.SplitHostPort(e.auth)
	out, _ := exec.CommandContext(ctx, "delv", "@"+host, "-p", port, "-a", filepath.Join(e.dir, "delv-anchor.conf"),
		"+root=.", q.name, dns.TypeToString[q.qtype]).CombinedOutput()
	// delv prints one verdict per part of a CNAME chain; the chain takes
	// its worst part. "resolution failed: ncache ..." is a validated or
	// unsigned negative answer, any other failure is a validation error.
	s := string(out)
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "broken trust chain") ||
			(strings.HasPrefix(line, ";; resolution failed:") && !strings.Contains(line, "ncache")) {
			return "bogus"
		}
	}
	switch {
	case strings.Contains(s, "unsigned answer"):
		return "insecure"
	case strings.Contains(s, "fully validated"):
		return "secure"
	}
	return "?"
}

// TestInteropMatrix asks every question of the three validators and fails
// on an unlisted disagreement.
func TestInteropMatrix(t *testing.T) {
	e := setup(t)
	qs := readQuestions(t)
	exp := readExpected(t)
	type row struct {
		q                   question
		us, detail, ub, dlv string
	}
	rows := make([]row, len(qs))
	v := e.validator(e.upstream) // one validator: warm cache across questions, as in an MTA
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := row{q: q}
			r.us, r.detail = ours(ctx, v, q)
			r.ub = e.unboundHost(ctx, q)
			r.dlv = e.delv(ctx, q)
			rows[i] = r
		}()
	}
	wg.Wait()

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-6s %-32s %-9s %-9s %-9s %s\n", "TYPE", "NAME", "ours", "unbound", "delv", "note")
	var failures []string
	for _, r := range rows {
		var notes []string
		for _, peer := range []struct{ name, verdict string }{{"unbound", r.ub}, {"delv", r.dlv}} {
			if peer.verdict == r.us {
				continue
			}
			key := r.q.String() + " " + peer.name
			if x := exp[key]; x != nil && x.ours == r.us && x.theirs == peer.verdict {
				x.seen = true
				notes = append(notes, "expected difference with "+peer.name)
				continue
			}
			failures = append(failures, fmt.Sprintf("%s: ours %s (%s), %s %s", r.q, r.us, r.detail, peer.name, peer.verdict))
			notes = append(notes, "DISAGREES with "+peer.name)
		}
		if r.us == "bogus" || r.us == "error" {
			notes = append(notes, r.detail)
		}
		fmt.Fprintf(&b, "%-6s %-32s %-9s %-9s %-9s %s\n", dns.TypeToString[r.q.qtype], r.q.name, r.us, r.ub, r.dlv, strings.Join(notes, "; "))
	}
	t.Log(b.String())
	st := v.Stats()
	t.Logf("Validating work for %d questions: %d queries, %d signature verifications, %d NSEC3 hashes",
		len(qs), st.Queries, st.Verifications, st.NSEC3Hashes)
	for k, x := range exp {
		if !x.seen {
			t.Logf("listed difference no longer seen: %s (ours %s, theirs %s)", k, x.ours, x.theirs)
		}
	}
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
