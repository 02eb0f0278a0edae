package postfixlab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// NamespaceVar names the environment variable that marks the copy of a
// test binary running inside the private namespaces; its value is the
// name of the test that runs there.
const NamespaceVar = "SMTPTLS_POSTFIXLAB_NETNS"

// InNamespaces reports whether tb, a top-level test, runs inside the
// lab's private network, mount and PID namespaces, with the loopback
// interface up. If it does not, InNamespaces runs the test binary again
// for that test alone inside new namespaces (unshare(1), mounts private
// to it, /proc of its own), with timeout as its -test.timeout; it logs
// the copy's output, fails tb unless the copy passed, and returns false:
// the caller returns at once. The copy is killed if it outlives timeout
// by a minute (unshare's --kill-child takes the whole PID namespace with
// it), so a hung Postfix cannot hold the parent.
func InNamespaces(tb testing.TB, timeout time.Duration) bool {
	tb.Helper()
	name := tb.Name()
	if strings.Contains(name, "/") {
		tb.Fatalf("postfixlab.InNamespaces: %s is a subtest; only a top-level test can run again alone", name)
	}
	if os.Getenv(NamespaceVar) == name {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			tb.Fatalf("ip link set lo up: %v %s", err, out)
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc", "--",
		os.Args[0], "-test.run=^"+regexp.QuoteMeta(name)+"$", "-test.v", "-test.count=1", "-test.timeout="+timeout.String())
	cmd.Env = append(os.Environ(), NamespaceVar+"="+name)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	tb.Logf("in private namespaces:\n%s", out.String())
	if err != nil {
		tb.Fatalf("the test in private namespaces failed: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: "+name+" ") {
		tb.Fatalf("%s did not pass in the private namespaces", name)
	}
	return false
}
