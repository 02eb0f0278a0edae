package postfixlab

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// RequireVar names the environment variable that, set to "1", turns a
// test that cannot run its external peers into a failure instead of a
// skip. The project's CI sets it; a fork's CI that only sets CI=true
// skips.
const RequireVar = "SMTPTLS_REQUIRE_PEERS"

// labCommands are the commands every lab runs: Postfix's master and the
// tools that make the private namespaces.
var labCommands = []string{"postfix", "unshare", "ip", "mount"}

// Require returns when the test runs as root and finds postfix, unshare,
// ip, mount and the extra commands on PATH. Otherwise it skips the test,
// or fails it when RequireVar is "1". script names what installs the
// missing packages, for the message.
func Require(tb testing.TB, script string, extra ...string) {
	tb.Helper()
	if why := unmet(script, os.Geteuid(), append(slices.Clone(labCommands), extra...)); why != "" {
		if os.Getenv(RequireVar) == "1" {
			tb.Fatal(why)
			return
		}
		tb.Skip(why)
	}
}

// unmet says why a lab cannot run with these commands as user euid, or
// returns "".
func unmet(script string, euid int, commands []string) string {
	var missing []string
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	switch {
	case len(missing) > 0:
		return "missing commands: " + strings.Join(missing, " ") + " (" + script + " installs Debian's postfix and the namespace tools, as root)"
	case euid != 0:
		return "the Postfix interop test runs Postfix and needs root"
	}
	return ""
}
