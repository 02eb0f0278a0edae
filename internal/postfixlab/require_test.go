package postfixlab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pathWith sets PATH to a fresh directory holding executables of these
// names for the rest of the test.
func pathWith(t *testing.T, names ...string) {
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
}

func TestUnmet(t *testing.T) {
	cmds := append(slices.Clone(labCommands), "postmap")
	pathWith(t, "postfix", "ip")
	why := unmet("x/interop.sh", 0, cmds)
	if !strings.Contains(why, "missing commands: unshare mount postmap (x/interop.sh installs") {
		t.Errorf("two present, three missing: %q", why)
	}
	pathWith(t, cmds...)
	if why := unmet("x/interop.sh", 1000, cmds); !strings.Contains(why, "needs root") {
		t.Errorf("not root: %q", why)
	}
	if why := unmet("x/interop.sh", 0, cmds); why != "" {
		t.Errorf("all there, as root: %q", why)
	}
}

// recorder is a testing.TB that records Skip and Fatal instead of ending
// the goroutine, so that Require's choice between them can be seen.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()          {}
func (r *recorder) Skip(args ...any) { r.skipped = args[0].(string) }
func (r *recorder) Fatal(args ...any) {
	r.failed = args[0].(string)
}

func TestRequireSkipsOrFails(t *testing.T) {
	pathWith(t) // nothing on PATH
	t.Setenv(RequireVar, "")
	r := &recorder{TB: t}
	Require(r, "x/interop.sh")
	if r.failed != "" || !strings.Contains(r.skipped, "missing commands: postfix unshare ip mount") {
		t.Errorf("without %s: skipped %q, failed %q", RequireVar, r.skipped, r.failed)
	}
	t.Setenv(RequireVar, "1")
	r = &recorder{TB: t}
	Require(r, "x/interop.sh")
	if r.skipped != "" || !strings.Contains(r.failed, "missing commands: postfix") {
		t.Errorf("with %s=1: skipped %q, failed %q", RequireVar, r.skipped, r.failed)
	}
}
