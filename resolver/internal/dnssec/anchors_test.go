package dnssec

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestClosestAnchor: anchors and NTAs match label-wise (escaped dots are
// not label boundaries), the closest one wins, and NTAs end at Expires.
func TestClosestAnchor(t *testing.T) {
	ds := func(zone string) *dns.DS {
		return &dns.DS{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDS, Class: dns.ClassINET}}
	}
	a := NewAnchors([]*dns.DS{ds("."), ds("Example.Test."), ds("b\\.c.test.")})
	for name, want := range map[string]string{
		".":                     ".",
		"test.":                 ".",
		"example.test.":         "example.test.",
		"a.b.example.test.":     "example.test.",
		"anexample.test.":       ".",
		"x.b\\.c.test.":         "b\\.c.test.",
		"x.c.test.":             ".",
		"b\\.c.test.":           "b\\.c.test.",
		"c.test.":               ".",
		"www.a\\.example.test.": ".", // one label "a.example"
	} {
		if got := a.closest(name); got != want {
			t.Errorf("closest(%q) = %q, want %q", name, got, want)
		}
	}
	private := NewAnchors([]*dns.DS{ds("example.test.")})
	if got := private.closest("test."); got != "" || private.HasRoot() || private.Len() != 1 {
		t.Errorf("private anchors: closest(test.) = %q, HasRoot %v", got, private.HasRoot())
	}
	now := time.Now()
	n := NewNTAs([]NTA{{Zone: "Example.Test.", Expires: now.Add(time.Hour)}, {Zone: "old.test.", Expires: now.Add(-time.Second)}})
	for name, want := range map[string]string{
		"example.test.":     "example.test.",
		"a.example.test.":   "example.test.",
		"anexample.test.":   "",
		"test.":             "",
		"x.old.test.":       "",
		"a\\.example.test.": "",
	} {
		if got, _ := n.active(name, now); got != want {
			t.Errorf("active(%q) = %q, want %q", name, got, want)
		}
	}
	if got, _ := n.active("example.test.", now.Add(2*time.Hour)); got != "" {
		t.Errorf("expired NTA still active")
	}
}
