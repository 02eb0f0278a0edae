package resolver_test

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
)

// FuzzParseAnchors: an anchor file is operator input that may come from
// anywhere (a download, a configuration management template). ParseAnchors
// must never panic; it returns either a typed error or at least one
// anchor, each a DS of class IN with a lowercase absolute owner and a
// hexadecimal digest.
func FuzzParseAnchors(f *testing.F) {
	files, _ := filepath.Glob("testdata/anchors/*")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ds, err := resolver.ParseAnchors(strings.NewReader(string(in)))
		if err != nil {
			var e *resolver.AnchorsError
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			if ds != nil {
				t.Fatal("anchors with an error")
			}
			return
		}
		if len(ds) == 0 {
			t.Fatal("no anchors and no error")
		}
		for _, d := range ds {
			if d.Hdr.Class != dns.ClassINET || d.Hdr.Rrtype != dns.TypeDS || d.Hdr.Name != resolver.Fqdn(d.Hdr.Name) {
				t.Fatalf("anchor %v", d)
			}
			if b, err := hex.DecodeString(d.Digest); err != nil || len(b) == 0 {
				t.Fatalf("digest of %v", d)
			}
		}
	})
}
