package e2e_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/smtptls/smtptls"

// goList runs "go list" with a template over the named packages and
// returns one line per package.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestLayering checks the import rules of DESIGN.md ("Layers"): imports
// point downward only.
func TestLayering(t *testing.T) {
	deps := func(pkg string) []string { return goList(t, "-deps", mod+"/"+pkg) }
	imports := func(pkg string) []string {
		return strings.Fields(goList(t, "-f", "{{join .Imports \" \"}}", mod+"/"+pkg)[0])
	}
	t.Run("dane and mtasts never reach each other", func(t *testing.T) {
		if slices.Contains(deps("dane"), mod+"/mtasts") {
			t.Error("dane reaches mtasts")
		}
		if slices.Contains(deps("mtasts"), mod+"/dane") {
			t.Error("mtasts reaches dane")
		}
	})
	t.Run("no library package reaches smtptlstest", func(t *testing.T) {
		for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Deps \" \"}}", mod+"/...") {
			f := strings.Fields(line)
			p := f[0]
			if strings.HasPrefix(p, mod+"/smtptlstest") || strings.HasPrefix(p, mod+"/examples") ||
				strings.HasPrefix(p, mod+"/internal/e2e") || strings.HasPrefix(p, mod+"/interop") {
				continue
			}
			if slices.Contains(f[1:], mod+"/smtptlstest") {
				t.Errorf("%s reaches smtptlstest", p)
			}
		}
	})
	t.Run("only the test kit, tests and examples reach go-smtp", func(t *testing.T) {
		// deliver has its own SMTP client (its doc.go says why).
		for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Deps \" \"}}", mod+"/...") {
			f := strings.Fields(line)
			p := f[0]
			if strings.HasPrefix(p, mod+"/smtptlstest") || strings.HasPrefix(p, mod+"/examples") ||
				strings.HasPrefix(p, mod+"/internal/e2e") || strings.HasPrefix(p, mod+"/interop") {
				continue
			}
			if slices.Contains(f[1:], "github.com/emersion/go-smtp") {
				t.Errorf("%s reaches github.com/emersion/go-smtp", p)
			}
		}
	})
	t.Run("tlsverify imports neither net nor a resolver package", func(t *testing.T) {
		for _, imp := range imports("tlsverify") {
			if imp == "net" || strings.HasPrefix(imp, mod+"/resolver") {
				t.Errorf("tlsverify imports %s", imp)
			}
		}
	})
	t.Run("tlsrpt and tlsverify import only leaves of ours", func(t *testing.T) {
		allowed := map[string][]string{
			"tlsrpt":           {mod + "/internal/dnsname", mod + "/internal/quote"},
			"tlsverify":        {mod + "/internal/dnsname", mod + "/internal/quote", mod + "/tlsrpt"},
			"internal/dnsname": {mod + "/internal/quote"},
			"internal/quote":   nil,
			"internal/memsize": nil,
		}
		for pkg, ok := range allowed {
			for _, imp := range imports(pkg) {
				if strings.HasPrefix(imp, mod) && !slices.Contains(ok, imp) {
					t.Errorf("%s imports %s", pkg, imp)
				}
			}
		}
	})
	t.Run("only internal/dnsname imports idna", func(t *testing.T) {
		for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"/...") {
			f := strings.Fields(line)
			if f[0] != mod+"/internal/dnsname" && slices.Contains(f[1:], "golang.org/x/net/idna") {
				t.Errorf("%s imports golang.org/x/net/idna", f[0])
			}
		}
	})
	t.Run("only tests reach internal/postfixlab, which imports nothing of ours", func(t *testing.T) {
		// The Postfix lab runs Postfix for the interop tests; .Deps holds
		// no test imports, so any package reaching it is a non-test one.
		// The interop tests are behind the "postfix" build tag: list with
		// it too.
		for _, tags := range [][]string{nil, {"-tags", "postfix"}} {
			args := append(tags, "-f", "{{.ImportPath}} {{join .Deps \" \"}}", mod+"/...")
			for _, line := range goList(t, args...) {
				f := strings.Fields(line)
				if slices.Contains(f[1:], mod+"/internal/postfixlab") {
					t.Errorf("%s reaches internal/postfixlab (tags %v)", f[0], tags)
				}
			}
		}
		for _, imp := range imports("internal/postfixlab") {
			if strings.HasPrefix(imp, mod) {
				t.Errorf("internal/postfixlab imports %s", imp)
			}
		}
	})
	t.Run("the validator does not import resolver", func(t *testing.T) {
		if slices.Contains(deps("resolver/internal/dnssec"), mod+"/resolver") {
			t.Error("resolver/internal/dnssec reaches resolver")
		}
	})
}
