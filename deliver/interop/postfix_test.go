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
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/internal/postfixlab"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// The two smtpd listeners of the lab: with STARTTLS, and without.
const tlsPort, plainPort = "127.0.0.1:2525", "127.0.0.1:2526"

func TestPostfixReceives(t *testing.T) {
	postfixlab.Require(t, "deliver/interop.sh", "postconf")
	if !postfixlab.InNamespaces(t, 150*time.Second) {
		return
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

	var names []string
	for _, d := range doms {
		names = append(names, d.name)
	}
	lab := startPostfix(ctx, t, cert.Certificate, cert.PrivateKey, names...)

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
			if !waitMailbox(ctx, lab, subject) {
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
	if n := countMailbox(lab); n != 2 {
		t.Errorf("%d messages in the mailbox, want 2", n)
	}
	// The lab logs Postfix's log when the test has failed.
	if strings.Count(lab.Log(), "TLS connection established from") < 2 {
		t.Errorf("Postfix logged fewer than two TLS sessions")
	}
}

// startPostfix starts a lab Postfix as the receiving server: smtpd with
// STARTTLS (chain and key) on tlsPort, without on plainPort, and virtual
// Maildir mailboxes for domains in mail/inbox of the lab. The test's
// cleanup stops it.
func startPostfix(ctx context.Context, t *testing.T, chain [][]byte, key any, domains ...string) *postfixlab.Lab {
	t.Helper()
	lab := postfixlab.New(t, "deliver-interop-")
	mail := lab.Mkdir("mail", true)
	certFile := lab.WriteKeyPair("server.pem", chain, key)
	lab.Configure(postfixlab.Settings{
		"myhostname":               "mx.postfix.test",
		"mydomain":                 "postfix.test",
		"inet_interfaces":          "127.0.0.1",
		"mynetworks":               "127.0.0.0/8",
		"virtual_mailbox_domains":  strings.Join(domains, " "),
		"virtual_mailbox_base":     mail,
		"virtual_mailbox_maps":     "static:inbox/",
		"virtual_uid_maps":         fmt.Sprintf("static:%d", lab.UID),
		"virtual_gid_maps":         fmt.Sprintf("static:%d", lab.GID),
		"virtual_minimum_uid":      "1",
		"smtpd_tls_chain_files":    certFile,
		"smtpd_tls_security_level": "may",
		"smtpd_tls_loglevel":       "1",
		"smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
	},
		tlsPort+" inet n -  n       -       -       smtpd",
		plainPort+" inet n -  n       -       -       smtpd -o smtpd_tls_security_level=none",
		"local     unix  -       n       n       -       -       local",
		"virtual   unix  -       n       n       -       -       virtual",
	)
	lab.Start(ctx, func() bool {
		for _, a := range []string{tlsPort, plainPort} {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
	return lab
}

func mailboxFiles(lab *postfixlab.Lab) []string {
	var out []string
	for _, sub := range []string{"new", "cur"} {
		m, _ := filepath.Glob(filepath.Join(lab.Base, "mail", "inbox", sub, "*"))
		out = append(out, m...)
	}
	return out
}

func countMailbox(lab *postfixlab.Lab) int { return len(mailboxFiles(lab)) }

// waitMailbox waits for a message with subject in the Maildir.
func waitMailbox(ctx context.Context, lab *postfixlab.Lab, subject string) bool {
	return postfixlab.Poll(ctx, func() bool {
		for _, f := range mailboxFiles(lab) {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), "Subject: "+subject+"\n") {
				return true
			}
		}
		return false
	})
}
