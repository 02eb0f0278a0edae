package mtasts

import (
	"mime"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDirCacheKey: a cache key is a policy domain, which a peer chooses
// (the recipient domain of a message). Whatever it is, its file name is one
// path element directly inside the directory, never hidden, never a
// case-twin of another key's, and maps back to the key. (TestDirCache
// stores and reads hostile keys for real; fsync makes file I/O too slow
// for a fuzz loop.)
func FuzzDirCacheKey(f *testing.F) {
	for _, k := range []string{"example.com", "Example.COM", "../../etc/passwd", ".", "..", "", "%", "%41",
		"a/b", `a\b`, "a\x00b", "xn--bcher-kva.example", "bücher.example", ".hidden", strings.Repeat("a", 85)} {
		f.Add(k)
	}
	dir := filepath.Join(f.TempDir(), "cache")
	d := DirCache(dir)
	f.Fuzz(func(t *testing.T, key string) {
		name := escapeKey(key)
		if name == "" || name == "." || name == ".." || strings.HasPrefix(name, ".") ||
			strings.ContainsAny(name, "/\\\x00") || filepath.Base(name) != name {
			t.Fatalf("key %q escapes to the unsafe file name %q", key, name)
		}
		if back, ok := unescapeKey(name); !ok || back != key {
			t.Fatalf("key %q -> %q -> %q, %v", key, name, back, ok)
		}
		if up := strings.ToUpper(key); up != key && escapeKey(up) == name {
			t.Fatalf("keys %q and %q share the file %q", key, up, name)
		}
		if len(name) > 255 {
			if _, err := d.path(key); err == nil {
				t.Fatalf("over-long file name of %d bytes accepted", len(name))
			}
			return
		}
		p, err := d.path(key)
		if err != nil || filepath.Dir(p) != dir || filepath.Base(p) != name {
			t.Fatalf("key %q maps to %q (%v), outside %q", key, p, err, dir)
		}
	})
}

// FuzzMediaType: the Content-Type of a policy response is peer input.
// Only text/plain (any case, any parameters) and the configured extras
// may pass, and the check never panics.
func FuzzMediaType(f *testing.F) {
	for _, ct := range []string{"text/plain", "TEXT/PLAIN; charset=utf-8", "text/html", "text/plain, text/html",
		`text/plain; charset="x`, "text/plainx", "", ";", "application/octet-stream", "text/plain; a=1; a=2"} {
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		if !acceptableMediaType(ct, nil) {
			return
		}
		mt, _, err := mime.ParseMediaType(ct)
		if (err != nil && mt == "") || mt != "text/plain" {
			t.Fatalf("%q accepted as text/plain (parsed %q, %v)", ct, mt, err)
		}
		if !acceptableMediaType(ct, []string{"application/x-other"}) {
			t.Fatalf("extra media types narrowed the check for %q", ct)
		}
	})
}
