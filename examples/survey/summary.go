package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/smtptls/smtptls/examples/internal/rollover"
)

// Summary is the survey's summary, as -json-summary writes it. The
// Markdown (-summary) and HTML (-html) reports show the same figures.
type Summary struct {
	// Domains counts the records, Errors those with an error; every
	// other count is over the Domains-Errors surveyed ones.
	Domains int `json:"domains"`
	Errors  int `json:"errors"`
	// MXStatus, DANE and MTASTS count records per value of the field of
	// the same name; MXSecure and TLSRPT count records where it is true.
	MXStatus map[string]int `json:"mx_status"`
	MXSecure int            `json:"mx_secure"`
	DANE     map[string]int `json:"dane"`
	MTASTS   map[string]int `json:"mta_sts"`
	TLSRPT   int            `json:"tls_rpt"`
	// TopDANE and TopSTSEnforce are the first Top domains by rank (then
	// name; unranked after ranked) with full DANE, and with an MTA-STS
	// enforce policy; PartialDANE the first Top with partial DANE (the
	// DANE map has their total).
	TopDANE       []Ranked `json:"top_dane"`
	TopSTSEnforce []Ranked `json:"top_mta_sts_enforce"`
	PartialDANE   []Ranked `json:"partial_dane"`
	// Providers are the first Top providers by domains served, and
	// ProvidersDANE by DANE-protected (full) domains served.
	Providers     []Provider `json:"providers"`
	ProvidersDANE []Provider `json:"providers_dane"`
	// STARTTLS reports that the records carry STARTTLS probes
	// (-starttls): only then is Rollover meaningful.
	STARTTLS bool `json:"starttls"`
	// Rollover counts the MX hosts of surveyed domains (a host once per
	// domain it serves) with usable TLSA records and a TLS handshake, per
	// rollover scheme seen (MXHost.Rollover); empty without -starttls.
	Rollover map[rollover.Scheme]int `json:"rollover"`
	// Top is the length bound of the lists.
	Top int `json:"top"`
}

// Ranked is a domain and its rank (0: none given).
type Ranked struct {
	// Domain is the domain (Record.Domain).
	Domain string `json:"domain"`
	// Rank is its rank in the list; absent when the list gave none.
	Rank int `json:"rank,omitempty"`
}

// Provider is a provider (the registered domain of MX hosts) and the
// domains it serves.
type Provider struct {
	// Provider is the registered domain (Record.Provider).
	Provider string `json:"provider"`
	// Domains counts the surveyed domains whose most preferred MX host
	// it holds.
	Domains int `json:"domains"`
	// DANE counts those of them with full DANE.
	DANE int `json:"dane"`
}

// aggregator builds a Summary from records in any order; its memory is
// bounded by the lists' length and the number of providers.
type aggregator struct {
	s         Summary
	top       int
	providers map[string]*Provider
}

func newAggregator(top int) *aggregator {
	return &aggregator{top: top, providers: map[string]*Provider{}, s: Summary{
		MXStatus: map[string]int{}, DANE: map[string]int{}, MTASTS: map[string]int{}, Rollover: map[rollover.Scheme]int{}, Top: top,
		TopDANE: []Ranked{}, TopSTSEnforce: []Ranked{}, PartialDANE: []Ranked{},
	}}
}

func rankedCmp(a, b Ranked) int {
	ar, br := a.Rank, b.Rank
	if ar == 0 {
		ar = int(^uint(0) >> 1)
	}
	if br == 0 {
		br = int(^uint(0) >> 1)
	}
	return cmp.Or(cmp.Compare(ar, br), strings.Compare(a.Domain, b.Domain))
}

// keep adds r to a list kept to the first top by rankedCmp: it grows to
// twice that, then is sorted and cut, so adding costs O(log top) amortised.
func (a *aggregator) keep(l *[]Ranked, r Ranked) {
	*l = append(*l, r)
	if len(*l) >= 2*a.top+2 {
		slices.SortFunc(*l, rankedCmp)
		*l = (*l)[:a.top]
	}
}

func (a *aggregator) add(r *Record) {
	a.s.Domains++
	if r.Error != "" {
		a.s.Errors++
		return
	}
	a.s.MXStatus[r.MXStatus]++
	a.s.DANE[r.DANE]++
	a.s.MTASTS[r.MTASTS]++
	if r.MXSecure {
		a.s.MXSecure++
	}
	if r.TLSRPT {
		a.s.TLSRPT++
	}
	rk := Ranked{r.Domain, r.Rank}
	switch r.DANE {
	case daneFull:
		a.keep(&a.s.TopDANE, rk)
	case danePartial:
		a.keep(&a.s.PartialDANE, rk)
	}
	if r.MTASTS == stsEnforce {
		a.keep(&a.s.TopSTSEnforce, rk)
	}
	if r.Provider != "" {
		p := a.providers[r.Provider]
		if p == nil {
			p = &Provider{Provider: r.Provider}
			a.providers[r.Provider] = p
		}
		p.Domains++
		if r.DANE == daneFull {
			p.DANE++
		}
	}
	for _, m := range r.MX {
		if m.STARTTLS != "" {
			a.s.STARTTLS = true
		}
		if m.Rollover != "" {
			a.s.Rollover[m.Rollover]++
		}
	}
}

