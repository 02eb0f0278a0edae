package tlsrpt

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	aggDay0  = time.Date(2025, 3, 9, 0, 0, 0, 0, time.UTC)
	stsA     = Policy{Type: PolicySTS, Domain: "a.example", Strings: []string{"version: STSv1", "mode: enforce", "mx: mx.a.example", "max_age: 86400"}, MXHosts: []string{"mx.a.example"}}
	tlsaA    = Policy{Type: PolicyTLSA, Domain: "a.example", Strings: []string{"_25._tcp.mx.a.example. IN TLSA 3 1 1 00"}, MXHosts: []string{"mx.a.example"}}
	noneB    = Policy{Type: PolicyNoPolicyFound, Domain: "b.example"}
	failRow1 = FailureDetails{ResultType: CertificateExpired, SendingMTAIP: "192.0.2.1", ReceivingMXHostname: "mx.a.example", ReceivingIP: "198.51.100.1"}
)

func TestAggregatorReportsPerDomain(t *testing.T) {
	t.Parallel()
	var a Aggregator
	at := aggDay0.Add(10 * time.Hour)
	a.Success(stsA, at)
	a.Success(stsA, at)
	a.Failure(stsA, failRow1, at)
	a.Failure(stsA, failRow1, at)
	a.Failure(stsA, FailureDetails{ResultType: StartTLSNotSupported, ReceivingMXHostname: "mx.a.example"}, at)
	a.Success(tlsaA, at)
	a.Success(noneB, at)
	// Same policy, other spelling of the domain: same entry.
	b2 := noneB
	b2.Domain = "B.Example."
	a.Failure(b2, FailureDetails{ResultType: StartTLSNotSupported}, at)

	reps := a.Reports(at, "Org", "tlsrpt@sender.example")
	if len(reps) != 2 {
		t.Fatalf("got %d reports, want 2 (one per policy domain)", len(reps))
	}
	ra, rb := reps[0], reps[1]
	if ra.PolicyDomain() != "a.example" || rb.PolicyDomain() != "b.example" {
		t.Fatalf("domains %q %q", ra.PolicyDomain(), rb.PolicyDomain())
	}
	if ra.ReportID != "2025-03-09_a.example" || rb.ReportID != "2025-03-09_b.example" {
		t.Errorf("report ids %q %q", ra.ReportID, rb.ReportID)
	}
	if ra.OrganizationName != "Org" || ra.ContactInfo != "tlsrpt@sender.example" {
		t.Errorf("org/contact %q %q", ra.OrganizationName, ra.ContactInfo)
	}
	if want := (DateRange{Start: aggDay0, End: aggDay0.Add(24*time.Hour - time.Second)}); ra.DateRange != want {
		t.Errorf("date range %v, want %v", ra.DateRange, want)
	}
	if len(ra.Policies) != 2 || ra.Policies[0].Policy.Type != PolicySTS || ra.Policies[1].Policy.Type != PolicyTLSA {
		t.Fatalf("policies of a.example: %+v", ra.Policies)
	}
	sts := ra.Policies[0]
	if sts.Summary != (Summary{2, 3}) {
		t.Errorf("sts summary %+v", sts.Summary)
	}
	wantRows := []FailureDetails{
		{ResultType: CertificateExpired, SendingMTAIP: "192.0.2.1", ReceivingMXHostname: "mx.a.example", ReceivingIP: "198.51.100.1", FailedSessionCount: 2},
		{ResultType: StartTLSNotSupported, ReceivingMXHostname: "mx.a.example", FailedSessionCount: 1},
	}
	if !slices.Equal(sts.FailureDetails, wantRows) {
		t.Errorf("sts rows %+v, want %+v", sts.FailureDetails, wantRows)
	}
	if ra.Policies[1].Summary != (Summary{1, 0}) || ra.Policies[1].FailureDetails != nil {
		t.Errorf("tlsa result %+v", ra.Policies[1])
	}
	if rb.Policies[0].Summary != (Summary{1, 1}) || rb.Policies[0].Policy.Domain != "b.example" {
		t.Errorf("b.example result %+v", rb.Policies[0])
	}

	// Stable: asking again gives the same reports; mutating them does not
	// reach the aggregator.
	ra.Policies[0].Policy.Strings[0] = "changed"
	again := a.Reports(at, "Org", "tlsrpt@sender.example")
	if again[0].Policies[0].Policy.Strings[0] != "version: STSv1" || again[0].ReportID != "2025-03-09_a.example" {
		t.Errorf("reports not stable: %+v", again[0])
	}
}

