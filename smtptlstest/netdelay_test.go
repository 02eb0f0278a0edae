package smtptlstest_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

func TestDialContextWith(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	z.MustAdd("alias CNAME mx", "noaddr TXT nothing", "broken A 192.0.2.9")
	w.AddMX("mx.example.test", smtptlstest.SMTPConfig{})
	w.SetFault("broken.example.test", dns.TypeA, smtptlstest.FaultServFail)
	dial := w.DialContextWith(nil)

	for _, tt := range []struct {
		name    string
		addr    string
		queried string // a name the dial must have asked the front for
		check   func(t *testing.T, err error)
	}{
		{"host name", "mx.example.test:25", "mx.example.test", nil},
		{"CNAME", "Alias.Example.Test.:25", "alias.example.test", nil},
		{"address literal", "", "", nil},
		{"no address", "noaddr.example.test:25", "noaddr.example.test", func(t *testing.T, err error) {
			var de *net.DNSError
			if !errors.As(err, &de) || !de.IsNotFound {
				t.Errorf("error %v, want a *net.DNSError with IsNotFound", err)
			}
		}},
		{"lookup failure", "broken.example.test:25", "broken.example.test", func(t *testing.T, err error) {
			var re *resolver.Error
			if !errors.As(err, &re) || re.Kind != resolver.KindServFail {
				t.Errorf("error %v, want one that unwraps to a SERVFAIL *resolver.Error", err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr
			if addr == "" {
				// The address AddMX allocated, dialled as a literal.
				a := w.Zone("example.test").Records("mx", dns.TypeA)[0].(*dns.A).A.String()
				addr = net.JoinHostPort(a, "25")
			}
			before := w.QueryCount()
			var beforeName int64
			if tt.queried != "" {
				beforeName = w.QueryCountFor(tt.queried, dns.TypeA)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := dial(ctx, "tcp", addr)
			if err == nil {
				c.Close()
			}
			if tt.check != nil {
				if err == nil {
					t.Fatal("dial succeeded")
				}
				tt.check(t, err)
			} else if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.queried == "" && w.QueryCount() != before:
				t.Errorf("an address literal sent %d queries", w.QueryCount()-before)
			case tt.queried != "" && w.QueryCountFor(tt.queried, dns.TypeA) != beforeName+1:
				t.Errorf("%s A asked %d times, want once", tt.queried, w.QueryCountFor(tt.queried, dns.TypeA)-beforeName)
			}
		})
	}
}

// TestNetDelay checks the lower bounds the delay model promises; the
// upper bounds depend on the machine and are the benchmarks' business.
func TestNetDelay(t *testing.T) {
	t.Parallel()
	const dnsRTT, netRTT = 40 * time.Millisecond, 60 * time.Millisecond
	w := smtptlstest.New(t)
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	w.SetPolicy("example.test", smtptlstest.Policy{Body: policyBody})
	w.SetDelay(dnsRTT)
	w.SetNetDelay(netRTT)
	for _, tt := range []struct {
		name    string
		client  *http.Client
		atLeast time.Duration
		queries int64
	}{
		// The address from the zone data: TCP, TLS, HTTP.
		{"zone data", w.HTTPClient(), 3 * netRTT, 0},
		// A and AAAA concurrently through the front, then the same.
		{"through the front", w.HTTPClientWith(nil), dnsRTT + 3*netRTT, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := w.QueryCountFor("mta-sts.example.test", 0)
			start := time.Now()
			resp, body, err := fetch(t, tt.client, "example.test")
			took := time.Since(start)
			if err != nil || resp.StatusCode != 200 || string(body) != policyBody {
				t.Fatalf("%v %v %q", resp, err, body)
			}
			if took < tt.atLeast {
				t.Errorf("fetch took %v, want at least %v", took, tt.atLeast)
			}
			if n := w.QueryCountFor("mta-sts.example.test", 0) - before; n != tt.queries {
				t.Errorf("%d queries for the policy host, want %d", n, tt.queries)
			}
		})
	}
	t.Run("dial", func(t *testing.T) {
		start := time.Now()
		c, err := w.DialContext(context.Background(), "tcp", "mta-sts.example.test:443")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if took := time.Since(start); took < netRTT {
			t.Errorf("connect took %v, want at least %v", took, netRTT)
		}
	})
	t.Run("cancelled during the delay", func(t *testing.T) {
		w.SetNetDelay(time.Hour)
		defer w.SetNetDelay(netRTT)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := w.DialContext(ctx, "tcp", "mta-sts.example.test:443")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want the context's", err)
		}
	})
}
