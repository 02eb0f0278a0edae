package postfixlab

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stopTimeout bounds "postfix stop" and then the master's exit; past it
// the master is killed.
const stopTimeout = 10 * time.Second

// Lab is one private Postfix instance of a test: its directory tree, its
// configuration, and, once started, its master process.
type Lab struct {
	// Base is the lab's temporary directory, mode 0755 so that Postfix's
	// unprivileged processes reach what is in it; the test's cleanup
	// removes it.
	Base string
	// Etc is the config_directory (main.cf, master.cf): the -c of
	// Postfix's commands.
	Etc string
	// Queue is the queue_directory; "postfix start-fg" fills it.
	Queue string
	// Maillog is the log file (maillog_file) Postfix writes, through
	// postlogd, instead of syslog.
	Maillog string
	// UID and GID are the ids of the postfix user and its group.
	UID, GID int

	tb   testing.TB
	data string
}

// New makes the directory tree of a lab in a fresh temporary directory
// named after pattern (as os.MkdirTemp): Etc, Queue and a data_directory
// owned by the postfix user. It fails tb when the postfix user does not
// exist.
func New(tb testing.TB, pattern string) *Lab {
	tb.Helper()
	base, err := os.MkdirTemp("", pattern)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		tb.Fatal(err)
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		tb.Fatalf("postfixlab: the postfix user: %v", err)
	}
	l := &Lab{Base: base, Maillog: filepath.Join(base, "maillog"), tb: tb}
	if l.UID, err = strconv.Atoi(pf.Uid); err != nil {
		tb.Fatalf("postfixlab: uid of postfix: %v", err)
	}
	if l.GID, err = strconv.Atoi(pf.Gid); err != nil {
		tb.Fatalf("postfixlab: gid of postfix: %v", err)
	}
	l.Etc = l.Mkdir("etc", false)
	l.Queue = l.Mkdir("queue", false)
	l.data = l.Mkdir("data", false)
	// Only the user: Postfix checks that data_directory is the mail
	// owner's, and the group stays root's as on a packaged install.
	if err := os.Chown(l.data, l.UID, -1); err != nil {
		tb.Fatal(err)
	}
	return l
}

// path returns the file name in Base, failing the test unless name is
// one plain path element (files of a lab never leave Base).
func (l *Lab) path(name string) string {
	l.tb.Helper()
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		l.tb.Fatalf("postfixlab: %q is not a file name in the lab", name)
	}
	return filepath.Join(l.Base, name)
}

// Mkdir makes the directory name in Base, mode 0755, owned by the
// postfix user and group if postfixOwned (a mailbox base, for example),
// and returns its path.
func (l *Lab) Mkdir(name string, postfixOwned bool) string {
	l.tb.Helper()
	p := l.path(name)
	if err := os.Mkdir(p, 0o755); err != nil {
		l.tb.Fatal(err)
	}
	if postfixOwned {
		if err := os.Chown(p, l.UID, l.GID); err != nil {
			l.tb.Fatal(err)
		}
	}
	return p
}

// WriteFile writes the file name in Base and returns its path.
func (l *Lab) WriteFile(name string, data []byte, perm os.FileMode) string {
	l.tb.Helper()
	p := l.path(name)
	if err := os.WriteFile(p, data, perm); err != nil {
		l.tb.Fatal(err)
	}
	return p
}

// WriteKeyPair writes key (PKCS #8) and then the chain (DER, leaf first)
// as PEM into the file name in Base, mode 0600, in the order
// smtpd_tls_chain_files wants, and returns its path.
func (l *Lab) WriteKeyPair(name string, chain [][]byte, key crypto.PrivateKey) string {
	l.tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		l.tb.Fatalf("postfixlab: %s: %v", name, err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, c := range chain {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return l.WriteFile(name, b, 0o600)
}

// WriteCerts writes the certificates (DER) as PEM into the file name in
// Base, mode 0644 (a smtp_tls_CAfile, for example), and returns its path.
func (l *Lab) WriteCerts(name string, certs ...[]byte) string {
	l.tb.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return l.WriteFile(name, b, 0o644)
}

// Configure writes main.cf from s over the lab's defaults (IPv4, no local
// delivery, no aliases, no relay host, no delay warnings), with the
// lab's own directories, owner and log file, which s may not set; and
// master.cf from services (one entry a line: listeners, delivery agents)
// followed by Postfix's internal services, all without chroot.
func (l *Lab) Configure(s Settings, services ...string) {
	l.tb.Helper()
	main, err := mainCF(Settings{
		"queue_directory":       l.Queue,
		"data_directory":        l.data,
		"mail_owner":            "postfix",
		"setgid_group":          "postdrop",
		"maillog_file_prefixes": l.Base,
		"maillog_file":          l.Maillog,
	}, s)
	if err != nil {
		l.tb.Fatal(err)
	}
	master, err := masterCF(services)
	if err != nil {
		l.tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Etc, "main.cf"), []byte(main), 0o644); err != nil {
		l.tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Etc, "master.cf"), []byte(master), 0o644); err != nil {
		l.tb.Fatal(err)
	}
}

// Command returns the Postfix command name (postmap, postqueue, postconf,
// sendmail ...) with the lab's configuration, "-c Etc" ("-C Etc" for
// sendmail), before args. ctx kills it.
func (l *Lab) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	flag := "-c"
	if name == "sendmail" {
		flag = "-C"
	}
	return exec.CommandContext(ctx, name, append([]string{flag, l.Etc}, args...)...)
}

// Start starts the lab's Postfix in the foreground ("postfix start-fg",
// which runs "postfix check" first and so creates the queue) and polls
// ready until it reports true. It fails the test, with the master's
// output, when the master exits or ctx ends first. The test's cleanup
// stops Postfix ("postfix stop", then a kill after stopTimeout) and, if
// the test failed, logs Postfix's log file.
func (l *Lab) Start(ctx context.Context, ready func() bool) {
	tb := l.tb
	tb.Helper()
	master := exec.Command("postfix", "-c", l.Etc, "start-fg")
	var out bytes.Buffer // read only once done is closed
	master.Stdout, master.Stderr = &out, &out
	// A daemon that kept the output pipe open must not hold Wait.
	master.WaitDelay = stopTimeout
	if err := master.Start(); err != nil {
		tb.Fatalf("postfix start-fg: %v", err)
	}
	done := make(chan struct{})
	var masterErr error
	go func() { masterErr = master.Wait(); close(done) }()
	tb.Cleanup(func() {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		l.Command(ctx, "postfix", "stop").Run()
		select {
		case <-done:
		case <-ctx.Done():
			master.Process.Kill()
			<-done
		}
		tb.Logf("Postfix stopped in %v", time.Since(t0).Round(time.Millisecond))
		if tb.Failed() {
			tb.Logf("Postfix log:\n%s", l.Log())
		}
	})
	exited := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	ok := Poll(ctx, func() bool { return exited() || ready() })
	if exited() {
		tb.Fatalf("Postfix exited: %v\n%s", masterErr, out.String())
	}
	if !ok {
		tb.Fatalf("Postfix did not start: %v", ctx.Err())
	}
}

// Log returns what Postfix has logged so far ("" before it logs).
func (l *Lab) Log() string {
	b, _ := os.ReadFile(l.Maillog)
	return string(b)
}

// Version returns Postfix's mail_version, or "" if postconf fails.
func (l *Lab) Version(ctx context.Context) string {
	out, err := l.Command(ctx, "postconf", "-h", "mail_version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
