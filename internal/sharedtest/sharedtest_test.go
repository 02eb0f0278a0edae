package sharedtest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skipf and Fatalf instead of
// stopping the goroutine, so that the choice between them can be tested.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                          {}
func (r *recorder) Skipf(format string, args ...any) { r.skipped = sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = sprintf(format, args...)
}

func sprintf(format string, args ...any) string {
	var b strings.Builder
	fmt.Fprintf(&b, format, args...)
	return b.String()
}

func TestMissingDataSkipsWithAHint(t *testing.T) {
	t.Setenv(EnvVar, t.TempDir()+"/absent")
	t.Setenv(RequireVar, "")
	t.Setenv("CI", "true") // a fork's CI: must still skip
	r := &recorder{TB: t}
	Path(r, "vectors", "openssl-dane", "danetest.in")
	if r.failed != "" {
		t.Fatalf("failed without %s=1: %s", RequireVar, r.failed)
	}
	for _, want := range []string{"shared/vectors/openssl-dane/danetest.in", EnvVar, RequireVar} {
		if !strings.Contains(r.skipped, want) {
			t.Errorf("skip message %q does not mention %q", r.skipped, want)
		}
	}
}

func TestMissingDataFailsWhenRequired(t *testing.T) {
	t.Setenv(EnvVar, t.TempDir()+"/absent")
	t.Setenv(RequireVar, "1")
	r := &recorder{TB: t}
	Path(r, "vectors", "mtasts", "x.json")
	if r.failed == "" || r.skipped != "" {
		t.Fatalf("with %s=1: failed %q, skipped %q; want a failure", RequireVar, r.failed, r.skipped)
	}
}

func TestMissingFileInPresentDirectory(t *testing.T) {
	t.Setenv(EnvVar, t.TempDir())
	t.Setenv(RequireVar, "")
	r := &recorder{TB: t}
	Path(r, "vectors", "nope.txt")
	if !strings.Contains(r.skipped, "shared/vectors/nope.txt") {
		t.Fatalf("skip message %q does not name the missing file", r.skipped)
	}
	t.Setenv(RequireVar, "1")
	r = &recorder{TB: t}
	Path(r, "vectors", "nope.txt")
	if r.failed == "" {
		t.Fatal("a missing file did not fail with the data required")
	}
}
