package smtptlstest

import (
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// TestCanonicalOrder checks the example ordering of RFC 4034 section 6.1.
func TestCanonicalOrder(t *testing.T) {
	t.Parallel()
	want := []string{
		"example.",
		"a.example.",
		"yljkjljk.a.example.",
		"Z.a.example.",
		"zABC.a.EXAMPLE.",
		"z.example.",
		`\001.z.example.`,
		"*.z.example.",
		`\200.z.example.`,
	}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, canonicalCompare)
	if !slices.Equal(got, want) {
		t.Errorf("order:\n%v\nwant\n%v", got, want)
	}
}

func TestNameHelpers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"", "."}, {".", "."}, {"Example.COM", "example.com."}, {"example.com.", "example.com."},
		{"bücher.example", "xn--bcher-kva.example."}, {"_25._tcp.MX.example", "_25._tcp.mx.example."},
		{"x.1.2.3.4", "x.1.2.3.4."}, {"-a.example", "-a.example."},
	} {
		if got, err := fqdn(tt.in); err != nil || got != tt.want {
			t.Errorf("fqdn(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	// Spaces used to be trimmed, and invalid UTF-8 to become the A-label
	// of U+FFFD (xn--zn7ca): both are errors now (dnsname.Owner).
	for _, bad := range []string{"a..b", "-\x00.", string(make([]byte, 300)), "  mx.example ", "\xff\xfe.example", "a b.example", "a.example.."} {
		if _, err := fqdn(bad); err == nil {
			t.Errorf("fqdn(%q): no error", bad)
		}
	}
	if h, _ := hostName("MX.Example.com."); h != "mx.example.com" {
		t.Errorf("hostName = %q", h)
	}
	for _, tt := range []struct {
		name string
		n    int
		want string
	}{
		{"a.b.c.", 0, "."}, {"a.b.c.", 1, "c."}, {"a.b.c.", 2, "b.c."}, {"a.b.c.", 3, "a.b.c."}, {"a.b.c.", 9, "a.b.c."}, {".", 1, "."},
	} {
		if got := ancestorAt(tt.name, tt.n); got != tt.want {
			t.Errorf("ancestorAt(%q, %d) = %q, want %q", tt.name, tt.n, got, tt.want)
		}
	}
	for in, want := range map[string]string{"a.b.": "b.", "b.": ".", ".": ""} {
		if got := parentName(in); got != want {
			t.Errorf("parentName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAlterDS(t *testing.T) {
	t.Parallel()
	for _, digest := range []string{"AB10", "ab1f", "0000"} {
		ds := &dns.DS{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeDS, Class: dns.ClassINET}, Digest: digest}
		out := alterDS([]dns.RR{ds})
		if got := out[0].(*dns.DS).Digest; len(got) != len(digest) || got == digest || ds.Digest != digest {
			t.Errorf("%s -> %s (original now %s)", digest, got, ds.Digest)
		}
	}
}

// TestIndexOccludesBelowCuts checks that names below a delegation take no
// part in the zone's namespace.
func TestIndexOccludesBelowCuts(t *testing.T) {
	t.Parallel()
	w := NewWorld()
	defer w.Close()
	z := w.AddZone("example.test", ZoneConfig{Signing: NSEC})
	z.MustAdd("sub NS ns.sub", "ns.sub A 192.0.2.53", "deep.below.sub TXT hidden", "x.y TXT visible")
	w.mu.RLock()
	defer w.mu.RUnlock()
	ix := z.index()
	for name, want := range map[string]bool{
		"sub.example.test.": true, "ns.sub.example.test.": false, "below.sub.example.test.": false,
		"y.example.test.": true, "x.y.example.test.": true,
	} {
		if ix.exists[name] != want {
			t.Errorf("exists[%s] = %v", name, ix.exists[name])
		}
	}
	if !ix.ents["y.example.test."] || !ix.cuts["sub.example.test."] {
		t.Errorf("ents %v cuts %v", ix.ents, ix.cuts)
	}
	for _, n := range ix.nsec {
		if dns.IsSubDomain("sub.example.test.", n.Hdr.Name) && n.Hdr.Name != "sub.example.test." {
			t.Errorf("NSEC below the cut: %v", n)
		}
	}
}
