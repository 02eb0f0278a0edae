package mtasts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testEntry(t testing.TB, domain string, mode Mode, maxAge time.Duration, fetched time.Time) *entry {
	t.Helper()
	body := fmt.Sprintf("version: STSv1\nmode: %s\nmax_age: %d\n", mode, int64(maxAge/time.Second))
	if mode != None {
		body += "mx: mx." + domain + "\n"
	}
	p, err := ParsePolicy([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return &entry{domain: domain, id: "id1", fetched: fetched, expires: fetched.Add(p.MaxAge), used: fetched,
		body: []byte(body), policy: p}
}

func TestEntryEncoding(t *testing.T) {
	t.Parallel()
	e := testEntry(t, "example.com", Enforce, time.Hour, t0)
	e.failAt, e.failID, e.failType, e.failKind = t0.Add(time.Minute), "id2", tlsrpt.STSWebPKIInvalid, KindCertificate
	data := e.marshal()
	if !bytes.HasPrefix(data, []byte("smtptls-mtasts 2 "+strconv.FormatInt(e.expires.Unix(), 10)+" enforce example.com id1 ")) {
		t.Fatalf("header: %q", data)
	}
	got, err := unmarshalEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.domain != e.domain || got.id != e.id || !got.fetched.Equal(e.fetched) || !got.expires.Equal(e.expires) ||
		!got.used.Equal(e.used) || !got.failAt.Equal(e.failAt) || got.failID != e.failID ||
		got.failType != e.failType || got.failKind != e.failKind || !bytes.Equal(got.body, e.body) ||
		got.policy.Mode != Enforce {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
	}
	exp, mode, ok := peekEntryString(string(data))
	if !ok || !exp.Equal(e.expires) || mode != Enforce {
		t.Errorf("peekEntryString = %v %q %v", exp, mode, ok)
	}

	// Every truncation and a selection of edits must be refused.
	for n := 0; n < len(data); n++ {
		if _, err := unmarshalEntry(data[:n]); err == nil {
			t.Fatalf("truncated entry (%d of %d bytes) accepted", n, len(data))
		}
	}
	for _, edit := range []struct{ old, new string }{
		{"smtptls-mtasts 2", "smtptls-mtasts 3"},
		{" enforce ", " none "},
		{" example.com ", " ../etc "},
		{" id1 ", " a-b "},
		{" id1 ", "  id1 "},
		{"smtptls-mtasts 2 17", "smtptls-mtasts 2 x17"},
		{" 1772", " 1772.1234567890"},
		{" " + strconv.Itoa(len(e.body)) + "\n", " 1" + strconv.Itoa(len(e.body)) + "\n"},
		{" sts-webpki-invalid ", " sts webpki "},
		{"invalid " + strconv.Itoa(int(KindCertificate)) + " ", "invalid 256 "},
		{"max_age: 3600", "max_age: x"},
	} {
		bad := bytes.Replace(data, []byte(edit.old), []byte(edit.new), 1)
		if bytes.Equal(bad, data) {
			t.Fatalf("edit %q did not apply", edit.old)
		}
		if _, err := unmarshalEntry(bad); err == nil {
			t.Errorf("entry with %q -> %q accepted", edit.old, edit.new)
		}
	}
}

// logBuffer collects log records for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func TestMemoryCacheEviction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := t0
	put := func(m *MemoryCache, d string, mode Mode, maxAge time.Duration) {
		t.Helper()
		if err := m.Put(ctx, d, testEntry(t, d, mode, maxAge, now).marshal()); err != nil {
			t.Fatal(err)
		}
	}
	has := func(m *MemoryCache, d string) bool {
		_, err := m.Get(ctx, d)
		return err == nil
	}

	t.Run("expired first", func(t *testing.T) {
		logger, logs := newTestLogger()
		m := NewMemoryCache(3)
		m.Logger, m.Now = logger, func() time.Time { return now.Add(2 * time.Hour) }
		put(m, "target.example", Enforce, 30*24*time.Hour)
		put(m, "expired.example", Enforce, time.Hour)
		put(m, "live.example", Testing, 30*24*time.Hour)
		has(m, "expired.example") // most recently used, still evicted first
		put(m, "new.example", Enforce, 30*24*time.Hour)
		if has(m, "expired.example") || !has(m, "target.example") || !has(m, "live.example") || !has(m, "new.example") {
			t.Errorf("keys %v", keys(t, m))
		}
		if logs.String() != "" {
			t.Errorf("logged %q", logs)
		}
	})
	t.Run("mode none next", func(t *testing.T) {
		logger, logs := newTestLogger()
		m := NewMemoryCache(2)
		m.Logger, m.Now = logger, func() time.Time { return now }
		put(m, "target.example", Enforce, 30*24*time.Hour)
		put(m, "none.example", None, 30*24*time.Hour)
		put(m, "new.example", Enforce, 30*24*time.Hour)
		if has(m, "none.example") || !has(m, "target.example") {
			t.Errorf("keys %v", keys(t, m))
		}
		if logs.String() != "" {
			t.Errorf("logged %q", logs)
		}
	})
	t.Run("undecodable before live", func(t *testing.T) {
		m := NewMemoryCache(2)
		m.Now = func() time.Time { return now }
		put(m, "target.example", Enforce, 30*24*time.Hour)
		m.Put(ctx, "garbage", []byte("not an entry"))
		put(m, "new.example", Enforce, 30*24*time.Hour)
		if has(m, "garbage") || !has(m, "target.example") {
			t.Errorf("keys %v", keys(t, m))
		}
	})
	t.Run("live eviction is logged, least recently used goes", func(t *testing.T) {
		logger, logs := newTestLogger()
		m := NewMemoryCache(2)
		m.Logger, m.Now = logger, func() time.Time { return now }
		put(m, "old.example", Enforce, 30*24*time.Hour)
		put(m, "target.example", Enforce, 30*24*time.Hour)
		has(m, "old.example")
		put(m, "attacker.example", Enforce, 30*24*time.Hour)
		if has(m, "target.example") || !has(m, "old.example") || !has(m, "attacker.example") {
			t.Errorf("keys %v", keys(t, m))
		}
		if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "domain=target.example") {
			t.Errorf("live eviction not logged: %q", l)
		}
	})
	t.Run("byte bound", func(t *testing.T) {
		m := NewMemoryCache(100)
		m.Logger, _ = newTestLogger()
		m.Now = func() time.Time { return now }
		probe := NewMemoryCache(0)
		put(probe, "a0.example", Enforce, time.Hour)
		one := probe.Bytes()
		if one < int64(len(mustGet(t, probe, "a0.example"))) {
			t.Fatalf("an entry is charged %d bytes, less than its data", one)
		}
		m.MaxBytes = 3*one + one/2
		for i := range 5 {
			put(m, fmt.Sprintf("a%d.example", i), Enforce, time.Hour)
			if b := m.Bytes(); b > m.MaxBytes {
				t.Fatalf("%d bytes under a bound of %d", b, m.MaxBytes)
			}
		}
		if m.Len() != 3 {
			t.Errorf("%d entries under a 3.5-entry byte bound", m.Len())
		}
		m.Delete(ctx, "a4.example")
		if b := m.Bytes(); b != 2*one {
			t.Errorf("%d bytes after a delete, want %d", b, 2*one)
		}
	})
	t.Run("replace and delete", func(t *testing.T) {
		m := NewMemoryCache(2)
		put(m, "a.example", Enforce, time.Hour)
		put(m, "a.example", Testing, time.Hour)
		if m.Len() != 1 {
			t.Errorf("Len = %d", m.Len())
		}
		data, _ := m.Get(ctx, "a.example")
		data[0] = 'X' // Get returns a copy
		if _, mode, ok := peekEntryString(string(mustGet(t, m, "a.example"))); !ok || mode != Testing {
			t.Errorf("entry not replaced or not copied")
		}
		m.Delete(ctx, "a.example")
		m.Delete(ctx, "a.example")
		if _, err := m.Get(ctx, "a.example"); !errors.Is(err, ErrCacheMiss) {
			t.Errorf("Get after Delete: %v", err)
		}
	})
}

