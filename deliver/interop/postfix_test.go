//go:build postfix

// TestPostfixReceives delivers through package deliver to a real Postfix
// smtpd (Debian's package): with DANE-EE and with MTA-STS enforce the
// message must arrive in the Postfix mailbox over a verified TLS session;
// a stripped STARTTLS and a wrong certificate (DANE and MTA-STS) must
// defer without sending anything. The test runs itself again inside new
// network, mount and PID namespaces (unshare(1)), as the postfix-tlspolicy
// interop does: Postfix listens on the private loopback only, runs with
// its own config_directory and queue_directory in a temporary directory,
// and everything it started dies with the PID namespace. Nothing of the
// machine's configuration is touched.

package interop_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

const envInNamespace = "SMTPTLS_DELIVER_INTEROP_NETNS"

// requirePostfix skips (or, with SMTPTLS_REQUIRE_PEERS=1, fails) when
// Postfix or the namespace tools are missing or the test is not root.
func requirePostfix(t *testing.T) {
	t.Helper()
	var missing []string
	for _, c := range []string{"postfix", "postconf", "unshare", "ip", "mount"} {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	why := ""
	switch {
	case len(missing) > 0:
		why = "missing commands: " + strings.Join(missing, " ") + " (deliver/interop.sh installs Debian's postfix)"
	case os.Geteuid() != 0:
		why = "the Postfix interop test runs Postfix and needs root"
	default:
		return
	}
	if os.Getenv("SMTPTLS_REQUIRE_PEERS") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func TestPostfixReceives(t *testing.T) {
	requirePostfix(t)
	if os.Getenv(envInNamespace) == "" {
		cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--",
			os.Args[0], "-test.run=^TestPostfixReceives$", "-test.v", "-test.count=1", "-test.timeout=150s")
		cmd.Env = append(os.Environ(), envInNamespace+"=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		t.Logf("in private namespaces:\n%s", out.String())
		if err != nil || !strings.Contains(out.String(), "--- PASS: TestPostfixReceives") {
			t.Fatalf("the test in private namespaces failed: %v", err)
		}
		return
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	w := smtptlstest.New(t)
	// One certificate for the Postfix server, issued by the world's CA
	// for the hosts that should match; mx.wrongcert.test is not among them.
	cert, err := w.CA().Issue(smtptlstest.CertOptions{}, "mx.dane.test", "mx.sts.test", "mx.stripped.test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.CA().Issue(smtptlstest.CertOptions{}, "elsewhere.test")
	if err != nil {
		t.Fatal(err)
	}
	const tlsPort, plainPort = "127.0.0.1:2525", "127.0.0.1:2526"
	type dom struct {
		name, mx, target string
		dane             *x509.Certificate // TLSA 3 1 1 of this certificate; nil: no DANE
		sts, signed      bool
		delivered        bool
		result           tlsrpt.ResultType
	}
	doms := []dom{
		{name: "dane.test", mx: "mx.dane.test", target: tlsPort, dane: cert.Leaf, signed: true, delivered: true},
		{name: "sts.test", mx: "mx.sts.test", target: tlsPort, sts: true, delivered: true},
		{name: "stripped.test", mx: "mx.stripped.test", target: plainPort, dane: cert.Leaf, signed: true, result: tlsrpt.StartTLSNotSupported},
		{name: "dane-wrong.test", mx: "mx.dane-wrong.test", target: tlsPort, dane: other.Leaf, signed: true, result: tlsrpt.ValidationFailure},
		{name: "wrongcert.test", mx: "mx.wrongcert.test", target: tlsPort, sts: true, result: tlsrpt.CertificateHostMismatch},
	}
	for i, d := range doms {
		cfg := smtptlstest.ZoneConfig{}
		if d.signed {
			cfg.Signing = smtptlstest.NSEC
		}
		z := w.AddZone(d.name, cfg)
		addr := netip.AddrFrom4([4]byte{127, 1, 0, byte(i + 1)})
		z.MustAdd("@ 300 IN MX 10 "+d.mx+".", d.mx+". 300 IN A "+addr.String())
		w.Register(addr, 25, d.target)
		if d.dane != nil {
			z.MustAdd(smtptlstest.TLSARecord("_25._tcp."+d.mx+".", d.dane, 3, 1, 1))
		}
		if d.sts {
			z.MustAdd(`_mta-sts 300 IN TXT "v=STSv1; id=1"`)
			w.SetPolicy(d.name, smtptlstest.Policy{Body: "version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\nmx: " + d.mx + "\r\n"})
		}
	}

	base := startPostfix(t, ctx, cert.Certificate, cert.PrivateKey, doms[0].name, doms[1].name, doms[2].name, doms[3].name, doms[4].name)
	_ = base

	c := w.Client()
	c.HelloName = "client.sender.test"
	for _, d := range doms {
		subject := "deliver interop " + d.name
		body := "From: a@sender.test\r\nTo: b@" + d.name + "\r\nSubject: " + subject + "\r\n\r\nHello Postfix.\r\n"
		res, err := c.Deliver(ctx, &deliver.Message{From: "a@sender.test", To: []string{"b@" + d.name},
			Body: strings.NewReader(body), Size: int64(len(body))})
		if err != nil {
			t.Fatal(err)
		}
		r := res.Rcpts[0]
		t.Logf("%s: %s %d %s %s (tls %v, verdict %v, tries %d)", d.name, r.Status, r.Code, r.Enhanced, r.Text, res.TLS, res.Verdict, len(res.Tries))
		if d.delivered {
			if r.Status != deliver.Delivered || !res.TLS || res.Verdict.String() != "verified" {
				t.Errorf("%s: not delivered over a verified session: %+v", d.name, res)
				continue
			}
			if !waitMailbox(ctx, base, subject) {
				t.Errorf("%s: the message did not arrive in the Postfix mailbox", d.name)
			}
			continue
		}
		if r.Status != deliver.Deferred || len(res.Tries) != 1 || res.Tries[0].Result != d.result {
			t.Errorf("%s: %+v, want Deferred with %s", d.name, res, d.result)
		}
	}
	// Nothing but the two delivered messages may have arrived.
	time.Sleep(500 * time.Millisecond)
	if n := countMailbox(base); n != 2 {
		t.Errorf("%d messages in the mailbox, want 2", n)
	}
	log := readFile(filepath.Join(base, "maillog"))
	if strings.Count(log, "TLS connection established from") < 2 {
		t.Errorf("Postfix logged fewer than two TLS sessions:\n%s", log)
	}
	if t.Failed() {
		t.Logf("Postfix log:\n%s", log)
	}
}

// startPostfix writes a private Postfix instance (smtpd with STARTTLS on
// tlsPort, without on plainPort; virtual mailboxes for domains in
// base/mail/inbox) and starts it; the test's cleanup stops it.
func startPostfix(t *testing.T, ctx context.Context, chain [][]byte, key any, domains ...string) string {
	t.Helper()
	base, err := os.MkdirTemp("", "deliver-interop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755))
	pf, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	var uid, gid int
	fmt.Sscan(pf.Uid, &uid)
	fmt.Sscan(pf.Gid, &gid)
	etc, queue, data, mail := filepath.Join(base, "etc"), filepath.Join(base, "queue"), filepath.Join(base, "data"), filepath.Join(base, "mail")
	for _, p := range []string{etc, queue, data, mail} {
		must(t, os.Mkdir(p, 0o755))
	}
	must(t, os.Chown(data, uid, -1))
	must(t, os.Chown(mail, uid, gid))
	var pemBuf bytes.Buffer
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pem.Encode(&pemBuf, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, c := range chain {
		pem.Encode(&pemBuf, &pem.Block{Type: "CERTIFICATE", Bytes: c})
	}
	certFile := filepath.Join(base, "server.pem")
	must(t, os.WriteFile(certFile, pemBuf.Bytes(), 0o600))
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.postfix.test
mydomain = postfix.test
mydestination =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
maillog_file_prefixes = %[3]s
maillog_file = %[3]s/maillog
virtual_mailbox_domains = %[4]s
virtual_mailbox_base = %[5]s
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:%[6]d
virtual_gid_maps = static:%[7]d
virtual_minimum_uid = 1
smtpd_tls_chain_files = %[8]s
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
delay_warning_time = 0
`, queue, data, base, strings.Join(domains, " "), mail, uid, gid, certFile)
	masterCF := `127.0.0.1:2525 inet n -  n       -       -       smtpd
127.0.0.1:2526 inet n -  n       -       -       smtpd -o smtpd_tls_security_level=none
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
	must(t, os.WriteFile(filepath.Join(etc, "main.cf"), []byte(mainCF), 0o644))
	must(t, os.WriteFile(filepath.Join(etc, "master.cf"), []byte(masterCF), 0o644))

	master := exec.Command("postfix", "-c", etc, "start-fg")
	var out bytes.Buffer
	master.Stdout, master.Stderr = &out, &out
	must(t, master.Start())
	done := make(chan struct{})
	var masterErr error
	go func() { masterErr = master.Wait(); close(done) }()
	t.Cleanup(func() {
		exec.Command("postfix", "-c", etc, "stop").Run()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			master.Process.Kill()
			<-done
		}
	})
	for {
		select {
		case <-done:
			t.Fatalf("Postfix exited: %v\n%s\n%s", masterErr, out.String(), readFile(filepath.Join(base, "maillog")))
		case <-ctx.Done():
			t.Fatalf("Postfix did not start: %s", readFile(filepath.Join(base, "maillog")))
		case <-time.After(100 * time.Millisecond):
		}
		ok := true
		for _, a := range []string{"127.0.0.1:2525", "127.0.0.1:2526"} {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return base
		}
	}
}

func mailboxFiles(base string) []string {
	var out []string
	for _, sub := range []string{"new", "cur"} {
		m, _ := filepath.Glob(filepath.Join(base, "mail", "inbox", sub, "*"))
		out = append(out, m...)
	}
	return out
}

func countMailbox(base string) int { return len(mailboxFiles(base)) }

// waitMailbox waits for a message with subject in the Maildir.
func waitMailbox(ctx context.Context, base, subject string) bool {
	for {
		for _, f := range mailboxFiles(base) {
			if strings.Contains(readFile(f), "Subject: "+subject+"\n") {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