func TestAggregatorDayBoundaries(t *testing.T) {
	t.Parallel()
	var a Aggregator
	east := time.FixedZone("UTC+14", 14*3600)
	west := time.FixedZone("UTC-12", -12*3600)
	// Each instant is given in a zone where its local date differs from
	// its UTC date; only the UTC day counts.
	a.Success(stsA, aggDay0.Add(-time.Nanosecond).In(east))             // UTC 03-08 23:59:59.999, local 03-09
	a.Success(stsA, aggDay0.In(west))                                   // UTC 03-09 00:00, local 03-08
	a.Success(stsA, aggDay0.Add(24*time.Hour-time.Nanosecond).In(east)) // UTC 03-09 end, local 03-10
	a.Success(stsA, aggDay0.Add(24*time.Hour).In(west))                 // UTC 03-10 00:00, local 03-09

	count := func(day time.Time) int64 {
		reps := a.Reports(day, "o", "c")
		if len(reps) != 1 {
			return -1
		}
		return reps[0].Policies[0].Summary.TotalSuccessfulSessionCount
	}
	for _, tc := range []struct {
		day  time.Time
		want int64
	}{
		{aggDay0.Add(-time.Hour), 1},
		{aggDay0, 2},
		{aggDay0.Add(23 * time.Hour).In(west), 2}, // any instant of the day selects it
		{aggDay0.Add(24 * time.Hour), 1},
	} {
		if got := count(tc.day); got != tc.want {
			t.Errorf("day of %v: %d successes, want %d", tc.day, got, tc.want)
		}
	}
	if got := a.Days(); !slices.Equal(got, []time.Time{aggDay0.Add(-24 * time.Hour), aggDay0, aggDay0.Add(24 * time.Hour)}) {
		t.Errorf("Days() = %v", got)
	}

	// Flush at some instant of 03-10 reports the two finished days,
	// oldest first, and keeps 03-10.
	reps := a.Flush(aggDay0.Add(30*time.Hour), "o", "c")
	if len(reps) != 2 || !reps[0].DateRange.Start.Equal(aggDay0.Add(-24*time.Hour)) || !reps[1].DateRange.Start.Equal(aggDay0) {
		t.Fatalf("Flush = %+v", reps)
	}
	if got := a.Days(); !slices.Equal(got, []time.Time{aggDay0.Add(24 * time.Hour)}) {
		t.Errorf("Days() after Flush = %v", got)
	}
	if reps := a.Flush(aggDay0.Add(30*time.Hour), "o", "c"); len(reps) != 0 {
		t.Errorf("second Flush = %+v", reps)
	}
	a.Drop(aggDay0.Add(47 * time.Hour))
	if s := a.Stats(); s.Days != 0 || s.Policies != 0 || s.Bytes != 0 {
		t.Errorf("Stats after Drop = %+v", s)
	}
}

