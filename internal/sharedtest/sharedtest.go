// Package sharedtest finds the project's shared test data (the peer test
// vectors and specification checklists kept beside the module, in
// ../shared) for tests that read it at test time.
//
// The data is never copied into this module. Tests locate it from the
// module root (the directory holding go.mod, walking up from the test's
// working directory) as ../shared, or from the SMTPTLS_SHARED environment
// variable. When it is absent a test is skipped with a message that names
// the missing file and how to provide it, so that a fork's CI stays green
// without the data. With SMTPTLS_REQUIRE_VECTORS=1 (the project's own CI
// sets it) a missing data set fails the test instead: that CI must never
// pass by skipping the peer vectors. The generic CI=true that most CI
// systems set is deliberately not enough.
package sharedtest

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvVar names the environment variable that overrides the location.
const EnvVar = "SMTPTLS_SHARED"

// RequireVar names the environment variable that, set to "1", turns a
// missing data set from a skip into a failure.
const RequireVar = "SMTPTLS_REQUIRE_VECTORS"

// Required reports whether missing shared data must fail tests.
func Required() bool { return os.Getenv(RequireVar) == "1" }

// Dir returns the shared directory, or skips t (fails it when Required).
func Dir(t testing.TB) string {
	t.Helper()
	dir, why := find()
	if dir == "" {
		missing(t, "the shared test data directory", why)
	}
	return dir
}

// Path returns the path of elem below the shared directory, skipping t
// (failing it when Required) when the directory or the file is absent.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	rel := filepath.Join(elem...)
	dir, why := find()
	if dir == "" {
		missing(t, "shared/"+filepath.ToSlash(rel), why)
		return ""
	}
	p := filepath.Join(dir, rel)
	if _, err := os.Stat(p); err != nil {
		missing(t, "shared/"+filepath.ToSlash(rel), err.Error())
	}
	return p
}

// ReadFile reads a file below the shared directory.
func ReadFile(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Hint is the part of every skip message that says how to get the data.
const Hint = "the peer test vectors are not part of the module: place the project's shared/ " +
	"directory beside the module root, or set " + EnvVar + " to its path " +
	"(" + RequireVar + "=1 makes this a failure)"

// missing skips or fails t for the data named what.
func missing(t testing.TB, what, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s not found (%s); %s=1 requires it", what, why, RequireVar)
		return
	}
	t.Skipf("skipped: %s not found (%s); %s", what, why, Hint)
}

func find() (dir, why string) {
	if d := os.Getenv(EnvVar); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d, ""
		}
		return "", EnvVar + "=" + d + " is not a directory"
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err.Error()
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			s := filepath.Join(filepath.Dir(d), "shared")
			if st, err := os.Stat(s); err == nil && st.IsDir() {
				return s, ""
			}
			// A nested module (its own go.mod) sits inside the main
			// module: keep walking up to the outermost one.
		}
		p := filepath.Dir(d)
		if p == d {
			return "", "no shared/ beside the module root and " + EnvVar + " unset"
		}
		d = p
	}
}
