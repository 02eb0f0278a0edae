package dnssec

import (
	"sort"
	"time"

	"github.com/miekg/dns"
)

// Trust anchors at any zone and negative trust anchors. Both are prepared
// once (by resolver.Validating, when its configuration changes) into
// immutable sets that lookups only read, so that a lookup pays a map
// probe per label of a name, and nothing at all when the set is the
// root's alone or empty.

// Anchors is a prepared, immutable set of trust anchors in DS form,
// grouped by the zone they anchor (RFC 4033 3.1: a "secure entry point"
// may be any zone). The chain of trust of a name starts at the closest
// anchored zone enclosing it; a name under no anchor is Insecure.
type Anchors struct {
	byZone   map[string][]dns.RR // lowercase FQDN -> its DS records
	rootOnly bool                // the only anchored zone is the root
	zones    []string            // anchored zones, sorted, for Check
}

// NewAnchors prepares ds. Records of other classes than IN are ignored;
// owner names are compared in canonical (lowercase) form.
func NewAnchors(ds []*dns.DS) *Anchors {
	a := &Anchors{byZone: map[string][]dns.RR{}}
	for _, d := range ds {
		if d == nil || (d.Hdr.Class != dns.ClassINET && d.Hdr.Class != 0) {
			continue
		}
		z := lower(d.Hdr.Name)
		if _, ok := a.byZone[z]; !ok {
			a.zones = append(a.zones, z)
		}
		a.byZone[z] = append(a.byZone[z], d)
	}
	sort.Strings(a.zones)
	_, root := a.byZone["."]
	a.rootOnly = root && len(a.byZone) == 1
	return a
}

// HasRoot reports whether the root zone is anchored: without a root
// anchor every name outside the anchored zones is Insecure, which for a
// DANE client means DANE is off for every public domain.
func (a *Anchors) HasRoot() bool {
	if a == nil {
		return false
	}
	_, ok := a.byZone["."]
	return ok
}

// Len returns the number of anchored zones.
func (a *Anchors) Len() int {
	if a == nil {
		return 0
	}
	return len(a.zones)
}

// Zones returns the anchored zones in sorted order.
func (a *Anchors) Zones() []string {
	if a == nil {
		return nil
	}
	return append([]string(nil), a.zones...)
}

// closest returns the closest anchored zone at or above name, or "" when
// no anchor encloses it. name is lowercase and fully qualified.
func (a *Anchors) closest(name string) string {
	if a == nil {
		return ""
	}
	if a.rootOnly {
		return "."
	}
	return closestIn(name, func(n string) bool { _, ok := a.byZone[n]; return ok })
}

// ds returns the anchor records of zone.
func (a *Anchors) ds(zone string) []dns.RR {
	if a == nil {
		return nil
	}
	return a.byZone[zone]
}

// isAnchor reports whether zone is an anchored zone.
func (a *Anchors) isAnchor(zone string) bool {
	if a == nil {
		return false
	}
	if a.rootOnly {
		return zone == "."
	}
	_, ok := a.byZone[zone]
	return ok
}

// closestIn walks name and its ancestors, label by label, and returns the
// first for which has is true, or "". It does not allocate.
func closestIn(name string, has func(string) bool) string {
	for off := 0; ; {
		if has(name[off:]) {
			return name[off:]
		}
		next, end := dns.NextLabel(name, off)
		if end || name == "." {
			break
		}
		off = next
	}
	if name != "." && has(".") {
		return "."
	}
	return ""
}

// NTA is a negative trust anchor (RFC 7646): a zone the operator
// declares insecure, until Expires, because its DNSSEC is known broken.
type NTA struct {
	// Zone is the zone, lowercase and fully qualified.
	Zone string
	// Expires ends the NTA (RFC 7646 2: NTAs are temporary).
	Expires time.Time
}

// NTAs is a prepared, immutable set of negative trust anchors.
type NTAs struct {
	byZone map[string]time.Time
}

// NewNTAs prepares ntas; the caller has checked them (a zone name, a
// non-zero expiry). Of two NTAs for one zone the later expiry counts.
func NewNTAs(ntas []NTA) *NTAs {
	if len(ntas) == 0 {
		return nil
	}
	s := &NTAs{byZone: make(map[string]time.Time, len(ntas))}
	for _, n := range ntas {
		z := lower(n.Zone)
		if n.Expires.After(s.byZone[z]) {
			s.byZone[z] = n.Expires
		}
	}
	return s
}

// active returns the NTA zone at or above name that is in force at now,
// with its expiry, or "" when none is. Of nested NTAs the closest one
// in force wins (the verdict is Insecure either way).
func (s *NTAs) active(name string, now time.Time) (string, time.Time) {
	if s == nil {
		return "", time.Time{}
	}
	var exp time.Time
	z := closestIn(name, func(n string) bool {
		e, ok := s.byZone[n]
		if ok && now.Before(e) {
			exp = e
			return true
		}
		return false
	})
	return z, exp
}
