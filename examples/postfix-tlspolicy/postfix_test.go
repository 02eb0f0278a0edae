//go:build postfix

// Interop with a real Postfix (Debian's package), behind the "postfix"
// build tag: run it with
//
//	bash examples/postfix-tlspolicy/interop.sh
//
// TestPostfixPostmap asks postmap(1) to query this socketmap for every
// kind of domain. TestPostfixDelivery sends mail through Postfix's own
// smtp(8) client to the test kit's SMTP servers and checks what was
// delivered and what was deferred. Postfix resolves through
// /etc/resolv.conf on port 53 and connects to port 25, so that test runs
// itself again inside new network, mount and PID namespaces (unshare(1)):
// there the kit's DNS is relayed on 127.0.0.1:53, each MX address gets a
// relay on port 25, and a private resolv.conf is bind-mounted over
// /etc/resolv.conf. Nothing of the machine's configuration is touched:
// Postfix runs with its own config_directory and queue_directory in a
// temporary directory, and everything it started dies with the PID
// namespace.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// envInNamespace marks the copy of the test binary running inside the
// private namespaces.
const envInNamespace = "POSTFIX_TLSPOLICY_NETNS"

// requirePostfix skips (or, with SMTPTLS_REQUIRE_PEERS=1, fails) when Postfix is not
// installed or the test does not run as root.
func requirePostfix(t *testing.T) {
	t.Helper()
	var missing []string
	for _, c := range []string{"postfix", "postmap", "sendmail", "postqueue", "unshare", "ip", "mount"} {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	why := ""
	switch {
	case len(missing) > 0:
		why = "missing commands: " + strings.Join(missing, " ") + " (interop.sh installs Debian's postfix)"
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

// interopWorld holds the domains both tests use, with what Postfix must
// do for each.
type interopCase struct {
	domain string
	s      smtptlstest.Scenario
	// postmap is the policy postmap must print; "" for NOTFOUND, "TEMP"
	// for a lookup error.
	postmap string
	// delivered: the message must reach the kit's SMTP server (over
	// TLS); otherwise it must be deferred.
	delivered bool
	// sni: the delivering session must have sent the MX host name as SNI.
	sni bool
	// static, if set, is a policy a texthash map placed before the
	// socketmap gives the domain: the answer of an MTA-STS-only daemon.
	static string
	why    string
}

var interopCases = []interopCase{
	{domain: "dane-sts.test", s: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce},
		postmap: "dane", delivered: true, sni: true, why: "DANE and MTA-STS valid: Postfix authenticates by DANE"},
	{domain: "dane-mismatch.test", s: smtptlstest.Scenario{DANE: smtptlstest.DANEMismatch, STS: smtptlstest.STSEnforce},
		postmap: "dane", delivered: false, why: "DANE fails and the WebPKI certificate is valid: MTA-STS must not rescue it (RFC 8461 2)"},
	{domain: "tlsa-servfail.test", s: smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, Misconfig: smtptlstest.MisTLSAServFail},
		postmap: "dane", delivered: false, why: "TLSA lookup fails: the host must not be used (RFC 7672 2.1.2)"},
	{domain: "sts.test", s: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, MX: 2},
		postmap: "secure match=mx1.sts.test:mx2.sts.test servername=hostname", delivered: true, sni: true, why: "MTA-STS enforce, valid certificate"},
	{domain: "sts-wrongcert.test", s: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisWrongNameCert},
		postmap: "secure match=mx1.sts-wrongcert.test servername=hostname", delivered: false, why: "MTA-STS enforce, certificate for another name (RFC 8461 4.2)"},
	{domain: "sts-stripped.test", s: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisNoSTARTTLS},
		postmap: "secure match=mx1.sts-stripped.test servername=hostname", delivered: false, why: "MTA-STS enforce, STARTTLS stripped (RFC 8461 5)"},
	{domain: "sts-mismatch.test", s: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSTSMXMismatch},
		postmap: "TEMP", delivered: false, why: "MTA-STS enforce, MX not in the policy (RFC 8461 4.1)"},
	{domain: "sts-testing.test", s: smtptlstest.Scenario{STS: smtptlstest.STSTesting, Unsigned: true, Misconfig: smtptlstest.MisWrongNameCert},
		postmap: "", delivered: true, why: "MTA-STS testing: deliver anyway (RFC 8461 5)"},
	{domain: "sts-none.test", s: smtptlstest.Scenario{STS: smtptlstest.STSNone, Unsigned: true},
		postmap: "", delivered: true, why: "MTA-STS none: as if no policy"},
	{domain: "txt-servfail.test", s: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisWrongNameCert},
		postmap: "", delivered: true, why: "TXT SERVFAIL and no cached policy: deliver as if no policy (RFC 8461 5)"},
	{domain: "sts-404.test", s: smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisPolicyNotFound | smtptlstest.MisWrongNameCert},
		postmap: "", delivered: true, why: "policy fetch fails and no cached policy: as if no policy (RFC 8461 5)"},
	{domain: "plain.test", s: smtptlstest.Scenario{Unsigned: true},
		postmap: "", delivered: true, why: "neither: opportunistic TLS"},
	// The contrast: what this daemon exists to prevent, in real Postfix.
	{domain: "sts-only-answer.test", s: smtptlstest.Scenario{DANE: smtptlstest.DANEMismatch, STS: smtptlstest.STSEnforce},
		postmap: "dane", static: "secure match=mx1.sts-only-answer.test servername=hostname", delivered: true,
		why: "contrast: given an MTA-STS-only answer (a static map here), Postfix delivers despite the DANE failure; this daemon answers dane (as for dane-mismatch.test)"},
}