func TestAggregatorBounds(t *testing.T) {
	t.Parallel()
	t.Run("details", func(t *testing.T) {
		t.Parallel()
		a := Aggregator{MaxFailureDetails: 3}
		for i := range 10 {
			d := FailureDetails{ResultType: ValidationFailure, SendingMTAIP: fmt.Sprintf("192.0.2.%d", i), ReceivingMXHostname: "mx.a.example"}
			a.Failure(stsA, d, aggDay0)
			a.Failure(stsA, d, aggDay0) // a second session on the same row
		}
		for i := range 17 {
			a.Failure(stsA, FailureDetails{ResultType: ResultType(fmt.Sprintf("x-%02d", i))}, aggDay0)
		}
		pr := a.Reports(aggDay0, "o", "c")[0].Policies[0]
		if pr.Summary.TotalFailureSessionCount != 37 {
			t.Errorf("total failures %d, want 37: overflow must still be counted", pr.Summary.TotalFailureSessionCount)
		}
		var full, over []FailureDetails
		var sum int64
		for _, d := range pr.FailureDetails {
			sum += d.FailedSessionCount
			if d.FailureReasonCode == OverflowReasonCode {
				over = append(over, d)
			} else {
				full = append(full, d)
			}
		}
		if len(full) != 3 {
			t.Errorf("%d full rows, want MaxFailureDetails=3", len(full))
		}
		if len(over) != maxOverflowRows {
			t.Errorf("%d overflow rows, want %d", len(over), maxOverflowRows)
		}
		if over[0].ResultType != ValidationFailure || over[0].FailedSessionCount != 14 {
			t.Errorf("first overflow row %+v, want validation-failure x14", over[0])
		}
		// validation-failure took one of the 16 overflow rows, so x-15
		// and x-16 found none: they are counted in the total only.
		if sum != 35 {
			t.Errorf("rows sum to %d, want 35", sum)
		}
		if s := a.Stats(); s.TruncatedDetails != 31 || s.Dropped != 0 {
			t.Errorf("Stats = %+v", s)
		}
	})
	t.Run("policies", func(t *testing.T) {
		t.Parallel()
		a := Aggregator{MaxPolicies: 5}
		for i := range 8 {
			a.Success(Policy{Type: PolicyNoPolicyFound, Domain: fmt.Sprintf("d%d.example", i)}, aggDay0)
		}
		a.Success(Policy{Type: PolicyNoPolicyFound, Domain: "d0.example"}, aggDay0) // held: counted
		if reps := a.Reports(aggDay0, "o", "c"); len(reps) != 5 || reps[0].Policies[0].Summary.TotalSuccessfulSessionCount != 2 {
			t.Errorf("reports %+v", reps)
		}
		// The cap is per day.
		a.Success(Policy{Type: PolicyNoPolicyFound, Domain: "d7.example"}, aggDay0.Add(24*time.Hour))
		if s := a.Stats(); s.Dropped != 3 || s.Policies != 6 {
			t.Errorf("Stats = %+v", s)
		}
	})
	t.Run("days", func(t *testing.T) {
		t.Parallel()
		a := Aggregator{MaxDays: 2}
		for i := range 4 {
			a.Success(stsA, aggDay0.Add(time.Duration(i)*24*time.Hour))
		}
		a.Success(stsA, aggDay0) // older than every day held
		if got := a.Days(); !slices.Equal(got, []time.Time{aggDay0.Add(48 * time.Hour), aggDay0.Add(72 * time.Hour)}) {
			t.Errorf("Days() = %v", got)
		}
		if s := a.Stats(); s.EvictedDays != 2 || s.Dropped != 1 {
			t.Errorf("Stats = %+v", s)
		}
	})
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		a := Aggregator{MaxMemory: 20000}
		long := strings.Repeat("x", 5000)
		for i := range 100 {
			p := Policy{Type: PolicySTS, Domain: fmt.Sprintf("d%d.example", i), Strings: []string{long, long, long}}
			a.Failure(p, FailureDetails{ResultType: ValidationFailure, ReceivingMXHelo: long}, aggDay0)
		}
		s := a.Stats()
		if s.Bytes > 20000 || s.Policies == 0 || s.Dropped == 0 {
			t.Errorf("Stats = %+v", s)
		}
		// Strings are cut: a policy-string to 1 KiB, a detail field to
		// 255 bytes.
		pr := a.Reports(aggDay0, "o", "c")[0].Policies[0]
		if len(pr.Policy.Strings[0]) != maxPolicyString || len(pr.FailureDetails[0].ReceivingMXHelo) != maxField {
			t.Errorf("strings not cut: %d %d", len(pr.Policy.Strings[0]), len(pr.FailureDetails[0].ReceivingMXHelo))
		}
		a.Drop(aggDay0)
		if s := a.Stats(); s.Bytes != 0 {
			t.Errorf("Bytes after Drop = %d", s.Bytes)
		}
	})
	t.Run("invalid-policy", func(t *testing.T) {
		t.Parallel()
		var a Aggregator
		a.Success(Policy{Type: "bogus", Domain: "a.example"}, aggDay0)
		a.Success(Policy{Type: PolicySTS, Domain: "192.0.2.1"}, aggDay0)
		a.Success(Policy{Type: PolicySTS, Domain: ""}, aggDay0)
		if s := a.Stats(); s.Dropped != 3 || s.Days != 0 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

func TestAggregatorNode(t *testing.T) {
	t.Parallel()
	a := Aggregator{Node: "mx1.sender.example/../!x"}
	a.Success(stsA, aggDay0)
	if got := a.Reports(aggDay0, "o", "c")[0].ReportID; got != "2025-03-09_a.example_mx1.sender.example..x" {
		t.Errorf("ReportID = %q", got)
	}
}

// Many goroutines count concurrently (run with -race); the totals must
// be exact.
func TestAggregatorConcurrent(t *testing.T) {
	t.Parallel()
	a := Aggregator{MaxFailureDetails: 8}
	const workers, perWorker = 16, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				at := aggDay0.Add(time.Duration(i%2) * 24 * time.Hour)
				p := stsA
				if i%3 == 0 {
					p = noneB
				}
				if i%5 == 0 {
					a.Failure(p, FailureDetails{ResultType: ValidationFailure, SendingMTAIP: fmt.Sprintf("192.0.2.%d", w)}, at)
				} else {
					a.Success(p, at)
				}
				if i%100 == 0 {
					_ = a.Reports(at, "o", "c")
					_ = a.Stats()
					_ = a.Days()
				}
			}
		}()
	}
	wg.Wait()
	var succ, fail, rowSum, overSum int64
	for _, day := range []time.Time{aggDay0, aggDay0.Add(24 * time.Hour)} {
		for _, r := range a.Reports(day, "o", "c") {
			for _, p := range r.Policies {
				succ += p.Summary.TotalSuccessfulSessionCount
				fail += p.Summary.TotalFailureSessionCount
				if n := len(p.FailureDetails); n > 8+1 {
					t.Errorf("%d failure rows, cap 8 (+1 overflow row)", n)
				}
				for _, d := range p.FailureDetails {
					rowSum += d.FailedSessionCount
					if d.FailureReasonCode == OverflowReasonCode {
						overSum += d.FailedSessionCount
					}
				}
			}
		}
	}
	wantFail := int64(workers * perWorker / 5)
	if succ+fail != workers*perWorker || fail != wantFail {
		t.Errorf("counted %d successes + %d failures, want %d total, %d failures", succ, fail, workers*perWorker, wantFail)
	}
	// One result type only, so every truncated failure has its overflow
	// row and the rows account for every failure.
	if s := a.Stats(); rowSum != fail || s.TruncatedDetails != overSum || overSum == 0 {
		t.Errorf("rows sum to %d (overflow %d), failures %d, TruncatedDetails %d", rowSum, overSum, fail, s.TruncatedDetails)
	}
}