// summary returns the Summary of the records added so far.
func (a *aggregator) summary() Summary {
	s := a.s
	for _, l := range []*[]Ranked{&s.TopDANE, &s.TopSTSEnforce, &s.PartialDANE} {
		*l = slices.Clone(*l)
		slices.SortFunc(*l, rankedCmp)
		if len(*l) > a.top {
			*l = (*l)[:a.top]
		}
	}
	all := make([]Provider, 0, len(a.providers))
	for _, p := range a.providers {
		all = append(all, *p)
	}
	byDomains := slices.SortedFunc(slices.Values(all), func(x, y Provider) int {
		return cmp.Or(cmp.Compare(y.Domains, x.Domains), cmp.Compare(y.DANE, x.DANE), strings.Compare(x.Provider, y.Provider))
	})
	s.Providers = append([]Provider{}, byDomains[:min(a.top, len(byDomains))]...)
	s.ProvidersDANE = []Provider{}
	byDANE := slices.SortedFunc(slices.Values(all), func(x, y Provider) int {
		return cmp.Or(cmp.Compare(y.DANE, x.DANE), cmp.Compare(y.Domains, x.Domains), strings.Compare(x.Provider, y.Provider))
	})
	for _, p := range byDANE {
		if p.DANE == 0 || len(s.ProvidersDANE) == a.top {
			break
		}
		s.ProvidersDANE = append(s.ProvidersDANE, p)
	}
	return s
}

// row is one line of the counts table.
type row struct {
	Group, Label string
	Count        int
}

// rows lists the counts table: every category in a fixed order.
func (s *Summary) rows() []row {
	var out []row
	add := func(g string, m map[string]int, keys ...string) {
		for _, k := range keys {
			out = append(out, row{g, k, m[k]})
		}
	}
	add("MX", s.MXStatus, mxOK, mxImplicit, mxNull, mxNXDomain)
	out = append(out, row{"MX", "secure (DNSSEC)", s.MXSecure})
	add("DANE", s.DANE, daneFull, danePartial, daneNone)
	add("MTA-STS", s.MTASTS, stsEnforce, stsTesting, stsNone, stsInvalid, stsAbsent)
	out = append(out, row{"TLS-RPT", "valid record", s.TLSRPT})
	return out
}

// share formats n as a share of the surveyed domains.
func (s *Summary) share(n int) string {
	if d := s.Domains - s.Errors; d > 0 {
		return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(d))
	}
	return "-"
}

func rankText(r int) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprint(r)
}

// rolloverOrder is the order the rollover schemes are shown in: the two
// that domain owners are advised to publish first.
var rolloverOrder = []rollover.Scheme{rollover.CurrentNext, rollover.CurrentIssuer, rollover.IssuerOnly, rollover.None, rollover.NoMatch}

// writeJSON writes the summary as indented JSON.
func (s *Summary) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// writeMarkdown writes the summary as Markdown tables.
func (s *Summary) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Survey summary\n\n%d domains, %d surveyed, %d errors.\n\n", s.Domains, s.Domains-s.Errors, s.Errors)
	b.WriteString("| Category | Value | Domains | Share |\n| --- | --- | ---: | ---: |\n")
	for _, r := range s.rows() {
		fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", r.Group, r.Label, r.Count, s.share(r.Count))
	}
	ranked := func(title string, l []Ranked, total int) {
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		if len(l) == 0 {
			b.WriteString("None.\n")
			return
		}
		b.WriteString("| Domain | Rank |\n| --- | ---: |\n")
		for _, r := range l {
			fmt.Fprintf(&b, "| %s | %s |\n", r.Domain, rankText(r.Rank))
		}
		if total > len(l) {
			fmt.Fprintf(&b, "\nand %d more.\n", total-len(l))
		}
	}
	ranked("Top domains with DANE (full)", s.TopDANE, s.DANE[daneFull])
	ranked("Top domains with an MTA-STS enforce policy", s.TopSTSEnforce, s.MTASTS[stsEnforce])
	ranked("Domains with partial DANE", s.PartialDANE, s.DANE[danePartial])
	prov := func(title string, l []Provider) {
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		if len(l) == 0 {
			b.WriteString("None.\n")
			return
		}
		b.WriteString("| Provider | Domains | DANE domains |\n| --- | ---: | ---: |\n")
		for _, p := range l {
			fmt.Fprintf(&b, "| %s | %d | %d |\n", p.Provider, p.Domains, p.DANE)
		}
	}
	prov("Providers by domains served", s.Providers)
	prov("Providers by DANE-protected domains served", s.ProvidersDANE)
	if s.STARTTLS {
		b.WriteString("\n## TLSA rollover schemes (STARTTLS probes)\n\n| Scheme | MX hosts |\n| --- | ---: |\n")
		for _, k := range rolloverOrder {
			fmt.Fprintf(&b, "| %s | %d |\n", k, s.Rollover[k])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
