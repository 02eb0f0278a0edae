package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// readJSONL parses a JSON Lines output, each record once.
func readJSONL(t testing.TB, data string) map[string]Record {
	t.Helper()
	got := map[string]Record{}
	for i, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r Record
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		if _, dup := got[r.Domain]; dup {
			t.Fatalf("line %d: %s written twice", i+1, r.Domain)
		}
		got[r.Domain] = r
	}
	return got
}

// checkRecords compares every record with the World's truth.
func checkRecords(t testing.TB, domains []listed, got map[string]Record) {
	t.Helper()
	if len(got) != len(domains) {
		t.Errorf("%d records for %d domains", len(got), len(domains))
	}
	bad := 0
	for _, d := range domains {
		r, ok := got[d.domain]
		want := d.want
		if want.Error == "*" {
			// The error's text is the resolver's; that there is one,
			// and nothing else, is the contract.
			if r.Error != "" {
				want.Error = r.Error
			}
			want.MX = []MXHost{}
		}
		if !ok || !reflect.DeepEqual(r, want) {
			if bad++; bad <= 10 {
				t.Errorf("%s (%s):\n got %+v\nwant %+v", d.domain, d.kind.name, r, want)
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d records wrong in all", bad)
	}
}

// wantSummary computes the summary's figures from the World's truth,
// independently of the aggregator.
func wantSummary(domains []listed, top int) Summary {
	s := Summary{MXStatus: map[string]int{}, DANE: map[string]int{}, MTASTS: map[string]int{}, Top: top,
		TopDANE: []Ranked{}, TopSTSEnforce: []Ranked{}, PartialDANE: []Ranked{}, Providers: []Provider{}, ProvidersDANE: []Provider{}}
	prov := map[string]*Provider{}
	for _, d := range domains {
		w := d.want
		s.Domains++
		if w.Error != "" {
			s.Errors++
			continue
		}
		s.MXStatus[w.MXStatus]++
		s.DANE[w.DANE]++
		s.MTASTS[w.MTASTS]++
		if w.MXSecure {
			s.MXSecure++
		}
		if w.TLSRPT {
			s.TLSRPT++
		}
		switch w.DANE {
		case "full":
			s.TopDANE = append(s.TopDANE, Ranked{w.Domain, w.Rank})
		case "partial":
			s.PartialDANE = append(s.PartialDANE, Ranked{w.Domain, w.Rank})
		}
		if w.MTASTS == "enforce" {
			s.TopSTSEnforce = append(s.TopSTSEnforce, Ranked{w.Domain, w.Rank})
		}
		if w.Provider != "" {
			if prov[w.Provider] == nil {
				prov[w.Provider] = &Provider{Provider: w.Provider}
			}
			prov[w.Provider].Domains++
			if w.DANE == "full" {
				prov[w.Provider].DANE++
			}
		}
	}
	byRank := func(l []Ranked) []Ranked {
		slices.SortFunc(l, func(a, b Ranked) int {
			if (a.Rank == 0) != (b.Rank == 0) {
				return cmp.Compare(b.Rank, a.Rank) // ranked first
			}
			return cmp.Or(cmp.Compare(a.Rank, b.Rank), strings.Compare(a.Domain, b.Domain))
		})
		return l[:min(top, len(l))]
	}
	s.TopDANE, s.PartialDANE, s.TopSTSEnforce = byRank(s.TopDANE), byRank(s.PartialDANE), byRank(s.TopSTSEnforce)
	for _, p := range prov {
		s.Providers = append(s.Providers, *p)
		if p.DANE > 0 {
			s.ProvidersDANE = append(s.ProvidersDANE, *p)
		}
	}
	slices.SortFunc(s.Providers, func(a, b Provider) int {
		return cmp.Or(b.Domains-a.Domains, b.DANE-a.DANE, strings.Compare(a.Provider, b.Provider))
	})
	slices.SortFunc(s.ProvidersDANE, func(a, b Provider) int {
		return cmp.Or(b.DANE-a.DANE, b.Domains-a.Domains, strings.Compare(a.Provider, b.Provider))
	})
	s.Providers = s.Providers[:min(top, len(s.Providers))]
	s.ProvidersDANE = s.ProvidersDANE[:min(top, len(s.ProvidersDANE))]
	return s
}

// readSummary reads a -json-summary file.
func readSummary(t testing.TB, file string) Summary {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return s
}

func checkSummary(t testing.TB, got, want Summary) {
	t.Helper()
	want.Rollover, got.Rollover = nil, nil
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("summary:\n got %s\nwant %s", g, w)
	}
}

// worldSize is the number of domains of the synthetic list: a few
// thousand, every kind more than a hundred times over; fewer with -short.
func worldSize() int {
	if testing.Short() {
		return 10 * len(kinds)
	}
	return 3000
}

// TestSurveyWorld surveys the synthetic world with in-process validation
// (the default) and checks every record against the World's truth and
// every figure of the summary against one computed from that truth.
func TestSurveyWorld(t *testing.T) {
	t.Parallel()
	sw := newSynthWorld(t, worldSize())
	dir := t.TempDir()
	list := sw.list(t, dir, sw.domains)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, js, md, page := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "s.json"), filepath.Join(dir, "s.md"), filepath.Join(dir, "s.html")
	start, q0 := time.Now(), sw.w.QueryCount()
	runSurvey(t, ctx, sw.args("-out", out, "-json-summary", js, "-summary", md, "-html", page, "-concurrency", "32", list), sw.hooks())
	t.Logf("%d domains in %v, %.1f queries per domain", len(sw.domains), time.Since(start).Round(time.Millisecond),
		float64(sw.w.QueryCount()-q0)/float64(len(sw.domains)))
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, sw.domains, readJSONL(t, string(b)))
	want := wantSummary(sw.domains, 20)
	checkSummary(t, readSummary(t, js), want)
	for _, k := range kinds {
		if n := countKind(sw.domains, k.name); n < 10 {
			t.Errorf("kind %s: %d domains, the mix is too thin", k.name, n)
		}
	}
	mdText, _ := os.ReadFile(md)
	for _, s := range []string{"| DANE | full |", "| Domain | Rank |", "## Providers by DANE-protected domains served"} {
		if !strings.Contains(string(mdText), s) {
			t.Errorf("Markdown summary lacks %q", s)
		}
	}
}

