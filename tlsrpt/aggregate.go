package tlsrpt

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smtptls/smtptls/internal/dnsname"
)

// Defaults for the zero values of the Aggregator's limits.
const (
	DefaultMaxDays           = 3
	DefaultMaxPolicies       = 10000
	DefaultMaxFailureDetails = 100
	DefaultMaxMemory         = 64 << 20
)

// Fixed bounds on what one event may store. Policies and failure details
// carry text from peers (an MTA-STS policy file of up to 64 KiB, an EHLO
// name, an alert text), so every stored string is cut short.
const (
	maxField         = 255  // any single string of a failure detail, a name
	maxPolicyString  = 1024 // one policy-string
	maxPolicyStrings = 64   // policy-strings per policy
	maxMXHosts       = 64   // mx-host entries per policy
	maxOverflowRows  = 16   // summary rows for failures beyond MaxFailureDetails
	rowOverhead      = 160  // approximate bytes of a map entry and struct
)

// OverflowReasonCode is the failure-reason-code of the rows that sum up
// the failures an Aggregator could not keep a row of their own for (one
// row per result type; see Aggregator.MaxFailureDetails).
const OverflowReasonCode = "details-truncated"

// Aggregator counts TLS sessions per UTC day and per (policy domain,
// policy) and builds the daily reports of RFC 8460 4. It is safe for
// concurrent use, and its memory is bounded by its limits, each of which
// defaults at its zero value. Set the fields before first use and do not
// change them afterwards.
//
// A sender calls Success or Failure once per session, with the policy
// that applied (RFC 8460 4.2) and the session's time, and after each UTC
// day ends (RFC 8460 4.1 suggests waiting some hours) calls Flush, or
// Reports then Drop, and delivers each report to the rua destinations of
// its policy domain (see Submitter and Message).
//
// Sessions that deliver a report by e-mail must not be counted: RFC 8460
// 3 says they SHOULD NOT appear in the next report, which also keeps a
// failing rua destination from producing a report about a report.
type Aggregator struct {
	// MaxDays is the number of UTC days kept. When a session arrives for
	// a new day and MaxDays are held, the oldest day is discarded, with
	// its counts (Stats.EvictedDays); a session older than every day held
	// is then not counted (Stats.Dropped). Zero means DefaultMaxDays
	// (today, yesterday waiting to be reported, and one spare). Reports
	// are lost if Flush runs less often than MaxDays-1 days.
	MaxDays int
	// MaxPolicies caps the distinct (policy domain, policy) entries of one
	// day. Sessions under a policy not yet held when the cap is reached
	// are not counted (Stats.Dropped). Zero means DefaultMaxPolicies.
	// A peer can create entries by publishing ever new policies, so a
	// large cap costs memory (see MaxMemory) and a small one loses the
	// counts of legitimate domains on busy days.
	MaxPolicies int
	// MaxFailureDetails caps the failure-details rows of one policy per
	// day; a row is a distinct combination of the failure's fields
	// (result-type, sending IP, receiving MX, receiving EHLO name,
	// receiving IP, additional-information, failure-reason-code). A failure
	// that would need a new row beyond the cap is still counted in the
	// policy's total-failure-session-count and in a summary row for its
	// result type that has only the count and the failure-reason-code
	// OverflowReasonCode (at most 16 such rows; Stats.TruncatedDetails).
	// Zero means DefaultMaxFailureDetails.
	MaxFailureDetails int
	// MaxMemory bounds the approximate bytes held by all days (strings and
	// bookkeeping). A session that would need a new policy entry or a new
	// failure row beyond it is handled as if the count caps were reached.
	// Zero means DefaultMaxMemory (64 MiB).
	MaxMemory int64
	// Node names this aggregator among several of one organization (a
	// host name, say); it becomes part of every report-id so that a
	// receiver does not drop the reports of different nodes as
	// duplicates. Only letters, digits, "-" and "." are kept. Empty means
	// a single reporting node.
	Node string

	mu    sync.Mutex // guards days, bytes and stats
	days  map[int64]*aggDay
	bytes int64
	stats Stats
}

