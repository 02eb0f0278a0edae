package smtptlstest_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

// TestCloseLeavesNoGoroutines uses every server of a World, leaves
// connections open and a slow request in flight, closes the World and
// checks that the goroutine count returns to where it was. It is not
// parallel: it needs a quiet process.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	w := smtptlstest.NewWorld()
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC3}).MustAdd("www A 192.0.2.1")
	w.AddMX("mx.example.test", smtptlstest.SMTPConfig{})
	w.AddMX("broken.example.test", smtptlstest.SMTPConfig{BrokenHandshake: true})
	w.SetPolicy("example.test", smtptlstest.Policy{Body: policyBody})
	w.SetPolicy("slow.example.test", smtptlstest.Policy{Body: policyBody, Delay: time.Hour})
	w.SetFault("slow.example.test", dns.TypeA, smtptlstest.FaultDelay)
	w.SetFaultDelay(time.Hour)

	exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA, udp: true})
	exchange(t, w, q{name: "www.example.test", qtype: dns.TypeA})
	if err := send(t, w, "mx.example.test", &tls.Config{ServerName: "mx.example.test", RootCAs: w.CA().Pool()}); err != nil {
		t.Fatal(err)
	}
	c := w.HTTPClient()
	if _, _, err := fetch(t, c, "example.test"); err != nil {
		t.Fatal(err)
	}
	// Connections left open: SMTP idle after the greeting, DNS over TCP
	// with a query stuck in a delay, an HTTP request stuck in a delay.
	idle, err := w.DialContext(context.Background(), "tcp", "mx.example.test:25")
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	broken, err := w.DialContext(context.Background(), "tcp", "broken.example.test:25")
	if err != nil {
		t.Fatal(err)
	}
	defer broken.Close()
	dnsDone := make(chan error, 1)
	go func() {
		_, err := tryExchange(w, q{name: "slow.example.test", qtype: dns.TypeA})
		dnsDone <- err
	}()
	httpDone := make(chan error, 1)
	go func() {
		resp, err := c.Get("https://mta-sts.slow.example.test" + smtptlstest.PolicyPath)
		if err == nil {
			resp.Body.Close()
		}
		httpDone <- err
	}()
	// Close only once both requests are in their delay: the servers
	// count a request before they sleep on it.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for w.QueryCountFor("slow.example.test", dns.TypeA) == 0 || w.PolicyFetches("slow.example.test") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow requests never reached the servers (DNS %d, HTTPS %d)",
				w.QueryCountFor("slow.example.test", dns.TypeA), w.PolicyFetches("slow.example.test"))
		}
		<-tick.C
	}

	closed := make(chan struct{})
	go func() {
		w.Close()
		w.Close() // idempotent
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := <-httpDone; err == nil {
		t.Errorf("slow HTTP request succeeded")
	}
	<-dnsDone
	idle.Close()
	broken.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var ours []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "smtptlstest") || strings.Contains(g, "miekg") || strings.Contains(g, "go-smtp") || strings.Contains(g, "net/http") {
				ours = append(ours, g)
			}
		}
		t.Errorf("%d goroutines before, %d after Close:\n%s", before, n, strings.Join(ours, "\n\n"))
	}
	// A closed World refuses everything.
	if _, err := tryExchange(w, q{name: "www.example.test", qtype: dns.TypeA}); err == nil {
		t.Errorf("DNS answers after Close")
	}
}
