// Package sharedtest finds the project's shared test data (the peer test
// vectors and specification checklists kept beside the module, in
// ../shared) for tests that read it at test time.
//
// The data is never copied into this module. Tests locate it from the
// module root (the directory holding go.mod, walking up from the test's
// working directory) as ../shared, or from the SMTPTLS_SHARED environment
// variable. When it is absent a test is skipped with a message, except when
// CI=true, where a missing data set fails the test: CI must never pass by
// skipping the peer vectors.
package sharedtest

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvVar names the environment variable that overrides the location.
const EnvVar = "SMTPTLS_SHARED"

// Dir returns the shared directory, or skips (fails under CI=true) t.
func Dir(t testing.TB) string {
	t.Helper()
	dir, why := find()
	if dir != "" {
		return dir
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("shared test data not found (%s); CI=true requires it", why)
	}
	t.Skipf("shared test data not found (%s); set %s to run this test", why, EnvVar)
	return ""
}

// Path returns the path of elem below the shared directory, skipping (or
// failing under CI=true) when the directory or the file is absent.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test data: %v", err)
		}
		t.Skipf("shared test data: %v", err)
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
			return "", "no ../shared beside the module root"
		}
		d = p
	}
}
