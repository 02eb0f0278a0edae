package mtasts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Durability of DirCache against other processes, full disks, missing
// permissions and corrupt files. The hard cases run in child processes
// (the test binary re-executed with durabilityChildEnv set), which may
// change what the parent must not: resource limits, signal dispositions,
// user IDs.

// durabilityChildEnv selects the child's role: "writer", "fsize" or
// "nobody"; durabilityDirEnv is the cache directory, durabilityIDEnv a
// writer's number.
const (
	durabilityChildEnv = "MTASTS_DURABILITY_CHILD"
	durabilityDirEnv   = "MTASTS_DURABILITY_DIR"
	durabilityIDEnv    = "MTASTS_DURABILITY_ID"
)

// TestDirCacheDurabilityChild is the entry point of the child processes;
// run alone it skips.
func TestDirCacheDurabilityChild(t *testing.T) {
	role := os.Getenv(durabilityChildEnv)
	if role == "" {
		t.Skip("run only as a child of the DirCache durability tests")
	}
	dir := os.Getenv(durabilityDirEnv)
	var err error
	switch role {
	case "writer":
		err = writerChild(dir, os.Getenv(durabilityIDEnv))
	case "fsize":
		err = fsizeChild(dir)
	case "nobody":
		err = nobodyChild(dir)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
}

// runChild runs the test binary as a child in role and fails t with its
// output unless it exits 0.
func runChild(t *testing.T, role, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDirCacheDurabilityChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), durabilityChildEnv+"="+role, durabilityDirEnv+"="+dir)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// version is a self-checking cache entry: a header naming its writer,
// sequence number and length, then that many copies of one byte. A torn
// or mixed write fails check.
func version(writer, seq int) []byte {
	n := 8000 + (writer*7919+seq*104729)%40000
	b := fmt.Appendf(nil, "v %d %d %d\n", writer, seq, n)
	return append(b, bytes.Repeat([]byte{byte('a' + writer%26)}, n)...)
}

func checkVersion(b []byte) error {
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if !ok || len(f) != 4 || f[0] != "v" {
		return fmt.Errorf("bad header %.40q", line)
	}
	w, _ := strconv.Atoi(f[1])
	seq, _ := strconv.Atoi(f[2])
	if !bytes.Equal(b, version(w, seq)) {
		return fmt.Errorf("torn entry: header %q, %d bytes", line, len(rest))
	}
	return nil
}

const sharedKey = "shared.example"

// writerRounds is how many times each writer process rewrites the
// shared entry and its own.
const writerRounds = 25

func writerChild(dir, id string) error {
	w, err := strconv.Atoi(id)
	if err != nil {
		return err
	}
	d := DirCache(dir)
	ctx := context.Background()
	own := "writer" + id + ".example"
	for seq := range writerRounds {
		if err := d.Put(ctx, sharedKey, version(w, seq)); err != nil {
			return err
		}
		if err := d.Put(ctx, own, version(w, seq)); err != nil {
			return err
		}
		got, err := d.Get(ctx, sharedKey)
		if err != nil {
			return err
		}
		if err := checkVersion(got); err != nil {
			return err
		}
	}
	return nil
}

// TestDirCacheMultiProcess: four processes rewrite one entry (and one
// each of their own) while the parent reads it: every read returns one
// whole version, every process's last write of its own key survives, and
// no temporary file is left behind.
func TestDirCacheMultiProcess(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := filepath.Join(t.TempDir(), "cache")
	const writers = 4
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := range writers {
		cmd := runChild(t, "writer", dir, durabilityIDEnv+"="+strconv.Itoa(i))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		outs = append(outs, &out)
	}
	done := make(chan struct{})
	var reads, torn int
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d := DirCache(dir)
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := d.Get(context.Background(), sharedKey)
			if errors.Is(err, ErrCacheMiss) {
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				readErr = err
				return
			}
			reads++
			if checkVersion(got) != nil {
				torn++
			}
		}
	}()
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %d: %v\n%s", i, err, outs[i])
		}
	}
	close(done)
	wg.Wait()
	if readErr != nil || torn > 0 {
		t.Fatalf("%d torn reads of %d; error %v", torn, reads, readErr)
	}
	d := DirCache(dir)
	if err := checkVersion(mustGet(t, d, sharedKey)); err != nil {
		t.Errorf("final shared entry: %v", err)
	}
	for i := range writers {
		got := mustGet(t, d, "writer"+strconv.Itoa(i)+".example")
		if !bytes.Equal(got, version(i, writerRounds-1)) {
			t.Errorf("writer %d: its last write did not survive", i)
		}
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			t.Errorf("leftover temporary file %s", de.Name())
		}
	}
	t.Logf("%d reads of the shared entry while %d processes wrote it", reads, writers)
}