// Stats are an Aggregator's counters, for monitoring.
type Stats struct {
	// Days, Policies and Bytes describe what is held now.
	Days int
	// Policies is the number of (day, policy) counters held.
	Policies int
	// Bytes estimates the memory the counters hold.
	Bytes int64
	// Dropped counts sessions that were not counted at all: invalid
	// policy, too old a day, or a policy entry refused by MaxPolicies or
	// MaxMemory.
	Dropped int64
	// TruncatedDetails counts failures counted in their policy's totals
	// but without a failure-details row of their own.
	TruncatedDetails int64
	// EvictedDays counts days discarded unreported to make room.
	EvictedDays int64
}

type aggDay struct {
	start    time.Time
	policies map[string]*aggPolicy
}

type aggPolicy struct {
	policy   Policy
	success  int64
	failure  int64
	details  map[FailureDetails]*int64 // key has FailedSessionCount 0
	overflow map[ResultType]int64
}

// Success counts one session to p's domain that negotiated TLS as p
// requires, on the UTC day of now. p.Domain may be in any case, with a
// trailing dot or U-labels; reports carry lowercase A-labels. A policy
// whose type is not one of the three of RFC 8460 4.4, or whose domain is
// not a domain name, is not counted (Stats.Dropped). Policy strings are
// kept up to 64 strings of 1 KiB each, MX patterns up to 64.
func (a *Aggregator) Success(p Policy, now time.Time) {
	a.add(p, nil, now)
}

// Failure counts one session to p's domain that failed as d describes, on
// the UTC day of now. d.FailedSessionCount is ignored; strings are
// canonicalised (IP addresses in RFC 5952 form, names lowercase without
// the trailing dot) and cut to 255 bytes. A failure without a ResultType
// is counted as ValidationFailure.
func (a *Aggregator) Failure(p Policy, d FailureDetails, now time.Time) {
	a.add(p, &d, now)
}

