package dnssec

import (
	"bytes"
	"strings"

	"github.com/miekg/dns"
)

// Name helpers for the validator. Names are in miekg/dns presentation
// form, fully qualified; comparisons that DNSSEC defines on the wire
// (canonical order, RFC 4034 6.1) are done on wire-form labels so that
// escaped characters order as the octets they stand for.

// lower returns name lowercase and fully qualified. miekg/dns writes
// names it unpacked with non-letters escaped, so ASCII lowercasing of
// that form is the canonical form of RFC 4034 6.2.
func lower(name string) string {
	return dns.CanonicalName(name)
}

// parent returns the name with its leftmost label removed; the parent
// of the root is the root.
func parent(name string) string {
	idx := dns.Split(name)
	if len(idx) <= 1 {
		return "."
	}
	return name[idx[1]:]
}

// suffix returns the rightmost n labels of name.
func suffix(name string, n int) string {
	if n <= 0 {
		return "."
	}
	idx := dns.Split(name)
	if n >= len(idx) {
		return name
	}
	return name[idx[len(idx)-n]:]
}

// isAncestor reports whether anc is name or an ancestor of it, label by
// label (RFC 4035 5.3.1 wants the signer to be the zone containing the
// owner; a string suffix test would accept "xample.test." for
// "example.test.").
func isAncestor(anc, name string) bool {
	return dns.IsSubDomain(anc, name)
}

// isProperAncestor reports whether anc is an ancestor of name other
// than name itself.
func isProperAncestor(anc, name string) bool {
	return dns.IsSubDomain(anc, name) && !strings.EqualFold(anc, name)
}

// commonAncestor returns the longest common ancestor of a and b.
func commonAncestor(a, b string) string {
	return suffix(a, dns.CompareDomainName(a, b))
}

// sigLabels is the label count of an owner name as RRSIG Labels counts
// it (RFC 4034 3.1.3): without the root and without a leading "*".
func sigLabels(owner string) int {
	n := dns.CountLabel(owner)
	if strings.HasPrefix(owner, "*.") {
		n--
	}
	return n
}

// wildcard returns the wildcard name "*.name".
func wildcard(name string) string {
	if name == "." {
		return "*."
	}
	return "*." + name
}

// wireLabels returns the labels of name as lowercase octets, leftmost
// first. ok is false for a name that does not pack.
func wireLabels(name string) (labels [][]byte, ok bool) {
	var buf [256]byte
	off, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return nil, false
	}
	wire := buf[:off]
	for i := 0; i < len(wire) && wire[i] != 0; {
		n := int(wire[i])
		if i+1+n > len(wire) {
			return nil, false
		}
		labels = append(labels, bytes.ToLower(wire[i+1:i+1+n]))
		i += 1 + n
	}
	return labels, true
}

// compare orders a and b canonically (RFC 4034 6.1): label by label
// from the right, each label as lowercase octets, a shorter name first.
// ok is false when a name does not pack; callers treat that as "no
// proof", never as equality.
func compare(a, b string) (cmp int, ok bool) {
	la, oka := wireLabels(a)
	lb, okb := wireLabels(b)
	if !oka || !okb {
		return 0, false
	}
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		if c := bytes.Compare(la[len(la)-i], lb[len(lb)-i]); c != 0 {
			return c, true
		}
	}
	switch {
	case len(la) < len(lb):
		return -1, true
	case len(la) > len(lb):
		return 1, true
	}
	return 0, true
}

// less reports a < b canonically; false when either name is unusable.
func less(a, b string) bool {
	c, ok := compare(a, b)
	return ok && c < 0
}