func keys(t testing.TB, l Lister) []string {
	t.Helper()
	k, err := l.Keys(context.Background())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	slices.Sort(k)
	return k
}

func mustGet(t *testing.T, c Cache, key string) []byte {
	t.Helper()
	b, err := c.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDirCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "cache")
	d := DirCache(dir)
	if _, err := d.Get(ctx, "example.com"); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Get on a missing directory: %v", err)
	}
	if err := d.Put(ctx, "example.com", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, d, "example.com"); string(got) != "one" {
		t.Errorf("Get = %q", got)
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v", st.Mode().Perm())
	}
	st, _ = os.Stat(filepath.Join(dir, "example.com"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", st.Mode().Perm())
	}

	// Keys that try to leave the directory, hide or collide.
	hostile := []string{"../escape", "..", ".", "a/b", "/etc/passwd", `a\b`, "Example.com", ".hidden", "a\x00b", "%", "", "é"}
	for _, k := range hostile {
		if err := d.Put(ctx, k, []byte(k+"!")); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
		if got := mustGet(t, d, k); string(got) != k+"!" {
			t.Errorf("Get(%q) = %q", k, got)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 {
		t.Errorf("files outside the cache directory: %v", entries)
	}
	names, err := os.ReadDir(dir)
	if err != nil || len(names) == 0 {
		t.Fatalf("cache directory: %d files, %v", len(names), err)
	}
	for _, n := range names {
		if strings.HasPrefix(n.Name(), ".") || strings.ContainsAny(n.Name(), `/\`) {
			t.Errorf("unsafe file name %q", n.Name())
		}
	}
	want := append(slices.Clone(hostile), "example.com")
	slices.Sort(want)
	if got := keys(t, d); !slices.Equal(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}
	if got := mustGet(t, d, "example.com"); string(got) != "one" {
		t.Errorf("Example.com overwrote example.com: %q", got)
	}
	if err := d.Put(ctx, strings.Repeat("a", 256), nil); err == nil {
		t.Error("over-long key accepted")
	}
	if err := d.Delete(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "example.com"); err != nil {
		t.Errorf("second Delete: %v", err)
	}

	// A stale temporary file from a crash is ignored and cleaned.
	stale := filepath.Join(dir, ".tmp-123")
	os.WriteFile(stale, []byte("torn"), 0o600)
	os.Chtimes(stale, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	if slices.Contains(keys(t, d), ".tmp-123") {
		t.Error("temporary file listed as a key")
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("stale temporary file not removed")
	}

	// Oversized files are refused, not read whole.
	os.WriteFile(filepath.Join(dir, "big.example"), make([]byte, maxEntrySize+1), 0o600)
	if _, err := d.Get(ctx, "big.example"); err == nil || errors.Is(err, ErrCacheMiss) {
		t.Errorf("oversized entry: %v", err)
	}
	if err := d.Put(ctx, "big.example", make([]byte, maxEntrySize+1)); err == nil {
		t.Error("oversized Put accepted")
	}
}

func TestDirCacheConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := DirCache(t.TempDir())
	a, b := bytes.Repeat([]byte("a"), 20000), bytes.Repeat([]byte("b"), 30000)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range 20 {
				data := a
				if (i+j)%2 == 0 {
					data = b
				}
				if err := d.Put(ctx, "k.example", data); err != nil {
					t.Error(err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 40 {
				got, err := d.Get(ctx, "k.example")
				if errors.Is(err, ErrCacheMiss) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
					t.Errorf("torn read of %d bytes", len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
}

// crashChildEnv makes the test binary a child that rewrites one DirCache
// entry in a loop until it is killed.
const crashChildEnv = "MTASTS_DIRCACHE_CRASH_CHILD"

// crashVersion is entry version i of the crash test: large enough that a
// non-atomic write would be visible as a mixture.
func crashVersion(i int) []byte {
	return bytes.Repeat([]byte{byte('a' + i%2)}, 48<<10)
}

func TestDirCacheCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("run only as the child of TestDirCacheCrashSafety")
	}
	d := DirCache(dir)
	for i := 0; ; i++ {
		if err := d.Put(context.Background(), "victim.example", crashVersion(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if i == 0 {
			os.WriteFile(filepath.Join(dir, "..", "started"), nil, 0o600)
		}
	}
}

func TestDirCacheCrashSafety(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for round := range 3 {
		root := t.TempDir()
		dir := filepath.Join(root, "cache")
		d := DirCache(dir)
		if err := d.Put(context.Background(), "victim.example", crashVersion(1)); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestDirCacheCrashChild$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(root, "started")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child did not start: %s", stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(20+round*15) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child did not die by SIGKILL: %v; %s", err, stderr.String())
		}
		got, err := d.Get(context.Background(), "victim.example")
		if err != nil {
			t.Fatalf("round %d: entry unreadable after the crash: %v", round, err)
		}
		if !bytes.Equal(got, crashVersion(0)) && !bytes.Equal(got, crashVersion(1)) {
			t.Fatalf("round %d: torn entry of %d bytes after the crash", round, len(got))
		}
		if k := keys(t, d); !slices.Equal(k, []string{"victim.example"}) {
			t.Errorf("round %d: Keys after the crash = %q", round, k)
		}
	}
}