func countKind(domains []listed, name string) int {
	n := 0
	for _, d := range domains {
		if d.kind.name == name {
			n++
		}
	}
	return n
}

// TestSurveyTrustAD surveys a smaller mix with -trust-ad: the Stub
// believes the AD bit of the World's validating front, and a bogus TLSA
// RRset is a SERVFAIL with an Extended DNS Error there. The records must
// be the same as with in-process validation.
func TestSurveyTrustAD(t *testing.T) {
	t.Parallel()
	sw := newSynthWorld(t, 2*len(kinds))
	dir := t.TempDir()
	list := sw.list(t, dir, sw.domains)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js := filepath.Join(dir, "s.json")
	out, _ := runSurvey(t, ctx, []string{"-resolver", sw.w.DNSAddr(), "-trust-ad", "-ca", sw.ca, "-json-summary", js, list}, sw.hooks())
	checkRecords(t, sw.domains, readJSONL(t, out))
	checkSummary(t, readSummary(t, js), wantSummary(sw.domains, 20))
}

// TestSurveyResume: a run stopped by an interrupt writes only whole
// records of the domains it finished (none for the domains it cut
// short), and -resume surveys only the others, drops a line cut short
// by a crash, and ends with every domain once and the summary of one
// uninterrupted run.
func TestSurveyResume(t *testing.T) {
	t.Parallel()
	sw := newSynthWorld(t, 4*len(kinds))
	dir := t.TempDir()
	list := sw.list(t, dir, sw.domains)
	out := filepath.Join(dir, "out.jsonl")
	// Slow answers, so that the interrupt lands mid-run.
	sw.w.SetDelay(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if b, _ := os.ReadFile(out); strings.Count(string(b), "\n") >= 10 {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var stdout, stderr strings.Builder
	code := run(ctx, sw.args("-out", out, "-concurrency", "4", list), strings.NewReader(""), &stdout, &stderr, sw.hooks())
	if code != 1 || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("interrupted run: exit %d, want 1 with a message:\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	first := readJSONL(t, string(b))
	if len(first) < 10 || len(first) >= len(sw.domains) {
		t.Fatalf("the interrupted run wrote %d records of %d", len(first), len(sw.domains))
	}
	var done []listed
	for _, d := range sw.domains {
		if _, ok := first[d.domain]; ok {
			done = append(done, d)
		}
	}
	checkRecords(t, done, first) // no record of a domain cut short
	// A crash in the middle of a line.
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"domain":"d00000.cut.test","mx_sta`)
	f.Close()

	sw.w.SetDelay(0)
	before := map[string]int64{}
	for _, d := range sw.domains {
		before[d.domain] = sw.w.QueryCountFor(d.domain, dns.TypeMX)
	}
	js := filepath.Join(dir, "s.json")
	runSurvey(t, context.Background(), sw.args("-out", out, "-resume", "-json-summary", js, list), sw.hooks())
	for _, d := range done {
		if n := sw.w.QueryCountFor(d.domain, dns.TypeMX) - before[d.domain]; n != 0 {
			t.Errorf("%s was done, and -resume asked for its MX again (%d queries)", d.domain, n)
		}
	}
	b, _ = os.ReadFile(out)
	checkRecords(t, sw.domains, readJSONL(t, string(b)))
	checkSummary(t, readSummary(t, js), wantSummary(sw.domains, 20))
}

// TestSurveyShardMerge: n shards split the list exactly, and -merge of
// their outputs gives the summary of one run; merging a file twice
// counts it once.
func TestSurveyShardMerge(t *testing.T) {
	t.Parallel()
	sw := newSynthWorld(t, 6*len(kinds))
	dir := t.TempDir()
	list := sw.list(t, dir, sw.domains)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 3
	var files []string
	seen := map[string]int{}
	for i := 1; i <= n; i++ {
		f := filepath.Join(dir, "shard"+string(rune('0'+i))+".jsonl")
		runSurvey(t, ctx, sw.args("-shard", string(rune('0'+i))+"/3", "-out", f, list), sw.hooks())
		b, _ := os.ReadFile(f)
		recs := readJSONL(t, string(b))
		if len(recs) == 0 || len(recs) == len(sw.domains) {
			t.Errorf("shard %d/%d: %d records of %d", i, n, len(recs), len(sw.domains))
		}
		for d := range recs {
			seen[d]++
		}
		files = append(files, f)
	}
	for _, d := range sw.domains {
		if seen[d.domain] != 1 {
			t.Errorf("%s is in %d shards", d.domain, seen[d.domain])
		}
	}
	js, merged := filepath.Join(dir, "merged.json"), filepath.Join(dir, "merged.jsonl")
	// The first file twice: counted once.
	runSurvey(t, ctx, append([]string{"-merge", "-json-summary", js, "-out", merged}, append(files, files[0])...), hooks{})
	checkSummary(t, readSummary(t, js), wantSummary(sw.domains, 20))
	b, _ := os.ReadFile(merged)
	checkRecords(t, sw.domains, readJSONL(t, string(b)))

	// Without a summary flag, the Markdown summary goes to stdout.
	md, _ := runSurvey(t, ctx, append([]string{"-merge"}, files...), hooks{})
	if !strings.Contains(md, "# Survey summary") || !strings.Contains(md, "| DANE | full |") {
		t.Errorf("-merge without a summary flag wrote:\n%s", md)
	}
}

// TestSurveyBadLines: lines that are not domains are reported with their
// line number and skipped; the others are surveyed.
func TestSurveyBadLines(t *testing.T) {
	t.Parallel()
	sw := newSynthWorld(t, len(kinds))
	dir := t.TempDir()
	good := sw.domains[:3]
	lines := []string{
		"\ufeff# a Tranco list, with a byte order mark", // 1
		"1," + good[0].domain,                           // 2
		"",                                              // 3
		"0,zero.test",                                   // 4: rank not positive
		"x,letters.test",                                // 5: rank not a number
		"bad..name.test",                                // 6: empty label
		"localhost",                                     // 7: a single label
		"3," + good[1].domain + "\r",                    // 8: CRLF tolerated
		strings.Repeat("a", 3000) + ".test",             // 9: over-long line
		"192.0.2.1",                                     // 10: an address
		"  " + good[2].domain + "  ",                    // 11
		"\x1b[31mred.test",                              // 12: a terminal escape
	}
	list := writeTemp(t, dir, "list.txt", strings.Join(lines, "\n"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, stderr := runSurvey(t, ctx, sw.args(list), sw.hooks())
	wantBad := []int{4, 5, 6, 7, 9, 10, 12}
	var gotBad []int
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var n int
		rest, ok := strings.CutPrefix(l, "survey: "+list+":")
		if !ok || !strings.HasSuffix(l, "(skipped)") {
			t.Errorf("stderr line %q", l)
			continue
		}
		if _, err := fmt.Sscanf(rest, "%d:", &n); err != nil {
			t.Errorf("stderr line %q: no line number", l)
		}
		gotBad = append(gotBad, n)
		if strings.ContainsRune(l, 0x1b) {
			t.Errorf("stderr line %q carries a terminal escape", l)
		}
	}
	if !slices.Equal(gotBad, wantBad) {
		t.Errorf("bad lines reported %v, want %v\n%s", gotBad, wantBad, stderr)
	}
	recs := readJSONL(t, out)
	want := []listed{good[0], good[1], good[2]}
	want[0].want.Rank, want[1].want.Rank, want[2].want.Rank = 1, 3, 0
	checkRecords(t, want, recs)
}

// TestSurveyQPS: -qps bounds every query the World's DNS front receives
// from the survey, the validator's DS and DNSKEY queries and the start-up
// probe included: at most one at once, then qps per second.
func TestSurveyQPS(t *testing.T) {
	t.Parallel()
	sw := newSynthWorld(t, len(kinds))
	dir := t.TempDir()
	list := sw.list(t, dir, sw.domains[:10])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const qps = 50
	before := sw.w.QueryCount()
	start := time.Now()
	runSurvey(t, ctx, sw.args("-qps", fmt.Sprint(qps), "-concurrency", "8", list), sw.hooks())
	el := time.Since(start)
	n := sw.w.QueryCount() - before
	limit := 1 + int64(qps*el.Seconds())
	t.Logf("%d queries in %v (%.1f/s), limit %d", n, el.Round(time.Millisecond), float64(n)/el.Seconds(), limit)
	if n < 2*qps/5 {
		t.Fatalf("only %d queries: too few to tell a limit", n)
	}
	if n > limit {
		t.Errorf("%d queries in %v: more than %d at %d/s", n, el, limit, qps)
	}
}

func TestProvider(t *testing.T) {
	for host, want := range map[string]string{
		"mx1.danehost.test":           "danehost.test",
		"mx.mail.example.co.uk":       "example.co.uk",
		"aspmx.l.google.com":          "google.com",
		"example.com":                 "example.com",
		"192.0.2.44":                  "", // an MX target that is not a host name
		"co.uk":                       "", // a public suffix
		"xn--mnchen-3ya.example.test": "example.test",
	} {
		if got := provider(host); got != want {
			t.Errorf("provider(%q) = %q, want %q", host, got, want)
		}
	}
}

// TestSurveyStdin: "-" reads the list from standard input; the records
// go to standard output.
func TestSurveyStdin(t *testing.T) {
	t.Parallel()
	sw := newSynthWorld(t, len(kinds))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var in strings.Builder
	for _, d := range sw.domains[:4] {
		if d.rank > 0 {
			fmt.Fprintf(&in, "%d,", d.rank)
		}
		in.WriteString(d.domain + "\n")
	}
	var out, errb strings.Builder
	if code := run(ctx, sw.args("-"), strings.NewReader(in.String()), &out, &errb, sw.hooks()); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	checkRecords(t, sw.domains[:4], readJSONL(t, out.String()))
}
