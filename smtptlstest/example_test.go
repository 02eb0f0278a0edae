package smtptlstest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

// A World with a signed domain, its MX host and a DANE-EE TLSA record for
// the host's certificate, queried through the project's stub resolver.
func Example() {
	w := smtptlstest.NewWorld() // in a test: w := smtptlstest.New(t)
	defer w.Close()

	z := w.AddZone("example.com", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3})
	z.MustAdd("@ MX 10 mx") // relative: mx.example.com.
	mx := w.AddMX("mx.example.com", smtptlstest.SMTPConfig{})
	leaf := mx.Certificate().Leaf
	z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx", leaf, smtptlstest.DANEEE, smtptlstest.SelectorSPKI, smtptlstest.MatchSHA256))

	r := w.Resolver()
	ctx := context.Background()
	for _, x := range []struct {
		name  string
		qtype uint16
	}{
		{"example.com", dns.TypeMX},
		{"mx.example.com", dns.TypeA}, // added by AddMX
		{"_25._tcp.mx.example.com", dns.TypeTLSA},
	} {
		a, err := r.Lookup(ctx, x.name, x.qtype)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(x.name, dns.TypeToString[x.qtype], len(a.Records), a.Security)
	}
	// Output:
	// example.com MX 1 secure
	// mx.example.com A 1 secure
	// _25._tcp.mx.example.com TLSA 1 secure
}

// Zones are unsigned, NSEC or NSEC3 signed; a signed zone whose parent has
// no DS is an island, insecure to a validator.
func ExampleWorld_AddZone() {
	w := smtptlstest.NewWorld()
	defer w.Close()

	w.AddZone("signed.example", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC, Algorithm: dns.ED25519}).MustAdd("www A 192.0.2.1")
	w.AddZone("island.example", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3, NoDS: true}).MustAdd("www A 192.0.2.2")
	w.AddZone("plain.example", smtptlstest.ZoneConfig{}).MustAdd("www A 192.0.2.3")

	for _, z := range w.Zones() {
		fmt.Println(z.Name(), z.Config().Signing, z.DS() != nil)
	}
	r := w.Resolver()
	for _, name := range []string{"www.signed.example", "www.island.example", "www.plain.example"} {
		a, err := r.Lookup(context.Background(), name, dns.TypeA)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(name, a.Security)
	}
	// Output:
	// . nsec true
	// example. nsec3-optout true
	// island.example. nsec3 true
	// plain.example. unsigned false
	// signed.example. nsec true
	// www.signed.example secure
	// www.island.example insecure
	// www.plain.example insecure
}

// A bogus zone makes the validating front answer SERVFAIL: a resolver
// error, never an insecure answer.
func ExampleWorld_SetFault() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	z := w.AddZone("example.com", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3})
	z.MustAdd("_25._tcp.mx TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

	w.SetFault("_25._tcp.mx.example.com", dns.TypeTLSA, smtptlstest.FaultExpiredSigs)
	_, err := w.Resolver().Lookup(context.Background(), "_25._tcp.mx.example.com", dns.TypeTLSA)
	var re *resolver.Error
	if errors.As(err, &re) {
		fmt.Println("lookup failed:", re.Kind, re.EDE == dns.ExtendedErrorCodeSignatureExpired)
	}

	w.ClearFaults()
	a, err := w.Resolver().Lookup(context.Background(), "_25._tcp.mx.example.com", dns.TypeTLSA)
	fmt.Println(len(a.Records), a.Security, err)
	// Output:
	// lookup failed: servfail true
	// 1 secure <nil>
}

// The MTA-STS server serves a policy per domain; HTTPClient reaches it
// through the World's DNS data and trusts the World's CA.
func ExampleWorld_SetPolicy() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	z := w.AddZone("example.com", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3})
	z.MustAdd(`_mta-sts TXT "v=STSv1; id=20240101"`)
	w.SetPolicy("example.com", smtptlstest.Policy{
		Body: "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n",
	})

	resp, err := w.HTTPClient().Get("https://mta-sts.example.com/.well-known/mta-sts.txt")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	fmt.Print(string(body))
	fmt.Println("fetches:", w.PolicyFetches("example.com"))
	// Output:
	// 200 text/plain
	// version: STSv1
	// mode: enforce
	// mx: mx.example.com
	// max_age: 86400
	// fetches: 1
}

// An SMTP server records what it receives, with the TLS details a DANE or
// MTA-STS client must get right (SNI, version).
func ExampleWorld_AddMX() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	w.AddZone("example.com", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}).MustAdd("@ MX 10 mx")
	mx := w.AddMX("mx.example.com", smtptlstest.SMTPConfig{})

	conn, err := w.DialContext(context.Background(), "tcp", "mx.example.com:25")
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := smtp.NewClientStartTLS(conn, &tls.Config{ServerName: "mx.example.com", RootCAs: w.CA().Pool()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	msg := "Subject: hello\r\n\r\nHi.\r\n"
	if err := c.SendMail("sender@example.org", []string{"rcpt@example.com"}, strings.NewReader(msg)); err != nil {
		fmt.Println(err)
		return
	}
	c.Quit()

	for _, d := range mx.Deliveries() {
		fmt.Println(d.From, d.To, d.TLS, d.ServerName, d.TLSVersion == tls.VersionTLS13)
	}
	// Output:
	// sender@example.org [rcpt@example.com] true mx.example.com true
}

// TLSARecord builds zone-file lines for Zone.Add.
func ExampleTLSARecord() {
	cert, _ := smtptlstest.SelfSigned("mx.example.com")
	line := smtptlstest.TLSARecord("_25._tcp.mx", cert.Leaf, smtptlstest.DANEEE, smtptlstest.SelectorSPKI, smtptlstest.MatchSHA256)
	fmt.Println(line[:len("_25._tcp.mx IN TLSA 3 1 1")], len(line)-len("_25._tcp.mx IN TLSA 3 1 1 "))
	// Output:
	// _25._tcp.mx IN TLSA 3 1 1 64
}

// With simulated round trip times, a policy fetch through a dialer that
// resolves with the DNS front costs what it costs on the Internet: the
// policy host's address lookup, then TCP, TLS 1.3 and the HTTP request,
// one round trip each.
func ExampleWorld_SetNetDelay() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	w.AddZone("example.com", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	w.SetPolicy("example.com", smtptlstest.Policy{
		Body: "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n",
	})
	const rtt = 20 * time.Millisecond
	w.SetDelay(rtt)
	w.SetNetDelay(rtt)

	start := time.Now()
	resp, err := w.HTTPClientWith(nil).Get("https://mta-sts.example.com/.well-known/mta-sts.txt")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after at least 4 round trips:", time.Since(start) >= 4*rtt)
	fmt.Println("address queries:", w.QueryCountFor("mta-sts.example.com", 0))
	// Output:
	// 200 after at least 4 round trips: true
	// address queries: 2
}