// fsizeChild writes under RLIMIT_FSIZE, which makes the kernel refuse
// file growth beyond the limit (EFBIG, after SIGXFSZ, which is ignored
// so that the write fails instead of killing the process): the disk is
// full as far as this process can tell.
func fsizeChild(dir string) error {
	signal.Ignore(syscall.SIGXFSZ)
	lim := syscall.Rlimit{Cur: 16 << 10, Max: 16 << 10}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	ctx := context.Background()
	d := DirCache(dir)
	old, err := d.Get(ctx, "victim.example")
	if err != nil {
		return fmt.Errorf("reading the old entry: %w", err)
	}
	// A small write still fits.
	if err := d.Put(ctx, "small.example", []byte("fits")); err != nil {
		return fmt.Errorf("small Put under the limit: %w", err)
	}
	err = d.Put(ctx, "victim.example", bytes.Repeat([]byte("n"), 48<<10))
	if !errors.Is(err, syscall.EFBIG) {
		return fmt.Errorf("Put over the limit: %v, want EFBIG", err)
	}
	got, err := d.Get(ctx, "victim.example")
	if err != nil || !bytes.Equal(got, old) {
		return fmt.Errorf("after the failed Put the entry is %d bytes, %v; want the old one", len(got), err)
	}

	// Through a Client: the failed write is logged, the fetched policy
	// applies from memory, the cache keeps the old entry.
	logger, logs := newTestLogger()
	c := &Client{Cache: d, Logger: logger}
	c.init()
	big := testEntry(nopTB{}, "victim.example", Enforce, time.Hour, time.Now())
	big.body = append(big.body, []byte("x-pad: "+strings.Repeat("p", 40<<10)+"\n")...)
	if big.policy, err = ParsePolicy(big.body); err != nil {
		return err
	}
	c.put(ctx, big)
	if !strings.Contains(logs.String(), "cache put failed") {
		return fmt.Errorf("failed write not logged: %q", logs)
	}
	if st := c.state(ctx, "victim.example"); st.entry != big {
		return errors.New("the new policy does not apply from memory")
	}
	if got, _ := d.Get(ctx, "victim.example"); !bytes.Equal(got, old) {
		return errors.New("the failed write damaged the old entry")
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			return fmt.Errorf("temporary file %s left behind", de.Name())
		}
	}
	return nil
}

// nopTB satisfies testEntry's testing.TB in a child, where a failure is
// reported through the exit status instead.
type nopTB struct{ testing.TB }

func (nopTB) Helper()           {}
func (nopTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

// TestDirCacheDiskFull: a write that fails for lack of space (simulated
// with RLIMIT_FSIZE in a child) keeps the old entry, leaves no temporary
// file, and through a Client is logged while the new policy still applies
// from memory.
func TestDirCacheDiskFull(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := filepath.Join(t.TempDir(), "cache")
	e := testEntry(t, "victim.example", Enforce, time.Hour, time.Now())
	if err := DirCache(dir).Put(context.Background(), "victim.example", e.marshal()); err != nil {
		t.Fatal(err)
	}
	if out, err := runChild(t, "fsize", dir).CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// nobodyChild drops to the unprivileged user nobody and uses a cache
// directory it may not read or write: every operation fails with a
// permission error (Get never with ErrCacheMiss, which would read as "no
// policy" rather than "cache broken"), and a Client logs it and reads it
// as a miss.
func nobodyChild(dir string) error {
	// Group first: once the user is nobody, changing the group is not
	// allowed. Go applies both to every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(65534); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(65534); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	if os.Geteuid() != 65534 {
		return fmt.Errorf("still uid %d", os.Geteuid())
	}
	ctx := context.Background()
	for _, sub := range []string{"private", "readonly"} {
		d := DirCache(filepath.Join(dir, sub))
		_, err := d.Get(ctx, "victim.example")
		if !errors.Is(err, fs.ErrPermission) || errors.Is(err, ErrCacheMiss) {
			return fmt.Errorf("%s: Get: %v, want a permission error", sub, err)
		}
		if err := d.Put(ctx, "victim.example", []byte("mine")); !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%s: Put: %v, want a permission error", sub, err)
		}
		if err := d.Put(ctx, "new.example", []byte("mine")); !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%s: Put of a new key: %v, want a permission error", sub, err)
		}
		if err := d.Delete(ctx, "victim.example"); !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%s: Delete: %v, want a permission error", sub, err)
		}
		logger, logs := newTestLogger()
		c := &Client{Cache: d, Logger: logger}
		c.init()
		if e := c.load(ctx, "victim.example"); e != nil {
			return fmt.Errorf("%s: Client read an entry it may not read", sub)
		}
		if !strings.Contains(logs.String(), "cache get failed") {
			return fmt.Errorf("%s: unreadable cache not logged: %q", sub, logs)
		}
	}
	if _, err := DirCache(filepath.Join(dir, "private")).Keys(ctx); !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("Keys: %v, want a permission error", err)
	}
	return nil
}

