package deliver_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADME: the embedding in README.md "Using it" is the Example, line
// for line, so that the README shows code that compiles and runs.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skip("README.md not found:", err)
	}
	ex, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(ex)
	b := strings.Index(s, "// README: begin\n")
	e := strings.Index(s, "\t// README: end")
	if b < 0 || e < b {
		t.Fatal("markers missing in example_test.go")
	}
	var lines []string
	for _, l := range strings.Split(s[b+len("// README: begin\n"):e], "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	if code := strings.Join(lines, "\n"); !strings.Contains(string(readme), "```go\n"+code+"```") {
		t.Errorf("README.md does not show the Example's code:\n%s", code)
	}
}
