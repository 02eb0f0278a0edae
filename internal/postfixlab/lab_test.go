package postfixlab

import (
	"bufio"
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLab runs a lab end to end where it can (as root, with Postfix
// installed; it skips elsewhere, whatever RequireVar says, because the
// interop suites that install Postfix run after the unit tests): inside
// private namespaces, Postfix reads the configuration as Configure wrote
// it, starts, answers on its listener and logs to the lab's file; the
// cleanup stops it and removes the lab.
func TestLab(t *testing.T) {
	if why := unmet("deliver/interop.sh", os.Geteuid(), append(slices.Clone(labCommands), "postconf")); why != "" {
		t.Skip(why)
	}
	if !InNamespaces(t, time.Minute) {
		return
	}
	if os.Getpid() != 1 {
		t.Errorf("pid %d inside the new PID namespace, want 1", os.Getpid())
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Name != "lo" || ifs[0].Flags&net.FlagUp == 0 {
		t.Errorf("interfaces inside the new network namespace: %v, want lo alone, up", ifs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	const listener = "127.0.0.1:2525"
	var base string
	t.Cleanup(func() { // runs after the lab's own cleanups
		if c, err := net.DialTimeout("tcp", listener, time.Second); err == nil {
			c.Close()
			t.Error("Postfix still listens after the test")
		}
		if _, err := os.Stat(base); !os.IsNotExist(err) {
			t.Errorf("the lab's directory is still there: %v", err)
		}
	})
	lab := New(t, "postfixlab-test-")
	base = lab.Base
	if fi, err := os.Stat(lab.Base); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the lab's directory: %v %v, want mode 0755", fi.Mode(), err)
	}
	lab.Configure(Settings{"myhostname": "lab.example.test", "inet_interfaces": "127.0.0.1"},
		listener+" inet n - n - - smtpd")

	// postconf reads main.cf back as written: the lab's part, the
	// defaults and the test's settings.
	out, err := lab.Command(ctx, "postconf", "-n").Output()
	if err != nil {
		t.Fatalf("postconf -n: %v", err)
	}
	got := map[string]string{}
	for line := range strings.Lines(string(out)) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), " = ")
		got[name] = strings.TrimSuffix(value, " =")
	}
	for name, want := range map[string]string{
		"myhostname": "lab.example.test", "inet_interfaces": "127.0.0.1", "queue_directory": lab.Queue,
		"maillog_file": lab.Maillog, "mail_owner": "postfix", "compatibility_level": "3.6",
	} {
		if got[name] != want {
			t.Errorf("postconf: %s = %q, want %q", name, got[name], want)
		}
	}

	lab.Start(ctx, func() bool {
		c, err := net.DialTimeout("tcp", listener, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	c, err := net.DialTimeout("tcp", listener, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	banner, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(banner, "220 lab.example.test ESMTP") {
		t.Errorf("banner %q, %v", banner, err)
	}
	if v := lab.Version(ctx); v == "" {
		t.Error("no mail_version")
	}
	WaitFor(ctx, t, "Postfix to log its start", func() bool {
		return strings.Contains(lab.Log(), "daemon started")
	})
}
