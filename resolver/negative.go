package resolver

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver/internal/dnssec"
)

// NegativeAnchor is a negative trust anchor (RFC 7646): a zone whose
// DNSSEC the operator knows to be broken (an expired signature, a botched
// key rollover) and declares insecure for a while, so that its answers
// are Insecure instead of Bogus. For a DANE client that is the lever
// when a recipient's zone turns bogus: its mail then goes out with
// opportunistic TLS (or under MTA-STS) instead of deferring for days.
//
// An NTA never makes anything Secure and never reaches beyond its zone:
// names at or below Zone (label-wise: an NTA for "example." does not
// cover "anexample.") are Insecure, whatever a positive trust anchor at
// or below Zone says; every other name is validated as before.
type NegativeAnchor struct {
	// Zone is the zone, in any case, with or without the trailing dot
	// (A-labels, as every name of this package). The root zone is
	// refused: an NTA for it would turn DNSSEC, and DANE, off entirely.
	Zone string
	// Expires ends the NTA: from then on the zone is validated again.
	// It is required (RFC 7646 2: NTAs are temporary; section 4: remove
	// them once the zone is fixed); a zero Expires is a configuration
	// error.
	Expires time.Time
}

// NegativeAnchorError reports a NegativeAnchor that cannot be used.
type NegativeAnchorError struct {
	// Zone is the entry's zone, as given.
	Zone string
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *NegativeAnchorError) Error() string {
	return "resolver: negative trust anchor " + quoteBounded(e.Zone) + ": " + e.Reason
}

// check returns the NTA in the validator's form, or why it is unusable.
func (n NegativeAnchor) check() (dnssec.NTA, error) {
	zone := Fqdn(n.Zone)
	if _, ok := dns.IsDomainName(zone); !ok || n.Zone == "" || len(zone) > 254 {
		return dnssec.NTA{}, &NegativeAnchorError{Zone: n.Zone, Reason: "not a domain name"}
	}
	if zone == "." {
		return dnssec.NTA{}, &NegativeAnchorError{Zone: n.Zone, Reason: "the root zone cannot be a negative trust anchor (it would turn DNSSEC off for every name)"}
	}
	if n.Expires.IsZero() {
		return dnssec.NTA{}, &NegativeAnchorError{Zone: n.Zone, Reason: "no expiry: negative trust anchors are temporary (RFC 7646 2)"}
	}
	return dnssec.NTA{Zone: zone, Expires: n.Expires}, nil
}

// SetNegativeAnchors replaces the negative trust anchors in force with
// ntas (nil removes them all). It is safe to call while lookups run:
// each lookup uses the set in force when it started. If any entry is
// unusable (see NegativeAnchor) it returns a *NegativeAnchorError for
// each (joined with errors.Join) and changes nothing.
//
// The Validating keeps no answers, so the change applies to its next
// lookup; but a Cache in front of it keeps the answers it already has
// until their TTLs run out. Flush the zones whose NTAs were added or
// removed there:
//
//	if err := v.SetNegativeAnchors(ntas); err != nil { ... }
//	for _, n := range changed {
//		cache.Flush(n.Zone)
//	}
//
// An NTA that expires needs no flush to end: answers an NTA made
// Insecure are cached for at most their TTL, and Cache.MaxTTL bounds it.
func (v *Validating) SetNegativeAnchors(ntas []NegativeAnchor) error {
	v.init()
	prepared := make([]dnssec.NTA, 0, len(ntas))
	var errs []error
	for _, n := range ntas {
		p, err := n.check()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		prepared = append(prepared, p)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	v.ntas.Store(dnssec.NewNTAs(prepared))
	for _, n := range prepared {
		v.logger().Info("resolver: negative trust anchor set", "zone", quoteBounded(n.Zone), "expires", n.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// prepareNTAs prepares the NegativeAnchors field at first use; unusable
// entries are ignored, logged and kept for Check.
func (v *Validating) prepareNTAs() *dnssec.NTAs {
	if len(v.NegativeAnchors) == 0 {
		return nil
	}
	prepared := make([]dnssec.NTA, 0, len(v.NegativeAnchors))
	for _, n := range v.NegativeAnchors {
		p, err := n.check()
		if err != nil {
			v.badNTAs = append(v.badNTAs, err)
			v.logger().Error("resolver: negative trust anchor ignored", "error", err)
			continue
		}
		prepared = append(prepared, p)
	}
	return dnssec.NewNTAs(prepared)
}

func (v *Validating) logger() *slog.Logger {
	if v.Logger != nil {
		return v.Logger
	}
	return slog.Default()
}

// anchors returns Anchors (RootAnchors() when nil) prepared for the
// validator. A slice is prepared once, recognised by its backing array
// and length: assign a new slice to change the anchors, do not modify
// the elements of one in use.
func (v *Validating) anchors() *dnssec.Anchors {
	ds := v.Anchors
	var data **dns.DS
	if ds != nil {
		data = unsafe.SliceData(ds)
	}
	if m := v.anchorMemo.Load(); m != nil && m.data == data && m.n == len(ds) {
		return m.set
	}
	prep := ds
	if prep == nil {
		prep = RootAnchors()
	}
	m := &anchorMemo{data: data, n: len(ds), set: dnssec.NewAnchors(prep)}
	v.anchorMemo.Store(m)
	return m.set
}

// quoteBounded quotes untrusted or operator text for an error or a log
// line, at most 256 bytes of it.
func quoteBounded(s string) string {
	const max = 256
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// checkAnchors reports the configuration problems Check names: anchors
// without a root anchor, and unusable negative trust anchors.
func (v *Validating) checkAnchors() []error {
	var errs []error
	if a := v.anchors(); !a.HasRoot() {
		errs = append(errs, &CheckError{Kind: CheckNoRootAnchor,
			Err: fmt.Errorf("anchored zones %q: every other name is Insecure, so DANE is off for public domains; append private anchors to RootAnchors()", a.Zones())})
	}
	for _, err := range v.badNTAs {
		errs = append(errs, &CheckError{Kind: CheckBadNegativeAnchor, Err: err})
	}
	return errs
}
