package resolver

import (
	"math/rand/v2"
	"testing"
)

// TestEntryTable checks the table against a Go map under random puts,
// replacements and deletions, with hashes drawn from a small range so
// that probe chains are long, wrap around the end of the table and cross
// each other (the cases backward-shift deletion must get right), and
// with 0 among them.
func TestEntryTable(t *testing.T) {
	for _, spread := range []uint64{40, 1000, 1 << 62} {
		r := rand.New(rand.NewPCG(spread, 7))
		var tab entryTable
		tab.grow()
		ref := map[uint64]*cacheEntry{}
		for step := range 200000 {
			// Hashes near the top of the range wrap around the end of
			// the table.
			h := r.Uint64N(spread)
			if r.IntN(2) == 0 {
				h = -h
			}
			switch r.IntN(3) {
			case 0, 1:
				e := &cacheEntry{}
				if old, want := tab.put(h, e), ref[slotHash(h)]; old != want {
					t.Fatalf("step %d: put %d replaced %p, want %p", step, h, old, want)
				}
				ref[slotHash(h)] = e
			case 2:
				tab.del(h)
				delete(ref, slotHash(h))
			}
			if step%997 == 0 || spread == 40 {
				for k, e := range ref {
					if got := tab.get(k); got != e {
						t.Fatalf("spread %d step %d: get %d = %p, want %p", spread, step, k, got, e)
					}
				}
				if tab.n != len(ref) {
					t.Fatalf("spread %d step %d: %d entries, want %d", spread, step, tab.n, len(ref))
				}
			}
			if tab.get(h) != ref[slotHash(h)] {
				t.Fatalf("spread %d step %d: get %d after the operation", spread, step, h)
			}
		}
		n := 0
		tab.all(func(*cacheEntry) { n++ })
		if n != len(ref) {
			t.Errorf("all visited %d entries, want %d", n, len(ref))
		}
	}
}

func TestServiceBase(t *testing.T) {
	for _, c := range []struct{ name, base, prefix string }{
		{"_25._tcp.mx.example", "mx.example", "_25._tcp."},
		{"_587._tcp.relay.example", "relay.example", "_587._tcp."},
		{"_mta-sts.example", "example", "_mta-sts."},
		{"mx.example", "mx.example", ""},
		{"_dmarc.example", "_dmarc.example", ""},
		{"_._tcp.example", "_._tcp.example", ""},
		{"_25._udp.example", "_25._udp.example", ""},
		{"_25._tcp.", "_25._tcp.", ""},
		{"_mta-sts.", "_mta-sts.", ""},
		{"_", "_", ""},
		{".", ".", ""},
	} {
		if b, p := serviceBase(c.name); b != c.base || p != c.prefix {
			t.Errorf("serviceBase(%q) = %q, %q; want %q, %q", c.name, b, p, c.base, c.prefix)
		}
	}
}
