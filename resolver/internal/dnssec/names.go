package dnssec

import (
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

// wireName is a name in uncompressed wire form with the offsets of its
// labels, leftmost first, built on the stack: comparing names is done
// for every NSEC record of every denial proof.
type wireName struct {
	buf  [256]byte
	offs [128]uint8 // offset of each label's length octet in buf
	n    int        // number of labels (the root's empty label excluded)
}

// pack fills w with name; it reports false for a name that does not pack.
func (w *wireName) pack(name string) bool {
	end, err := dns.PackDomainName(dns.Fqdn(name), w.buf[:], 0, nil, false)
	if err != nil {
		return false
	}
	w.n = 0
	for i := 0; i < end && w.buf[i] != 0; {
		l := int(w.buf[i])
		if i+1+l > end || w.n == len(w.offs) {
			return false
		}
		w.offs[w.n] = uint8(i)
		w.n++
		i += 1 + l
	}
	return true
}

// label returns the i-th label from the right (1 is the rightmost).
func (w *wireName) label(i int) []byte {
	off := int(w.offs[w.n-i])
	return w.buf[off+1 : off+1+int(w.buf[off])]
}

// compareLower compares a and b as octet strings with ASCII letters in
// lower case (RFC 4034 6.1), without copying them.
func compareLower(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// compare orders a and b canonically (RFC 4034 6.1): label by label
// from the right, each label as lowercase octets, a shorter name first.
// ok is false when a name does not pack; callers treat that as "no
// proof", never as equality.
func compare(a, b string) (cmp int, ok bool) {
	var wa, wb wireName
	if !wa.pack(a) || !wb.pack(b) {
		return 0, false
	}
	for i := 1; i <= wa.n && i <= wb.n; i++ {
		if c := compareLower(wa.label(i), wb.label(i)); c != 0 {
			return c, true
		}
	}
	switch {
	case wa.n < wb.n:
		return -1, true
	case wa.n > wb.n:
		return 1, true
	}
	return 0, true
}

// less reports a < b canonically; false when either name is unusable.
func less(a, b string) bool {
	c, ok := compare(a, b)
	return ok && c < 0
}