func (a *Aggregator) add(p Policy, d *FailureDetails, now time.Time) {
	np, ok := canonPolicy(p)
	key := ""
	if ok {
		key = policyKey(&np)
	}
	var row FailureDetails
	if d != nil {
		row = canonDetails(*d)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if !ok {
		a.stats.Dropped++
		return
	}
	day := a.dayFor(now)
	if day == nil {
		a.stats.Dropped++
		return
	}
	ap := day.policies[key]
	if ap == nil {
		size := policySize(&np)
		if len(day.policies) >= or(a.MaxPolicies, DefaultMaxPolicies) || a.bytes+size > or64(a.MaxMemory, DefaultMaxMemory) {
			a.stats.Dropped++
			return
		}
		ap = &aggPolicy{policy: np, details: map[FailureDetails]*int64{}}
		day.policies[key] = ap
		a.bytes += size
	}
	if d == nil {
		ap.success++
		return
	}
	ap.failure++
	if n := ap.details[row]; n != nil {
		*n++
		return
	}
	size := detailSize(&row)
	if len(ap.details) < or(a.MaxFailureDetails, DefaultMaxFailureDetails) && a.bytes+size <= or64(a.MaxMemory, DefaultMaxMemory) {
		n := int64(1)
		ap.details[row] = &n
		a.bytes += size
		return
	}
	a.stats.TruncatedDetails++
	if _, ok := ap.overflow[row.ResultType]; ok || len(ap.overflow) < maxOverflowRows {
		if ap.overflow == nil {
			ap.overflow = map[ResultType]int64{}
		}
		ap.overflow[row.ResultType]++
	}
}

// dayFor returns the day holding now, creating it (and evicting the
// oldest day if needed), or nil if now is older than every day held and
// no room is left.
func (a *Aggregator) dayFor(now time.Time) *aggDay {
	start := now.UTC().Truncate(24 * time.Hour)
	k := start.Unix() / 86400
	if d := a.days[k]; d != nil {
		return d
	}
	if a.days == nil {
		a.days = map[int64]*aggDay{}
	}
	if len(a.days) >= or(a.MaxDays, DefaultMaxDays) {
		oldest := k
		for dk := range a.days {
			oldest = min(oldest, dk)
		}
		if oldest == k {
			return nil
		}
		a.dropLocked(oldest)
		a.stats.EvictedDays++
	}
	d := &aggDay{start: start, policies: map[string]*aggPolicy{}}
	a.days[k] = d
	return d
}

func (a *Aggregator) dropLocked(k int64) {
	d := a.days[k]
	if d == nil {
		return
	}
	for _, p := range d.policies {
		a.bytes -= policySize(&p.policy)
		for r := range p.details {
			a.bytes -= detailSize(&r)
		}
	}
	delete(a.days, k)
}

// Days returns the start (UTC midnight) of every day held, oldest first.
func (a *Aggregator) Days() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []time.Time
	for _, d := range a.days {
		out = append(out, d.start)
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// Reports returns the reports of the UTC day that contains day: one per
// policy domain, sorted by domain, each with every policy of that domain
// seen that day. Call it for a day that has ended (RFC 8460 4.1); for the
// current day it returns the counts so far. org and contact fill
// organization-name and contact-info. The report-id is stable and unique
// per (day, domain, Node): "<YYYY-MM-DD>_<domain>[_<node>]". Reports does
// not remove the day; see Drop and Flush.
func (a *Aggregator) Reports(day time.Time, org, contact string) []Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.days[day.UTC().Truncate(24*time.Hour).Unix()/86400]
	if d == nil {
		return nil
	}
	return a.reportsLocked(d, org, contact)
}

func (a *Aggregator) reportsLocked(d *aggDay, org, contact string) []Report {
	byDomain := map[string][]PolicyResult{}
	for _, ap := range d.policies {
		byDomain[ap.policy.Domain] = append(byDomain[ap.policy.Domain], ap.result())
	}
	domains := make([]string, 0, len(byDomain))
	for dom := range byDomain {
		domains = append(domains, dom)
	}
	slices.Sort(domains)
	node := nodeToken(a.Node)
	out := make([]Report, 0, len(domains))
	for _, dom := range domains {
		prs := byDomain[dom]
		slices.SortFunc(prs, func(x, y PolicyResult) int { return comparePolicy(&x.Policy, &y.Policy) })
		id := d.start.Format("2006-01-02") + "_" + dom
		if node != "" {
			id += "_" + node
		}
		out = append(out, Report{
			OrganizationName: org,
			DateRange:        DateRange{Start: d.start, End: d.start.Add(24*time.Hour - time.Second)},
			ContactInfo:      contact,
			ReportID:         id,
			Policies:         prs,
		})
	}
	return out
}

func (ap *aggPolicy) result() PolicyResult {
	pr := PolicyResult{
		Policy:  clonePolicy(ap.policy),
		Summary: Summary{TotalSuccessfulSessionCount: ap.success, TotalFailureSessionCount: ap.failure},
	}
	for r, n := range ap.details {
		r.FailedSessionCount = *n
		pr.FailureDetails = append(pr.FailureDetails, r)
	}
	slices.SortFunc(pr.FailureDetails, compareDetails)
	var over []FailureDetails
	for rt, n := range ap.overflow {
		over = append(over, FailureDetails{ResultType: rt, FailedSessionCount: n, FailureReasonCode: OverflowReasonCode})
	}
	slices.SortFunc(over, compareDetails)
	pr.FailureDetails = append(pr.FailureDetails, over...)
	return pr
}

// Drop removes the UTC day that contains day.
func (a *Aggregator) Drop(day time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dropLocked(day.UTC().Truncate(24*time.Hour).Unix() / 86400)
}

// Flush returns the reports of every day held that ended before the UTC
// day of now, oldest day first, and removes those days. Reports the
// caller fails to deliver are its to keep or retry (RFC 8460 5.5 suggests
// retrying for up to a day).
func (a *Aggregator) Flush(now time.Time, org, contact string) []Report {
	today := now.UTC().Truncate(24*time.Hour).Unix() / 86400
	a.mu.Lock()
	defer a.mu.Unlock()
	var keys []int64
	for k := range a.days {
		if k < today {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []Report
	for _, k := range keys {
		out = append(out, a.reportsLocked(a.days[k], org, contact)...)
		a.dropLocked(k)
	}
	return out
}

// Stats returns the current counters.
func (a *Aggregator) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Days = len(a.days)
	for _, d := range a.days {
		s.Policies += len(d.policies)
	}
	s.Bytes = a.bytes
	return s
}

// canonPolicy returns p in canonical form with bounded strings, or false
// if p cannot be reported (unknown type or invalid domain).
func canonPolicy(p Policy) (Policy, bool) {
	switch p.Type {
	case PolicyTLSA, PolicySTS, PolicyNoPolicyFound:
	default:
		return Policy{}, false
	}
	dom, err := dnsname.Mail.Normalize(p.Domain)
	if err != nil {
		return Policy{}, false
	}
	out := Policy{Type: p.Type, Domain: dom}
	for i, s := range p.Strings {
		if i == maxPolicyStrings {
			break
		}
		out.Strings = append(out.Strings, clip(s, maxPolicyString))
	}
	for i, h := range p.MXHosts {
		if i == maxMXHosts {
			break
		}
		out.MXHosts = append(out.MXHosts, canonPattern(h))
	}
	return out, true
}

func clonePolicy(p Policy) Policy {
	p.Strings = slices.Clone(p.Strings)
	p.MXHosts = slices.Clone(p.MXHosts)
	return p
}

func canonDetails(d FailureDetails) FailureDetails {
	rt := ResultType(clip(string(d.ResultType), 64))
	if rt == "" {
		rt = ValidationFailure
	}
	return FailureDetails{
		ResultType:            rt,
		SendingMTAIP:          canonIP(d.SendingMTAIP),
		ReceivingMXHostname:   canonName(d.ReceivingMXHostname),
		ReceivingMXHelo:       clip(d.ReceivingMXHelo, maxField),
		ReceivingIP:           canonIP(d.ReceivingIP),
		AdditionalInformation: clip(d.AdditionalInformation, maxField),
		FailureReasonCode:     clip(d.FailureReasonCode, maxField),
	}
}

// policyKey encodes a canonical policy unambiguously (length-prefixed
// strings) as a map key.
func policyKey(p *Policy) string {
	var b strings.Builder
	put := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	put(string(p.Type))
	put(p.Domain)
	b.WriteString(strconv.Itoa(len(p.Strings)))
	b.WriteByte('|')
	for _, s := range p.Strings {
		put(s)
	}
	b.WriteString(strconv.Itoa(len(p.MXHosts)))
	b.WriteByte('|')
	for _, s := range p.MXHosts {
		put(s)
	}
	return b.String()
}

// policySize approximates the bytes a policy entry holds: the policy,
// its key and bookkeeping.
func policySize(p *Policy) int64 {
	n := 2*(len(p.Type)+len(p.Domain)) + rowOverhead
	for _, s := range p.Strings {
		n += 2*len(s) + 24
	}
	for _, s := range p.MXHosts {
		n += 2*len(s) + 24
	}
	return int64(n)
}

func detailSize(d *FailureDetails) int64 {
	return int64(len(d.ResultType) + len(d.SendingMTAIP) + len(d.ReceivingMXHostname) +
		len(d.ReceivingMXHelo) + len(d.ReceivingIP) + len(d.AdditionalInformation) +
		len(d.FailureReasonCode) + rowOverhead)
}

func comparePolicy(x, y *Policy) int {
	return cmp.Or(
		cmp.Compare(x.Type, y.Type),
		slices.Compare(x.Strings, y.Strings),
		slices.Compare(x.MXHosts, y.MXHosts),
	)
}

func compareDetails(x, y FailureDetails) int {
	return cmp.Or(
		cmp.Compare(x.ResultType, y.ResultType),
		cmp.Compare(x.ReceivingMXHostname, y.ReceivingMXHostname),
		cmp.Compare(x.ReceivingIP, y.ReceivingIP),
		cmp.Compare(x.SendingMTAIP, y.SendingMTAIP),
		cmp.Compare(x.ReceivingMXHelo, y.ReceivingMXHelo),
		cmp.Compare(x.FailureReasonCode, y.FailureReasonCode),
		cmp.Compare(x.AdditionalInformation, y.AdditionalInformation),
		cmp.Compare(x.FailedSessionCount, y.FailedSessionCount),
	)
}

// nodeToken keeps the letters, digits, "-" and "." of a node name, at
// most 64 of them.
func nodeToken(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 64; i++ {
		if c := s[i]; isAlnum(c) || c == '-' || c == '.' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func or(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func or64(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}
