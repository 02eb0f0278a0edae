package smtptlstest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/smtptls/smtptls/smtptlstest"
)

const policyBody = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n"

func fetch(t *testing.T, c *http.Client, domain string) (*http.Response, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://mta-sts."+domain+smtptlstest.PolicyPath, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

func TestPolicyServer(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	noRedirect := w.HTTPClient()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	tests := []struct {
		name   string
		domain string
		p      smtptlstest.Policy
		check  func(t *testing.T, resp *http.Response, body []byte, err error)
	}{
		{"valid", "valid.example.test", smtptlstest.Policy{Body: policyBody}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || string(body) != policyBody || resp.Header.Get("Content-Type") != "text/plain" {
				t.Errorf("%d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2", resp.Proto)
			}
			if resp.ContentLength != int64(len(policyBody)) {
				t.Errorf("Content-Length %d", resp.ContentLength)
			}
		}},
		{"status", "status.example.test", smtptlstest.Policy{Body: "gone", Status: 404}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != 404 {
				t.Errorf("%v %v", resp, err)
			}
		}},
		{"content type", "ct.example.test", smtptlstest.Policy{Body: policyBody, ContentType: "text/html; charset=utf-8"}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Errorf("%v %v", resp.Header, err)
			}
		}},
		{"redirect", "redirect.example.test", smtptlstest.Policy{Location: "https://mta-sts.valid.example.test/.well-known/mta-sts.txt"}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != http.StatusFound || resp.Header.Get("Location") == "" {
				t.Errorf("%v %v", resp, err)
			}
		}},
		{"redirect with status", "redirect301.example.test", smtptlstest.Policy{Location: "https://example.test/", Status: 301}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != 301 {
				t.Errorf("%v %v", resp, err)
			}
		}},
		{"oversize", "big.example.test", smtptlstest.Policy{Body: policyBody, BodySize: 100 << 10}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(body)) != int64(len(policyBody))+100<<10 || resp.ContentLength != -1 {
				t.Errorf("body %d bytes, Content-Length %d", len(body), resp.ContentLength)
			}
		}},
		{"wrong name", "wrongname.example.test", smtptlstest.Policy{Body: policyBody, Cert: smtptlstest.CertWrongName}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			var he x509.HostnameError
			if !errors.As(err, &he) {
				t.Errorf("want a HostnameError, got %v", err)
			}
		}},
		{"expired", "expired.example.test", smtptlstest.Policy{Body: policyBody, Cert: smtptlstest.CertExpired}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			var ce x509.CertificateInvalidError
			if !errors.As(err, &ce) || ce.Reason != x509.Expired {
				t.Errorf("want an expired certificate, got %v", err)
			}
		}},
		{"self-signed", "self.example.test", smtptlstest.Policy{Body: policyBody, Cert: smtptlstest.CertSelfSigned}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			var ue x509.UnknownAuthorityError
			if !errors.As(err, &ue) {
				t.Errorf("want an unknown authority, got %v", err)
			}
		}},
	}
	for _, tt := range tests {
		w.SetPolicy(tt.domain, tt.p)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body, err := fetch(t, noRedirect, tt.domain)
			tt.check(t, resp, body, err)
			if got := w.PolicyFetches(tt.domain); tt.p.Cert == smtptlstest.CertValid && got != 1 {
				t.Errorf("PolicyFetches = %d, want 1", got)
			}
		})
	}
}

func TestPolicySlow(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.SetPolicy("slow.example.test", smtptlstest.Policy{Body: policyBody, Delay: 10 * time.Second})
	w.SetPolicy("slowloris.example.test", smtptlstest.Policy{Body: policyBody, BodyDelay: time.Second})
	w.SetPolicy("trickle.example.test", smtptlstest.Policy{Body: "version: STSv1\n", BodyDelay: time.Millisecond})
	c := w.HTTPClient()
	c.Timeout = 300 * time.Millisecond
	t.Run("headers delayed", func(t *testing.T) {
		start := time.Now()
		_, _, err := fetch(t, c, "slow.example.test")
		if err == nil || time.Since(start) > 5*time.Second {
			t.Errorf("err %v after %v", err, time.Since(start))
		}
	})
	t.Run("body trickles", func(t *testing.T) {
		resp, body, err := fetch(t, c, "slowloris.example.test")
		if err == nil || resp == nil || resp.StatusCode != 200 || len(body) >= len(policyBody) {
			t.Errorf("want headers, then a timeout in the body: %v %q", err, body)
		}
	})
	t.Run("body complete in the end", func(t *testing.T) {
		c := w.HTTPClient()
		_, body, err := fetch(t, c, "trickle.example.test")
		if err != nil || string(body) != "version: STSv1\n" {
			t.Errorf("%v %q", err, body)
		}
	})
}

func TestPolicyHostAndRemove(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	// A host with its own address keeps it.
	z.MustAdd("mta-sts A 198.51.100.80")
	w.SetPolicy("EXAMPLE.test.", smtptlstest.Policy{Body: policyBody})
	if rrs := z.Records("mta-sts", 1); len(rrs) != 1 {
		t.Errorf("address added although one existed: %v", rrs)
	}
	c := w.HTTPClient()
	if _, body, err := fetch(t, c, "example.test"); err != nil || string(body) != policyBody {
		t.Fatalf("%v %q", err, body)
	}
	// Another path on the host: 404, counted.
	resp, err := c.Get("https://mta-sts.example.test/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || w.PolicyFetches("example.test") != 2 {
		t.Errorf("status %d, fetches %d", resp.StatusCode, w.PolicyFetches("example.test"))
	}
	w.RemovePolicy("example.test")
	if resp, _, err := fetch(t, c, "example.test"); err != nil || resp.StatusCode != 404 {
		t.Errorf("after RemovePolicy: %v %v", resp, err)
	}
	// Without SNI (connecting by address) there is no certificate.
	conn, err := tls.Dial("tcp", w.PolicyAddr(), &tls.Config{RootCAs: w.CA().Pool()})
	if err == nil {
		conn.Close()
		t.Errorf("handshake without SNI succeeded")
	}
	if w.PolicyFetches("nothing.test") != 0 {
		t.Errorf("fetches for an unknown domain")
	}
}
