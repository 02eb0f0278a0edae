package memsize

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestAlloc(t *testing.T) {
	for _, c := range []struct {
		n        int
		pointers bool
		want     int
	}{
		{0, false, 0}, {1, false, 8}, {9, false, 16}, {15, false, 16}, {16, false, 16},
		{17, false, 24}, {8, true, 8}, {100, true, 112}, {513, false, 576}, {512, true, 512},
		{513, true, 576}, {569, true, 640}, {32768, false, 32768}, {32769, false, 40960},
	} {
		if got := Alloc(c.n, c.pointers); got != c.want {
			t.Errorf("Alloc(%d, %v) = %d, want %d", c.n, c.pointers, got, c.want)
		}
	}
}

// node is a value of the shapes the caches hold: strings, a slice of
// interfaces, pointers shared within the graph.
type node struct {
	name  string
	vals  []any
	ip    []byte
	next  *node
	inner struct{ s string }
}

type leaf struct {
	hdr  struct{ owner string }
	data string
}

// TestOfMatchesHeap compares Of with the live heap that n copies of a
// value retain. The estimate must be within 5% (it misses only what the
// runtime rounds differently in rare cases).
func TestOfMatchesHeap(t *testing.T) {
	build := map[string]func(i int) any{
		"string": func(i int) any { return &node{name: fmt.Sprintf("host%06d.example.com.", i)} },
		"graph": func(i int) any {
			owner := fmt.Sprintf("mx%06d.example.com.", i)
			n := &node{name: owner, ip: []byte{192, 0, 2, byte(i)}}
			for j := range 3 {
				// Leaves share the owner name, as the records of an
				// answer share its name.
				n.vals = append(n.vals, &leaf{data: strings.Repeat("ab", 16+j), hdr: struct{ owner string }{owner}})
			}
			n.next = &node{name: "x", next: n} // a cycle
			n.inner.s = strings.Repeat("z", 700)
			return n
		},
		"big": func(i int) any { return &node{ip: make([]byte, 40000+i%3)} },
	}
	for name, f := range build {
		t.Run(name, func(t *testing.T) {
			const n = 2000
			keep := make([]any, n)
			h0 := liveHeap()
			est := 0
			for i := range keep {
				keep[i] = f(i)
				est += Of(keep[i])
			}
			h1 := liveHeap()
			runtime.KeepAlive(keep)
			got := float64(int64(h1)-int64(h0)) / n
			per := float64(est) / n
			t.Logf("%s: estimate %.0f B, heap %.0f B", name, per, got)
			if per < got*0.95 || per > got*1.05 {
				t.Errorf("%s: estimate %.0f B per value, the heap grew %.0f B", name, per, got)
			}
		})
	}
}

func TestOfCountsSharedOnce(t *testing.T) {
	s := strings.Repeat("q", 100)
	one := Of(&leaf{data: s})
	two := Of(&node{vals: []any{&leaf{data: s}, &leaf{data: s}}})
	// The node (88 B, in the 96-byte class), a slice of two interfaces
	// (32 B), two leaves (32 B each), one string.
	if want := 96 + 32 + 2*32 + String(s); two != want {
		t.Errorf("shared string: %d, want %d", two, want)
	}
	if one != 32+String(s) {
		t.Errorf("one leaf: %d", one)
	}
	var c Counter
	if c.AddString(s) != String(s) || c.Add(&leaf{data: s}) != 32 {
		t.Error("Counter counted a string twice")
	}
}

// TestOfTimes: a time.Time's location is shared, never the time's own.
func TestOfTimes(t *testing.T) {
	type stamped struct{ at time.Time }
	if got := Of(&stamped{time.Now()}); got != 24 {
		t.Errorf("a struct of one time.Time: %d B, want 24", got)
	}
}
