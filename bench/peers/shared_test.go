package peers

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/modfile"
)

// mainModule is the module path whose root holds the shared data beside it.
const mainModule = "github.com/smtptls/smtptls"

// sharedEnv names the variable that overrides where the shared data is.
const sharedEnv = "SMTPTLS_SHARED"

// requireEnv names the variable that, set to "1", turns missing shared
// data into a failure (the project's CI sets it; CI=true alone does not).
const requireEnv = "SMTPTLS_REQUIRE_VECTORS"

// sharedDir returns the shared data directory: $SMTPTLS_SHARED, or
// ../shared beside the main module's root, found by walking up from the
// working directory to the go.mod that declares mainModule (this module's
// own go.mod is passed over). When it is absent the test is skipped, or
// fails under SMTPTLS_REQUIRE_VECTORS=1: the project's CI never passes by skipping.
//
// This is a local copy of the main module's internal finder, kept here so
// that the benchmark module depends on nothing internal to the library.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, why := findShared()
	if dir != "" {
		return dir
	}
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("shared test data not found (%s); %s=1 requires it", why, requireEnv)
	}
	t.Skipf("skipped: shared test data not found (%s); the peer test vectors are not part of the module: "+
		"place the project's shared/ directory beside the main module's root, or set %s to its path", why, sharedEnv)
	return ""
}

// sharedFile reads a file below the shared directory, skipping (or failing
// when required) like sharedDir when it is absent.
func sharedFile(t testing.TB, elem ...string) []byte {
	t.Helper()
	p := filepath.Join(append([]string{sharedDir(t)}, elem...)...)
	b, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) && os.Getenv(requireEnv) != "1" {
			t.Skipf("skipped: shared test data: %v (set %s to the project's shared/ directory)", err, sharedEnv)
		}
		t.Fatalf("shared test data: %v", err)
	}
	return b
}

func findShared() (dir, why string) {
	if d := os.Getenv(sharedEnv); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d, ""
		}
		return "", sharedEnv + "=" + d + " is not a directory"
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err.Error()
	}
	for d := wd; ; {
		if modulePath(filepath.Join(d, "go.mod")) == mainModule {
			s := filepath.Join(filepath.Dir(d), "shared")
			if st, err := os.Stat(s); err == nil && st.IsDir() {
				return s, ""
			}
			return "", "no shared directory beside the root of " + mainModule
		}
		p := filepath.Dir(d)
		if p == d {
			return "", "no go.mod declaring " + mainModule + " above the working directory"
		}
		d = p
	}
}

// modulePath returns the module path declared by the go.mod file at p, or
// "" when there is none.
func modulePath(p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return modfile.ModulePath(data)
}
