package peers

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated disagreement table in README.md")

const (
	readmeFile  = "README.md"
	tableBegin  = "<!-- BEGIN GENERATED: go test -run TestDisagreements -update -->"
	tableEnd    = "<!-- END GENERATED -->"
	maxShownLen = 110
)

// judgementKey identifies a disagreement for the judgement table: the
// exact input, except for DANE, whose input is a certificate chain and is
// identified by its OpenSSL case number.
func judgementKey(c vcase) string {
	if c.area == areaDANE {
		return c.area + "\x00" + c.id
	}
	return c.area + "\x00" + c.input
}

type areaSummary struct {
	area             string
	compared, differ int
}

// TestDisagreements runs the shared vectors through smtptls and mox and
// lists every case where their outcomes differ, with the RFC section that
// settles it (judgements_test.go). It fails when a disagreement has no
// judgement, when a judgement matches no disagreement any more, or when
// the table in README.md is not what this run generates (-update rewrites
// it).
func TestDisagreements(t *testing.T) {
	t.Parallel()
	areas := []struct {
		area  string
		cases func(*testing.T) []vcase
	}{
		{areaRecord, recordCases},
		{areaPolicy, policyCases},
		{areaMatch, matchCases},
		{areaTLSRPT, tlsrptCases},
		{areaDANE, daneCases},
	}
	verdicts := map[string]verdict{}
	used := map[string]bool{}
	for _, j := range judgements {
		for _, in := range j.inputs {
			k := j.area + "\x00" + in
			if _, dup := verdicts[k]; dup {
				t.Fatalf("input judged twice: %s %q", j.area, in)
			}
			verdicts[k] = j.verdict
		}
	}
	var summary []areaSummary
	var diffs []vcase
	for _, a := range areas {
		cs := a.cases(t)
		if len(cs) == 0 {
			t.Fatalf("%s: no vectors", a.area)
		}
		s := areaSummary{area: a.area, compared: len(cs)}
		for _, c := range cs {
			if c.ours == c.mox {
				continue
			}
			s.differ++
			diffs = append(diffs, c)
			k := judgementKey(c)
			v, ok := verdicts[k]
			if !ok {
				t.Errorf("unexplained disagreement, add a judgement: %s %s: input %q; source: %s; smtptls: %s; mox: %s %s",
					c.area, c.id, c.input, c.says, c.ours, c.mox, c.notes)
				continue
			}
			used[k] = true
			t.Logf("[%s] %s %s: input %q; source: %s; smtptls: %s; mox: %s; %s favours %s %s",
				v.ref, c.area, c.id, c.input, c.says, c.ours, c.mox, v.rfc, v.favours, c.notes)
		}
		summary = append(summary, s)
	}
	for k := range verdicts {
		if !used[k] {
			area, in, _ := strings.Cut(k, "\x00")
			t.Errorf("stale judgement: %s %q no longer disagrees (or is no longer in the vectors)", area, in)
		}
	}
	total := 0
	for _, s := range summary {
		total += s.compared
	}
	t.Logf("%d vectors compared, %d disagreements", total, len(diffs))
	if t.Failed() {
		return
	}
	checkReadme(t, renderTable(summary, diffs, verdicts))
}

func renderTable(summary []areaSummary, diffs []vcase, verdicts map[string]verdict) string {
	var b strings.Builder
	b.WriteString("| Area | Vectors compared | Same outcome | Different outcome |\n| --- | ---: | ---: | ---: |\n")
	for _, s := range summary {
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", s.area, s.compared, s.compared-s.differ, s.differ)
	}
	b.WriteString("\n| Area | Vector | Input | Source asserts | smtptls | mox | Verdict |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	var refs []string
	seen := map[string]verdict{}
	for _, c := range diffs {
		v := verdicts[judgementKey(c)]
		if _, ok := seen[v.ref]; !ok {
			seen[v.ref] = v
			refs = append(refs, v.ref)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s: %s |\n",
			c.area, cell(c.id), code(c.input), cell(c.says), outcome(c.ours), outcome(c.mox), v.ref, v.favours)
	}
	b.WriteString("\nVerdicts:\n\n")
	for _, r := range refs {
		v := seen[r]
		fmt.Fprintf(&b, "- **%s** (favours %s) %s. %s\n", r, v.favours, v.rfc, v.why)
	}
	return b.String()
}

// code shows s as a Go-quoted code span, shortened, with the table's
// column separator escaped.
func code(s string) string {
	q := strconv.Quote(s)
	if len(q) > maxShownLen {
		q = q[:maxShownLen] + "…"
	}
	return "`" + strings.ReplaceAll(q, "|", `\|`) + "`"
}

// outcome shows an adapter outcome (already printable: extension values in
// it are quoted) as a code span.
func outcome(s string) string { return "`" + strings.ReplaceAll(s, "|", `\|`) + "`" }

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// checkReadme compares the generated section of README.md with table, or
// rewrites it under -update.
func checkReadme(t *testing.T, table string) {
	t.Helper()
	old, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(old, []byte(tableBegin))
	j := bytes.Index(old, []byte(tableEnd))
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q section", readmeFile, tableBegin, tableEnd)
	}
	var out bytes.Buffer
	out.Write(old[:i+len(tableBegin)])
	out.WriteString("\n\n" + table + "\n")
	out.Write(old[j:])
	if bytes.Equal(out.Bytes(), old) {
		return
	}
	if !*update {
		t.Errorf("the disagreement table in %s is out of date; run: go test -run TestDisagreements -update", readmeFile)
		return
	}
	if err := os.WriteFile(readmeFile, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote the disagreement table in %s", readmeFile)
}
