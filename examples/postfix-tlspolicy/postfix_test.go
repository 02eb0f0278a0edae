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
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/postfixlab"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// requirePostfix skips (or, with SMTPTLS_REQUIRE_PEERS=1, fails) when
// Postfix or the namespace tools are not installed or the test does not
// run as root.
func requirePostfix(t *testing.T) {
	t.Helper()
	postfixlab.Require(t, "examples/postfix-tlspolicy/interop.sh", "postmap", "sendmail", "postqueue")
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

// newPostfixLab writes the configuration of a lab Postfix that sends
// through the socketmap (served on a socket in the lab's directory,
// returned) and trusts the kit's CA. A texthash map before the socketmap
// holds the cases' static answers.
func newPostfixLab(t *testing.T, w *smtptlstest.World) (*postfixlab.Lab, string) {
	t.Helper()
	lab := postfixlab.New(t, "postfix-tlspolicy-interop-")
	ca := lab.WriteCerts("ca.pem", w.CA().Root.Raw)
	sock := serveSocketmap(t, w, lab.Base)
	var static strings.Builder
	for _, c := range interopCases {
		if c.static != "" {
			fmt.Fprintf(&static, "%s %s\n", c.domain, c.static)
		}
	}
	staticMap := lab.WriteFile("static-policy", []byte(static.String()), 0o644)
	lab.Configure(postfixlab.Settings{
		"myhostname":                "client.sender.test",
		"mydomain":                  "sender.test",
		"myorigin":                  "$myhostname",
		"inet_interfaces":           "loopback-only",
		"smtp_dns_support_level":    "dnssec",
		"smtp_host_lookup":          "dns",
		"smtp_tls_security_level":   "may",
		"smtp_tls_policy_maps":      "texthash:" + staticMap + ", socketmap:unix:" + sock + ":tlspolicy",
		"smtp_tls_CAfile":           ca,
		"smtp_tls_loglevel":         "1",
		"smtp_connect_timeout":      "5s",
		"smtp_tls_connection_reuse": "no",
	})
	return lab, sock
}

// postmapQuery runs "postmap -q key socketmap:..." and returns the policy
// printed, "" for NOTFOUND, or "TEMP" for a lookup error.
func postmapQuery(t *testing.T, lab *postfixlab.Lab, sock, key string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := lab.Command(t.Context(), "postmap", "-q", key, "socketmap:unix:"+sock+":tlspolicy")
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
	lab, sock := newPostfixLab(t, w)
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
		if got := postmapQuery(t, lab, sock, c.key); got != c.want {
			t.Errorf("postmap -q %s = %q, want %q", c.key, got, c.want)
		}
	}
}

// TestPostfixDelivery sends one message per domain through Postfix and
// checks each was delivered or deferred as the policy says.
func TestPostfixDelivery(t *testing.T) {
	requirePostfix(t)
	if !postfixlab.InNamespaces(t, 4*time.Minute) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()

	w := smtptlstest.New(t)
	doms := buildInteropWorld(w)
	lab, _ := newPostfixLab(t, w)

	// Postfix's resolver: the kit's DNS relayed on 127.0.0.1:53, and a
	// private resolv.conf that trusts its AD bit (glibc drops AD unless
	// told to trust the server).
	relayDNS(t, w.DNSAddr())
	resolvConf := lab.WriteFile("resolv.conf", []byte("nameserver 127.0.0.1\noptions trust-ad edns0\n"), 0o644)
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

	t.Logf("%v: world and relays ready; starting Postfix", time.Since(t0).Round(time.Millisecond))
	lab.Start(ctx, func() bool {
		_, err := os.Stat(filepath.Join(lab.Queue, "public", "pickup"))
		return err == nil
	})
	t.Logf("%v: Postfix started", time.Since(t0).Round(time.Millisecond))
	start := time.Now()
	for _, c := range interopCases {
		rcpt := "user@" + c.domain
		msg := fmt.Sprintf("From: sender@client.sender.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n", rcpt, c.domain, c.why)
		cmd := lab.Command(ctx, "sendmail", "-f", "sender@client.sender.test", "-i", rcpt)
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
	postfixlab.WaitFor(ctx, t, "every message to be delivered or deferred", func() bool {
		deferred := deferredReasons(ctx, t, lab)
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
	t.Logf("%d messages through Postfix %s, all settled in %v", len(interopCases), lab.Version(ctx), time.Since(start).Round(time.Millisecond))
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
	log := lab.Log()
	if !strings.Contains(log, "Verified TLS connection established to mx1.dane-sts.test") {
		t.Errorf("Postfix log lacks the DANE-verified session with mx1.dane-sts.test")
	}
	if !strings.Contains(log, "Verified TLS connection established to mx1.sts.test") &&
		!strings.Contains(log, "Verified TLS connection established to mx2.sts.test") {
		t.Errorf("Postfix log lacks the WebPKI-verified session with sts.test")
	}
}

// deferredReasons returns the delay reason of every recipient in the
// deferred queue (postqueue -j).
func deferredReasons(ctx context.Context, t *testing.T, lab *postfixlab.Lab) map[string]string {
	out, err := lab.Command(ctx, "postqueue", "-j").Output()
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
