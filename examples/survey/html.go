package main

import (
	"html/template"
	"io"
)

// bar is one bar of an inline SVG chart.
type bar struct {
	Label string
	Count int
	Share string
	Y     int // top of the bar, in pixels
	W     int // width, in pixels
	Color string
}

// chart is one horizontal bar chart.
type chart struct {
	Title  string
	Bars   []bar
	Height int
}

const chartWidth = 480 // pixels of the longest bar

// chartColors are the colours of the bars, in order (a diverging
// palette that stays readable for the common colour vision deficiencies).
var chartColors = []string{"#1b7837", "#5aae61", "#a6dba0", "#c2a5cf", "#9970ab", "#762a83"}

func (s *Summary) charts() []chart {
	colors := chartColors
	mk := func(title string, rows []row) chart {
		c := chart{Title: title}
		most := 1
		for _, r := range rows {
			most = max(most, r.Count)
		}
		for i, r := range rows {
			c.Bars = append(c.Bars, bar{Label: r.Label, Count: r.Count, Share: s.share(r.Count), Y: 10 + 28*i,
				W: max(1, r.Count*chartWidth/most), Color: colors[i%len(colors)]})
		}
		c.Height = 20 + 28*len(rows)
		return c
	}
	groups := map[string][]row{}
	var order []string
	for _, r := range s.rows() {
		if _, ok := groups[r.Group]; !ok {
			order = append(order, r.Group)
		}
		groups[r.Group] = append(groups[r.Group], r)
	}
	var out []chart
	for _, g := range order {
		if len(groups[g]) > 1 {
			out = append(out, mk(g, groups[g]))
		}
	}
	var prov []row
	for _, p := range s.ProvidersDANE {
		prov = append(prov, row{"", p.Provider, p.DANE})
	}
	if len(prov) > 0 {
		out = append(out, mk("Providers by DANE-protected domains", prov))
	}
	return out
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>DANE and MTA-STS survey</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222;background:#fff}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:.25em .6em}
td.n{text-align:right}
svg text{font-size:13px;font-family:sans-serif}
</style></head><body>
<h1>DANE and MTA-STS survey</h1>
<p>{{.S.Domains}} domains, {{.Surveyed}} surveyed, {{.S.Errors}} errors.</p>
{{range .Charts}}<h2>{{.Title}}</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="900" height="{{.Height}}" role="img" aria-label="{{.Title}}">
{{range .Bars}}<text x="0" y="{{.Y}}" dy="15">{{.Label}}</text>
<rect x="200" y="{{.Y}}" width="{{.W}}" height="20" fill="{{.Color}}"/>
<text x="{{.W}}" dx="208" y="{{.Y}}" dy="15">{{.Count}} ({{.Share}})</text>
{{end}}</svg>
{{end}}
<h2>Counts</h2>
<table><tr><th>Category</th><th>Value</th><th>Domains</th><th>Share</th></tr>
{{range .Rows}}<tr><td>{{.Group}}</td><td>{{.Label}}</td><td class="n">{{.Count}}</td><td class="n">{{call $.Share .Count}}</td></tr>
{{end}}</table>
{{define "ranked"}}<table><tr><th>Domain</th><th>Rank</th></tr>
{{range .}}<tr><td>{{.Domain}}</td><td class="n">{{if .Rank}}{{.Rank}}{{else}}-{{end}}</td></tr>
{{else}}<tr><td colspan="2">none</td></tr>{{end}}</table>{{end}}
<h2>Top domains with DANE (full)</h2>{{template "ranked" .S.TopDANE}}
<h2>Top domains with an MTA-STS enforce policy</h2>{{template "ranked" .S.TopSTSEnforce}}
<h2>Domains with partial DANE</h2>{{template "ranked" .S.PartialDANE}}
{{define "prov"}}<table><tr><th>Provider</th><th>Domains</th><th>DANE domains</th></tr>
{{range .}}<tr><td>{{.Provider}}</td><td class="n">{{.Domains}}</td><td class="n">{{.DANE}}</td></tr>
{{else}}<tr><td colspan="3">none</td></tr>{{end}}</table>{{end}}
<h2>Providers by domains served</h2>{{template "prov" .S.Providers}}
<h2>Providers by DANE-protected domains served</h2>{{template "prov" .S.ProvidersDANE}}
{{if .S.STARTTLS}}<h2>TLSA rollover schemes (STARTTLS probes)</h2>
<table><tr><th>Scheme</th><th>MX hosts</th></tr>
{{range .Rollover}}<tr><td>{{.Label}}</td><td class="n">{{.Count}}</td></tr>{{end}}</table>{{end}}
</body></html>
`))

// writeHTML writes the summary as one self-contained page: inline CSS
// and SVG, no script, nothing fetched.
func (s *Summary) writeHTML(w io.Writer) error {
	var roll []row
	for _, k := range rolloverOrder {
		roll = append(roll, row{"", string(k), s.Rollover[k]})
	}
	return htmlTemplate.Execute(w, struct {
		S        *Summary
		Surveyed int
		Charts   []chart
		Rows     []row
		Rollover []row
		Share    func(int) string
	}{s, s.Domains - s.Errors, s.charts(), s.rows(), roll, s.share})
}