// TestDirCachePermissions: run as root (as CI does), where chmod alone
// proves nothing, a child drops to nobody (65534) and meets a 0700
// root-owned cache directory and a readable directory holding a 0600
// root-owned entry.
func TestDirCachePermissions(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop privileges in a child; as a normal user, chmod tests suffice")
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	base := t.TempDir()
	// The test's temporary directory must be traversable by nobody.
	for p := base; p != filepath.Dir(p); p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
				t.Fatal(err)
			}
			if p != base {
				defer os.Chmod(p, fi.Mode().Perm())
			}
		}
	}
	ctx := context.Background()
	e := testEntry(t, "victim.example", Enforce, time.Hour, time.Now()).marshal()
	for _, sub := range []string{"private", "readonly"} {
		if err := DirCache(filepath.Join(base, sub)).Put(ctx, "victim.example", e); err != nil {
			t.Fatal(err)
		}
	}
	// private: 0700 (DirCache's own mode); readonly: 0755 with a 0600
	// entry.
	if err := os.Chmod(filepath.Join(base, "readonly"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runChild(t, "nobody", base).CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// Nothing changed.
	for _, sub := range []string{"private", "readonly"} {
		d := DirCache(filepath.Join(base, sub))
		if got := mustGet(t, d, "victim.example"); !bytes.Equal(got, e) {
			t.Errorf("%s: entry changed", sub)
		}
		if k := keys(t, d); !slices.Equal(k, []string{"victim.example"}) {
			t.Errorf("%s: keys %q", sub, k)
		}
	}
}

// TestDirCacheCorruptEntries: whatever is in an entry's file, a Client
// reads it as a miss and logs it; it never panics and never applies a
// policy it cannot fully decode.
func TestDirCacheCorruptEntries(t *testing.T) {
	t.Parallel()
	good := testEntry(t, "victim.example", Enforce, time.Hour, time.Now()).marshal()
	other := testEntry(t, "other.example", Enforce, time.Hour, time.Now()).marshal()
	cases := map[string][]byte{
		"empty":                  {},
		"garbage":                []byte("\x00\xff garbage"),
		"truncated header":       good[:30],
		"truncated body":         good[:len(good)-5],
		"trailing bytes":         append(bytes.Clone(good), "x"...),
		"another domain's entry": other,
		// Edits that hold whatever the header's layout: a version this
		// code does not know, and a header mode (the first "enforce")
		// that disagrees with the body's.
		"unknown version": bytes.Replace(good, []byte("smtptls-mtasts "), []byte("smtptls-mtasts 9"), 1),
		"mode edited":     bytes.Replace(good, []byte("enforce"), []byte("testing"), 1),
		"oversized":       bytes.Repeat([]byte("x"), maxEntrySize+1),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if bytes.Equal(data, good) {
				t.Fatal("the edit did not apply: the entry encoding changed")
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "victim.example"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			logger, logs := newTestLogger()
			c := &Client{Cache: DirCache(dir), Logger: logger}
			c.init()
			if e := c.load(context.Background(), "victim.example"); e != nil {
				t.Fatalf("corrupt entry decoded: %+v", e)
			}
			if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "victim.example") {
				t.Errorf("corrupt entry not logged: %q", l)
			}
		})
	}
}