func TestAggregatorCanonicalises(t *testing.T) {
	t.Parallel()
	var a Aggregator
	if got := a.Reports(aggDay0, "o", "c"); got != nil {
		t.Errorf("Reports of an empty day = %+v", got)
	}
	p := Policy{Type: PolicySTS, Domain: "BÜCHER.example.", MXHosts: []string{"*.MX.Bücher.example.", "not a name!"}}
	a.Failure(p, FailureDetails{
		SendingMTAIP:        "not an address",
		ReceivingMXHostname: "MX.Bücher.Example.",
		ReceivingIP:         "::ffff:198.51.100.1",
		ReceivingMXHelo:     "helo\xff" + strings.Repeat("é", 200),
		FailedSessionCount:  99,
	}, aggDay0)
	reps := a.Reports(aggDay0, "o", "c")
	if len(reps) != 1 {
		t.Fatalf("reports %+v", reps)
	}
	pr := reps[0].Policies[0]
	if pr.Policy.Domain != "xn--bcher-kva.example" || !slices.Equal(pr.Policy.MXHosts, []string{"*.mx.xn--bcher-kva.example", "not a name!"}) {
		t.Errorf("policy %+v", pr.Policy)
	}
	d := pr.FailureDetails[0]
	if d.ResultType != ValidationFailure || d.SendingMTAIP != "not an address" || d.ReceivingMXHostname != "mx.xn--bcher-kva.example" ||
		d.ReceivingIP != "198.51.100.1" || d.FailedSessionCount != 1 || pr.Summary.TotalFailureSessionCount != 1 {
		t.Errorf("details %+v", d)
	}
	if !strings.HasPrefix(d.ReceivingMXHelo, "helo\uFFFDé") || len(d.ReceivingMXHelo) > maxField || !utf8.ValidString(d.ReceivingMXHelo) {
		t.Errorf("helo %q (%d bytes)", d.ReceivingMXHelo, len(d.ReceivingMXHelo))
	}
}

// TestAggregatorRefusesInvalidNames checks that a policy domain that is not
// a mail domain is dropped, never rewritten into another name (invalid
// UTF-8 used to become xn--zn7ca, the A-label of U+FFFD), and that a
// reported MX host name in invalid UTF-8 is shown, not converted.
func TestAggregatorRefusesInvalidNames(t *testing.T) {
	t.Parallel()
	for _, dom := range []string{"\xff\xfe.example", "b\xfccher.example", "x.1.2.3.4", "a\r\nb.example", "example.com.."} {
		var a Aggregator
		a.Failure(Policy{Type: PolicySTS, Domain: dom}, FailureDetails{FailedSessionCount: 1}, aggDay0)
		if got := a.Reports(aggDay0, "o", "c"); got != nil {
			t.Errorf("domain %q: reports %+v", dom, got)
		}
	}
	for in, want := range map[string]string{
		"\xff\xfe.example.":  "\uFFFD\uFFFD.example",
		"MX.Bücher.Example.": "mx.xn--bcher-kva.example",
		"*.MX.example":       "*.mx.example",
		"*.\xffmx.example":   "*.\uFFFDmx.example",
	} {
		if got := canonPattern(in); got != want {
			t.Errorf("canonPattern(%q) = %q, want %q", in, got, want)
		}
	}
	if got := lenientName("\xff\xfe.EXAMPLE.."); got != "\xff\xfe.example" {
		t.Errorf("lenientName kept %q", got)
	}
}