// buildInteropWorld adds the cases' domains to w, and mx-servfail.test
// whose MX lookup fails; it returns the cases' domains by name.
func buildInteropWorld(w *smtptlstest.World) map[string]*smtptlstest.Domain {
	doms := map[string]*smtptlstest.Domain{}
	for _, c := range interopCases {
		doms[c.domain] = w.AddDomain(c.domain, c.s)
	}
	w.SetFault("_mta-sts.txt-servfail.test", dns.TypeTXT, smtptlstest.FaultServFail)
	w.AddDomain("mx-servfail.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	w.SetFault("mx-servfail.test", dns.TypeMX, smtptlstest.FaultServFail)
	return doms
}

// serveSocketmap serves the Responder on a unix socket in dir that
// Postfix's unprivileged processes can use.
func serveSocketmap(t *testing.T, w *smtptlstest.World, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "tlspolicy.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	s := &Server{Lookup: newResponder(w).Lookup, MapNames: []string{"tlspolicy"}, Logger: discard}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return sock
}

// postfixDir is a private Postfix instance's directory tree.
type postfixDir struct {
	base, etc, queue, maillog string
}

// newPostfixDir writes a Postfix configuration into a fresh directory
// (mode 0755 all the way, for the postfix user) that queries the
// socketmap at sock and trusts the kit's CA.
func newPostfixDir(t *testing.T, w *smtptlstest.World) (*postfixDir, string) {
	t.Helper()
	base, err := os.MkdirTemp("", "postfix-tlspolicy-interop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &postfixDir{base: base, etc: filepath.Join(base, "etc"), queue: filepath.Join(base, "queue"), maillog: filepath.Join(base, "maillog")}
	data := filepath.Join(base, "data")
	for _, p := range []string{d.etc, d.queue, data} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	if err := os.Chown(data, uid, -1); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(base, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.CA().Root.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := serveSocketmap(t, w, base)
	var static strings.Builder
	for _, c := range interopCases {
		if c.static != "" {
			fmt.Fprintf(&static, "%s %s\n", c.domain, c.static)
		}
	}
	staticMap := filepath.Join(base, "static-policy")
	if err := os.WriteFile(staticMap, []byte(static.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
myhostname = client.sender.test
mydomain = sender.test
myorigin = $myhostname
mydestination =
relayhost =
inet_interfaces = loopback-only
inet_protocols = ipv4
alias_maps =
alias_database =
maillog_file_prefixes = %[3]s
maillog_file = %[4]s
smtp_dns_support_level = dnssec
smtp_host_lookup = dns
smtp_tls_security_level = may
smtp_tls_policy_maps = texthash:%[7]s, socketmap:unix:%[5]s:tlspolicy
smtp_tls_CAfile = %[6]s
smtp_tls_loglevel = 1
smtp_connect_timeout = 5s
smtp_tls_connection_reuse = no
delay_warning_time = 0
`, d.queue, data, base, d.maillog, sock, ca, staticMap)
	// chroot "n" everywhere: smtp(8) must read the bind-mounted
	// resolv.conf and reach the socket outside any chroot.
	masterCF := `pickup    unix  n       -       n       60      1       pickup
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
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
	for name, text := range map[string]string{"main.cf": mainCF, "master.cf": masterCF} {
		if err := os.WriteFile(filepath.Join(d.etc, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d, sock
}

// postmapQuery runs "postmap -q key socketmap:..." and returns the policy
// printed, "" for NOTFOUND, or "TEMP" for a lookup error.
func postmapQuery(t *testing.T, d *postfixDir, sock, key string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("postmap", "-c", d.etc, "-q", key, "socketmap:unix:"+sock+":tlspolicy")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return strings.TrimSpace(stdout.String())
	case errors.As(err, &ee) && ee.ExitCode() == 1 && stdout.Len() == 0 && stderr.Len() == 0:
		return ""
	case errors.As(err, &ee) && stdout.Len() == 0 && strings.Contains(stderr.String(), "socketmap server temporary error"):
		t.Logf("postmap -q %s: exit %d: %s", key, ee.ExitCode(), strings.TrimSpace(stderr.String()))
		return "TEMP"
	}
	t.Fatalf("postmap -q %s: %v: %s %s", key, err, stdout.String(), stderr.String())
	return ""
}

// TestPostfixPostmap: postmap, Postfix's own socketmap client, gets the
// expected policy for every kind of domain.
func TestPostfixPostmap(t *testing.T) {
	requirePostfix(t)
	w := smtptlstest.New(t)
	buildInteropWorld(w)
	d, sock := newPostfixDir(t, w)
	cases := []struct{ key, want string }{
		{"mx-servfail.test", "TEMP"},
		{"nosuch.plain.test", ""},
		{".dane-sts.test", ""},
		{"[192.0.2.1]", ""},
	}
	for _, c := range interopCases {
		cases = append(cases, struct{ key, want string }{c.domain, c.postmap})
	}
	for _, c := range cases {
		if got := postmapQuery(t, d, sock, c.key); got != c.want {
			t.Errorf("postmap -q %s = %q, want %q", c.key, got, c.want)
		}
	}
}

// TestPostfixDelivery sends one message per domain through Postfix and
// checks each was delivered or deferred as the policy says.
func TestPostfixDelivery(t *testing.T) {
	requirePostfix(t)
	if os.Getenv(envInNamespace) != "1" {
		reexecInNamespaces(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	must(t, exec.Command("ip", "link", "set", "lo", "up").Run())

	w := smtptlstest.New(t)
	doms := buildInteropWorld(w)
	d, _ := newPostfixDir(t, w)

	// Postfix's resolver: the kit's DNS relayed on 127.0.0.1:53, and a
	// private resolv.conf that trusts its AD bit (glibc drops AD unless
	// told to trust the server).
	relayDNS(t, w.DNSAddr())
	resolvConf := filepath.Join(d.base, "resolv.conf")
	must(t, os.WriteFile(resolvConf, []byte("nameserver 127.0.0.1\noptions trust-ad edns0\n"), 0o644))
	if out, err := exec.Command("mount", "--bind", resolvConf, "/etc/resolv.conf").CombinedOutput(); err != nil {
		t.Fatalf("mount --bind resolv.conf: %v %s", err, out)
	}
	// Port 25 of every MX address relays to its kit SMTP server.
	for _, dom := range doms {
		for _, srv := range dom.MX {
			addrs, _, err := resolver.LookupAddrs(ctx, w.Resolver(), srv.Host())
			if err != nil || len(addrs) == 0 {
				t.Fatalf("addresses of %s: %v %v", srv.Host(), addrs, err)
			}
			for _, a := range addrs {
				relayTCP(t, netip.AddrPortFrom(a, 25).String(), srv.Addr())
			}
		}
	}

	// start-fg runs "postfix check" first, which creates the queue.
	master := exec.Command("postfix", "-c", d.etc, "start-fg")
	must(t, master.Start())
	masterDone := make(chan struct{})
	var masterErr error
	go func() { masterErr = master.Wait(); close(masterDone) }()
	t.Cleanup(func() {
		stopStart := time.Now()
		exec.Command("postfix", "-c", d.etc, "stop").Run()
		select {
		case <-masterDone:
		case <-time.After(10 * time.Second):
			master.Process.Kill()
			<-masterDone
		}
		t.Logf("Postfix stopped in %v", time.Since(stopStart).Round(time.Millisecond))
		if t.Failed() {
			t.Logf("Postfix log:\n%s", readFile(d.maillog))
		}
	})
	t.Logf("%v: world and relays ready; starting Postfix", time.Since(t0).Round(time.Millisecond))
	waitFor(t, ctx, "Postfix to start", func() bool {
		select {
		case <-masterDone:
			t.Fatalf("Postfix exited: %v\n%s", masterErr, readFile(d.maillog))
		default:
		}
		_, err := os.Stat(filepath.Join(d.queue, "public", "pickup"))
		return err == nil
	})
	t.Logf("%v: Postfix started", time.Since(t0).Round(time.Millisecond))
	start := time.Now()
	for _, c := range interopCases {
		rcpt := "user@" + c.domain
		msg := fmt.Sprintf("From: sender@client.sender.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n", rcpt, c.domain, c.why)
		cmd := exec.Command("sendmail", "-C", d.etc, "-f", "sender@client.sender.test", "-i", rcpt)
		cmd.Stdin = strings.NewReader(msg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sendmail %s: %v %s", rcpt, err, out)
		}
	}

	// Each message ends delivered (the kit's server has it) or deferred
	// (in Postfix's deferred queue with a reason).
	type outcome struct {
		delivered        bool
		tls              bool
		host, serverName string
		reason           string
	}
	outcomes := map[string]outcome{}
	waitFor(t, ctx, "every message to be delivered or deferred", func() bool {
		deferred := deferredReasons(t, d)
		for _, c := range interopCases {
			if _, done := outcomes[c.domain]; done {
				continue
			}
			for _, srv := range doms[c.domain].MX {
				for _, del := range srv.Deliveries() {
					if slices.Contains(del.To, "user@"+c.domain) {
						outcomes[c.domain] = outcome{delivered: true, tls: del.TLS, host: srv.Host(), serverName: del.ServerName}
					}
				}
			}
			if r, ok := deferred["user@"+c.domain]; ok {
				outcomes[c.domain] = outcome{reason: r}
			}
		}
		return len(outcomes) == len(interopCases)
	})
	t.Logf("%d messages through Postfix %s, all settled in %v", len(interopCases), postfixVersion(d), time.Since(start).Round(time.Millisecond))
	for _, c := range interopCases {
		o := outcomes[c.domain]
		state := "deferred: " + o.reason
		if o.delivered {
			state = fmt.Sprintf("delivered to %s, TLS=%v, SNI=%q", o.host, o.tls, o.serverName)
		}
		t.Logf("%-20s %s (%s)", c.domain, state, c.why)
		switch {
		case o.delivered != c.delivered:
			t.Errorf("%s: delivered=%v, want %v: %s", c.domain, o.delivered, c.delivered, c.why)
		case o.delivered && !o.tls:
			t.Errorf("%s: delivered without TLS", c.domain)
		case o.delivered && c.sni && o.serverName != o.host:
			t.Errorf("%s: SNI %q, want %q", c.domain, o.serverName, o.host)
		}
	}
	// Postfix itself must report how it authenticated.
	log := readFile(d.maillog)
	if !strings.Contains(log, "Verified TLS connection established to mx1.dane-sts.test") {
		t.Errorf("Postfix log lacks the DANE-verified session with mx1.dane-sts.test")
	}
	if !strings.Contains(log, "Verified TLS connection established to mx1.sts.test") &&
		!strings.Contains(log, "Verified TLS connection established to mx2.sts.test") {
		t.Errorf("Postfix log lacks the WebPKI-verified session with sts.test")
	}
}

// reexecInNamespaces runs TestPostfixDelivery again in new network,
// mount and PID namespaces and reports its result.
func reexecInNamespaces(t *testing.T) {
	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--",
		os.Args[0], "-test.run=^TestPostfixDelivery$", "-test.v", "-test.count=1", "-test.timeout=4m")
	cmd.Env = append(os.Environ(), envInNamespace+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("in private namespaces:\n%s", out.String())
	if err != nil {
		t.Fatalf("the delivery test in private namespaces failed: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: TestPostfixDelivery") {
		t.Fatalf("the delivery test did not pass in the namespaces")
	}
}

// deferredReasons returns the delay reason of every recipient in the
// deferred queue (postqueue -j).
func deferredReasons(t *testing.T, d *postfixDir) map[string]string {
	out, err := exec.Command("postqueue", "-c", d.etc, "-j").Output()
	if err != nil {
		t.Logf("postqueue -j: %v", err)
		return nil
	}
	reasons := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if line == "" {
			continue
		}
		var m struct {
			Queue      string `json:"queue_name"`
			Recipients []struct {
				Address string `json:"address"`
				Reason  string `json:"delay_reason"`
			} `json:"recipients"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("postqueue -j: %v: %s", err, line)
		}
		if m.Queue != "deferred" {
			continue
		}
		for _, r := range m.Recipients {
			reasons[r.Address] = r.Reason
		}
	}
	return reasons
}

// relayDNS relays DNS on 127.0.0.1:53 (UDP and TCP) to upstream.
func relayDNS(t *testing.T, upstream string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			go func() {
				c, err := net.Dial("udp", upstream)
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(q); err != nil {
					return
				}
				resp := make([]byte, 65535)
				n, err := c.Read(resp)
				if err != nil {
					return
				}
				pc.WriteTo(resp[:n], from)
			}()
		}
	}()
	relayTCP(t, "127.0.0.1:53", upstream)
}

// relayTCP accepts connections on addr and splices each to target, until
// the test ends (which closes whatever is still open).
func relayTCP(t *testing.T, addr, target string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				track(c, true)
				track(u, true)
				defer func() { track(c, false); track(u, false); c.Close(); u.Close() }()
				done := make(chan struct{})
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); close(done) }()
				io.Copy(c, u)
				c.Close()
				<-done
			}()
		}
	}()
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func postfixVersion(d *postfixDir) string {
	out, _ := exec.Command("postconf", "-c", d.etc, "-h", "mail_version").Output()
	return strings.TrimSpace(string(out))
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
