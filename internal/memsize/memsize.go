// Package memsize estimates the heap memory a value retains, so that
// caches can be bounded by bytes rather than by a count of entries whose
// size varies a hundredfold (a DNS answer of one address against one of
// forty TXT strings; a policy of two mx lines against a 64 KiB one).
//
// An estimate follows what the Go runtime allocates: each object is
// rounded up to its size class (internal/runtime/gc's table, the same
// since Go 1.5 below 32 KiB), objects above 512 bytes that hold pointers
// carry an 8-byte header, small pointer-free objects share 16-byte blocks,
// and large objects take whole pages. Pointers are followed once per
// estimate, and a string whose bytes were already counted (a record's
// owner name sharing its answer's name) is counted once. What it cannot
// see — the GC's own metadata, fragmentation, map slots, which callers
// add with MapEntry — makes the estimate a little low; the callers' tests
// compare it with runtime.MemStats.
//
// It imports only the standard library, so that every package may use it.
package memsize

import (
	"reflect"
	"time"
	"unsafe"
)

// sizeClasses are the runtime's small object sizes (Go 1.26,
// internal/runtime/gc/sizeclasses.go), smallest first.
var sizeClasses = [...]uint16{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224,
	240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408,
	1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192,
	9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264,
	28672, 32768}

const (
	maxSmall   = 32768
	pageSize   = 8192
	tinySize   = 16
	headerSize = 8   // malloc header of a pointerful object above minHeader
	minHeader  = 512 // objects up to this size keep their pointer bitmap in the span
)

// Alloc returns the heap memory one allocation of n bytes takes: n rounded
// up to its size class, plus the malloc header of an object above 512
// bytes that holds pointers. Pointer-free objects under 16 bytes share a
// 16-byte block (the tiny allocator) and count their size rounded up to 8.
func Alloc(n int, pointers bool) int {
	switch {
	case n <= 0:
		return 0
	case !pointers && n < tinySize:
		return (n + 7) &^ 7
	}
	if pointers && n > minHeader {
		n += headerSize
	}
	if n > maxSmall {
		return (n + pageSize - 1) &^ (pageSize - 1)
	}
	lo, hi := 0, len(sizeClasses)-1
	for lo < hi {
		m := (lo + hi) / 2
		if int(sizeClasses[m]) < n {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return int(sizeClasses[lo])
}

// String returns the memory the bytes of s take on their own.
func String(s string) int { return Alloc(len(s), false) }

// MapEntry estimates what one entry of a Go map with keys and elements of
// the given sizes costs in slots: the slot and its control byte, over the
// occupancy of tables that double, then split, when 7/8 full (between
// 7/16 and 7/8), tables of 1024 slots taking whole pages. The true figure
// moves in steps as the map grows (from about 1.3 to 2.8 times the slot
// for 32-byte slots); twice the slot is near the middle.
func MapEntry(keySize, elemSize uintptr) int {
	return int((keySize + elemSize + 1) * 2)
}

// Of estimates the heap memory v retains, v itself included when it is a
// pointer (the pointed-to object) or a value stored in an interface. It
// follows pointers, slices, strings, interfaces and structs to any depth
// up to 64 levels; maps count their entries by MapEntry and their
// contents; funcs, channels, unsafe pointers and the *time.Location of a
// time.Time (shared by every time of its zone) count nothing. A pointer,
// slice or string seen twice counts once. Callers must not hand it a
// value that links to a structure it does not own (a list's neighbours).
func Of(v any) int {
	var w walker
	return w.top(reflect.ValueOf(v))
}

// Counter estimates several values as one graph: what they share is
// counted once. The zero value is ready to use.
type Counter struct {
	w walker
}

// Add returns the memory v retains that earlier calls have not counted.
func (c *Counter) Add(v any) int { return c.w.top(reflect.ValueOf(v)) }

// AddString returns the memory of s unless earlier calls counted it.
func (c *Counter) AddString(s string) int { return c.w.str(s) }

// walker remembers the objects counted so far in one estimate.
type walker struct {
	seen map[uintptr]struct{}
}

// first reports whether the object at p is seen for the first time.
func (w *walker) first(p uintptr) bool {
	if p == 0 {
		return false
	}
	if w.seen == nil {
		w.seen = make(map[uintptr]struct{}, 8)
	}
	if _, ok := w.seen[p]; ok {
		return false
	}
	w.seen[p] = struct{}{}
	return true
}

func (w *walker) top(v reflect.Value) int {
	if !v.IsValid() {
		return 0
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.String, reflect.Map:
		return w.value(v, 0)
	}
	// A non-pointer value handed over in an interface: its box.
	return Alloc(int(v.Type().Size()), hasPointers(v.Type())) + w.value(v, 0)
}

func (w *walker) str(s string) int {
	if len(s) == 0 || !w.first(uintptr(unsafe.Pointer(unsafe.StringData(s)))) {
		return 0
	}
	return String(s)
}

const maxDepth = 64

// locationType is time.Location: a time.Time points to one, which is
// time.Local, time.UTC or a zone loaded once and shared, never the
// time's own.
var locationType = reflect.TypeFor[*time.Location]()

// value returns what v retains beyond its own inline bytes.
func (w *walker) value(v reflect.Value, depth int) int {
	if depth > maxDepth {
		return 0
	}
	switch v.Kind() {
	case reflect.String:
		return w.str(v.String())
	case reflect.Pointer:
		if v.IsNil() || v.Type() == locationType || !w.first(v.Pointer()) {
			return 0
		}
		e := v.Elem()
		return Alloc(int(e.Type().Size()), hasPointers(e.Type())) + w.value(e, depth+1)
	case reflect.Slice:
		if v.IsNil() || v.Cap() == 0 || !w.first(v.Pointer()) {
			return 0
		}
		et := v.Type().Elem()
		n := Alloc(v.Cap()*int(et.Size()), hasPointers(et))
		if hasPointers(et) {
			for i := range v.Len() {
				n += w.value(v.Index(i), depth+1)
			}
		}
		return n
	case reflect.Array:
		n := 0
		if hasPointers(v.Type().Elem()) {
			for i := range v.Len() {
				n += w.value(v.Index(i), depth+1)
			}
		}
		return n
	case reflect.Struct:
		n := 0
		for i := range v.NumField() {
			if f := v.Field(i); hasPointers(f.Type()) {
				n += w.value(f, depth+1)
			}
		}
		return n
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		e := v.Elem()
		switch e.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.UnsafePointer:
			return w.value(e, depth+1)
		}
		return Alloc(int(e.Type().Size()), hasPointers(e.Type())) + w.value(e, depth+1)
	case reflect.Map:
		if v.IsNil() || !w.first(v.Pointer()) {
			return 0
		}
		t := v.Type()
		n := v.Len() * MapEntry(t.Key().Size(), t.Elem().Size())
		it := v.MapRange()
		for it.Next() {
			n += w.value(it.Key(), depth+1) + w.value(it.Value(), depth+1)
		}
		return n
	}
	return 0
}

// hasPointers reports whether values of t hold pointers (the runtime then
// scans them, and above 512 bytes gives them a header).
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.String, reflect.Map, reflect.Interface,
		reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}
