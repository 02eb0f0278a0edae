package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair as posix_openpt(3), grantpt(3),
// unlockpt(3) and ptsname(3) do on Linux: /dev/ptmx, then the
// TIOCSPTLCK and TIOCGPTN ioctls.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	ioctl := func(req uintptr, arg unsafe.Pointer) error {
		rc, err := m.SyscallConn()
		if err != nil {
			return err
		}
		var errno syscall.Errno
		if err := rc.Control(func(fd uintptr) {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
		}); err != nil {
			return err
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
	var unlock int32
	var n uint32
	if err := ioctl(syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	if err := ioctl(syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open /dev/pts/%d: %v", n, err)
	}
	return m, s
}

// progressLine matches a drawn progress line: CR, erase to the end of
// the line, done/total, the rate, the errors and the ETA.
var progressLine = regexp.MustCompile(`\r\x1b\[K(\d+)/(\d+) domains, [0-9.]+/s, (\d+) errors, ETA \S+`)

// TestProgressTerminal runs a survey with stderr on a pseudo-terminal:
// the progress line is drawn, redrawn in place, ends at done = total
// with the errors counted, and a bad line of the list is printed on a
// line of its own.
func TestProgressTerminal(t *testing.T) {
	t.Parallel()
	if !isTerminal(mustSlave(t)) {
		t.Fatal("isTerminal is false for a pseudo-terminal")
	}
	master, slave := openPTY(t)
	defer master.Close()
	var tty bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		// Ends with EIO once the slave is closed.
		io.Copy(&tty, master)
	}()

	sw := newSynthWorld(t, 2*len(kinds))
	// Slow enough for several redraws.
	sw.w.SetDelay(5 * time.Millisecond)
	dir := t.TempDir()
	list := sw.list(t, dir, sw.domains)
	f, _ := os.OpenFile(list, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("not..a.domain\n")
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, sw.args("-out", filepath.Join(dir, "out.jsonl"), "-concurrency", "4", list), strings.NewReader(""), io.Discard, slave, sw.hooks())
	slave.Close()
	<-read
	if code != 0 {
		t.Fatalf("exit %d:\n%q", code, tty.String())
	}
	got := tty.String()
	lines := progressLine.FindAllStringSubmatch(got, -1)
	if len(lines) < 2 {
		t.Fatalf("%d progress lines drawn, want several:\n%q", len(lines), got)
	}
	last := lines[len(lines)-1]
	errs := countKind(sw.domains, "mx-servfail")
	if last[1] != last[2] || last[2] != strconv.Itoa(len(sw.domains)) || last[3] != strconv.Itoa(errs) {
		t.Errorf("last progress line %q, want %d/%d domains and %d errors", last[0], len(sw.domains), len(sw.domains), errs)
	}
	// The terminal turns "\n" into "\r\n": the bad line's report starts
	// on a cleared line and ends its own.
	if !regexp.MustCompile(`\r\x1b\[Ksurvey: \S+:\d+: .*\(skipped\)\r\n`).MatchString(got) {
		t.Errorf("bad line not reported on a line of its own:\n%q", got)
	}
}

func mustSlave(t *testing.T) *os.File {
	m, s := openPTY(t)
	t.Cleanup(func() { m.Close(); s.Close() })
	return s
}

// TestProgressNotTerminal: with stderr a file (or a pipe), no progress
// line is written, only the reports of bad lines.
func TestProgressNotTerminal(t *testing.T) {
	t.Parallel()
	sw := newSynthWorld(t, len(kinds))
	dir := t.TempDir()
	list := sw.list(t, dir, sw.domains)
	f, _ := os.OpenFile(list, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("not..a.domain\n")
	f.Close()
	errFile, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	if isTerminal(errFile) {
		t.Fatal("isTerminal is true for a regular file")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if isTerminal(w) {
		t.Fatal("isTerminal is true for a pipe")
	}
	w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := run(ctx, sw.args(list), strings.NewReader(""), io.Discard, errFile, sw.hooks()); code != 0 {
		t.Fatalf("exit %d", code)
	}
	b, err := os.ReadFile(errFile.Name())
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if got := string(b); strings.ContainsAny(got, "\r\x1b") || strings.Contains(got, "domains,") || !strings.HasSuffix(got, "(skipped)\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("stderr, not a terminal: %q", got)
	}
}
