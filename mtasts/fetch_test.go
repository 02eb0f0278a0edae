package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/tlsrpt"
)

const goodPolicy = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n"

// wantFetchError checks err is an *Error of kind with result type rt.
func wantFetchError(t *testing.T, p *Policy, err error, kind Kind, rt tlsrpt.ResultType) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Fetch = %+v, %v; want *Error %v", p, err, kind)
	}
	if e.Kind != kind || e.Result != rt {
		t.Fatalf("Fetch error %v (kind %v, result type %q); want kind %v, %q", err, e.Kind, e.Result, kind, rt)
	}
	if p != nil {
		t.Fatalf("Fetch returned a policy with an error")
	}
	return e
}

func TestFetch(t *testing.T) {
	t.Parallel()
	ps := newPolicyServer(t)
	ctx := context.Background()
	c := ps.client()

	t.Run("ok", func(t *testing.T) {
		ps.servePolicy(t, "mta-sts.ok.example", goodPolicy)
		p, err := Fetch(ctx, c, "OK.Example.")
		if err != nil {
			t.Fatal(err)
		}
		if p.Mode != Enforce || p.MaxAge != 24*time.Hour || p.MX[0] != "mx.example.com" {
			t.Errorf("policy %+v", p)
		}
		r := ps.lastRequest()
		if r.Host != "mta-sts.ok.example" || r.Method != http.MethodGet {
			t.Errorf("request %s %s", r.Method, r.Host)
		}
		if r.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
		for _, h := range []string{"If-Modified-Since", "If-None-Match", "Cookie"} {
			if r.Header.Get(h) != "" {
				t.Errorf("request carries %s", h)
			}
		}
		if r.TLS == nil || r.TLS.ServerName != "mta-sts.ok.example" {
			t.Errorf("SNI not sent")
		}
	})
	t.Run("U-label domain", func(t *testing.T) {
		ps.servePolicy(t, "mta-sts.xn--bcher-kva.example", goodPolicy)
		if _, err := Fetch(ctx, c, "Bücher.example"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("invalid domain", func(t *testing.T) {
		_, err := Fetch(ctx, c, "[192.0.2.1]")
		wantFetchError(t, nil, err, KindInvalidDomain, "")
	})
	t.Run("invalid UTF-8 domain", func(t *testing.T) {
		// Used to fetch from mta-sts.xn--zn7ca.example (U+FFFD).
		ps.servePolicy(t, "mta-sts.xn--zn7ca.example", goodPolicy)
		_, err := Fetch(ctx, c, "\xff\xfe.example")
		wantFetchError(t, nil, err, KindInvalidDomain, "")
		var de *dnsname.Error
		if !errors.As(err, &de) || !errors.Is(err, dnsname.ErrSyntax) {
			t.Errorf("err %v does not wrap a *dnsname.Error", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ps.servePolicy(t, "mta-sts.cancel.example", goodPolicy)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		p, err := Fetch(cctx, c, "cancel.example")
		wantFetchError(t, p, err, KindCanceled, "")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v does not unwrap to context.Canceled", err)
		}
	})
	t.Run("no such host", func(t *testing.T) {
		p, err := Fetch(ctx, c, "nxdomain.example")
		wantFetchError(t, p, err, KindNetwork, tlsrpt.STSPolicyFetchError)
	})

	for _, status := range []int{201, 204, 304, 400, 403, 404, 410, 500, 503} {
		t.Run("status "+strconv.Itoa(status), func(t *testing.T) {
			host := "mta-sts.s" + strconv.Itoa(status) + ".example"
			ps.serve(t, host, nil, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(status)
				w.Write([]byte(goodPolicy))
			})
			p, err := Fetch(ctx, c, strings.TrimPrefix(host, "mta-sts."))
			kind := KindHTTPStatus
			if status == 304 {
				kind = KindRedirect
			}
			e := wantFetchError(t, p, err, kind, tlsrpt.STSPolicyFetchError)
			if e.StatusCode != status {
				t.Errorf("StatusCode %d", e.StatusCode)
			}
		})
	}

	// Redirects are refused even though the client follows them, and
	// even when the client's own CheckRedirect allows everything.
	allow := ps.client()
	allow.CheckRedirect = func(*http.Request, []*http.Request) error { return nil }
	for _, status := range []int{301, 302, 303, 307, 308} {
		for name, hc := range map[string]*http.Client{"default": c, "permissive": allow} {
			t.Run("redirect "+strconv.Itoa(status)+" "+name, func(t *testing.T) {
				host := "mta-sts.r" + strconv.Itoa(status) + ".example"
				ps.servePolicy(t, "mta-sts.target.example", goodPolicy)
				ps.serve(t, host, nil, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "https://mta-sts.target.example/.well-known/mta-sts.txt", status)
				})
				before := ps.count("mta-sts.target.example")
				p, err := Fetch(ctx, hc, strings.TrimPrefix(host, "mta-sts."))
				e := wantFetchError(t, p, err, KindRedirect, tlsrpt.STSPolicyFetchError)
				if e.StatusCode != status {
					t.Errorf("StatusCode %d", e.StatusCode)
				}
				if ps.count("mta-sts.target.example") != before {
					t.Error("the redirect was followed")
				}
				if hc.CheckRedirect == nil && hc != c {
					t.Error("Fetch changed the caller's client")
				}
			})
		}
	}
	if c.CheckRedirect != nil || allow.CheckRedirect == nil {
		t.Error("Fetch modified the caller's client")
	}

	contentTypes := []struct {
		ct string
		ok bool
	}{
		{"text/plain", true},
		{"text/plain; charset=utf-8", true},
		{"TEXT/PLAIN;charset=US-ASCII", true},
		{"text/plain; format=flowed; charset=iso-8859-1", true},
		{"text/html", false},
		{"application/octet-stream", false},
		{"text/plain+xml", false},
		{"", false},
		{";", false},
	}
	for i, tc := range contentTypes {
		t.Run("content type "+tc.ct, func(t *testing.T) {
			host := "mta-sts.ct" + strconv.Itoa(i) + ".example"
			ps.serve(t, host, nil, func(w http.ResponseWriter, r *http.Request) {
				if tc.ct == "" {
					w.Header()["Content-Type"] = nil // no sniffing: no header at all
				} else {
					w.Header().Set("Content-Type", tc.ct)
				}
				w.Write([]byte(goodPolicy))
			})
			p, err := Fetch(ctx, c, strings.TrimPrefix(host, "mta-sts."))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantFetchError(t, p, err, KindContentType, tlsrpt.STSPolicyFetchError)
		})
	}
	t.Run("extra media type", func(t *testing.T) {
		ps.serve(t, "mta-sts.octet.example", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte(goodPolicy))
		})
		if _, _, err := fetch(ctx, c, "octet.example", fetchOptions{mediaTypes: []string{"application/octet-stream"}}); err != nil {
			t.Fatal(err)
		}
	})

	// 64 KiB exactly is a policy; one byte more is an error, whether the
	// length is announced or the body is chunked.
	exact := padTo(goodPolicy+"x: ", MaxPolicySize)
	sizes := []struct {
		name    string
		body    string
		chunked bool
		ok      bool
	}{
		{"exactly 64 KiB", exact, false, true},
		{"exactly 64 KiB chunked", exact, true, true},
		{"64 KiB + 1", exact + "a", false, false},
		{"64 KiB + 1 chunked", exact + "a", true, false},
		{"128 KiB chunked", exact + exact, true, false},
	}
	for i, tc := range sizes {
		t.Run(tc.name, func(t *testing.T) {
			host := "mta-sts.size" + strconv.Itoa(i) + ".example"
			ps.serve(t, host, nil, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.body)))
					w.Write([]byte(tc.body))
					return
				}
				for b := []byte(tc.body); len(b) > 0; {
					n := min(len(b), 4096)
					w.Write(b[:n])
					w.(http.Flusher).Flush()
					b = b[n:]
				}
			})
			p, err := Fetch(ctx, c, strings.TrimPrefix(host, "mta-sts."))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Extensions) != 1 {
					t.Errorf("body truncated?")
				}
				return
			}
			wantFetchError(t, p, err, KindBodyTooLarge, tlsrpt.STSPolicyInvalid)
		})
	}
	t.Run("invalid policy", func(t *testing.T) {
		ps.servePolicy(t, "mta-sts.garbage.example", "garbage")
		p, err := Fetch(ctx, c, "garbage.example")
		e := wantFetchError(t, p, err, KindPolicySyntax, tlsrpt.STSPolicyInvalid)
		if e.Domain != "garbage.example" {
			t.Errorf("Domain %q", e.Domain)
		}
	})

	// A server that sends the headers and then trickles the body must not
	// hold the fetch past its budget.
	slow := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(goodPolicy)))
		w.Write([]byte(goodPolicy[:10]))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	ps.serve(t, "mta-sts.slow.example", nil, slow)
	t.Run("slow body vs context deadline", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Fetch(dctx, c, "slow.example")
		// The caller's own deadline ended the fetch: that is the
		// caller's cancellation, not a policy host failure.
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindCanceled || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("slow body vs fetch budget", func(t *testing.T) {
		start := time.Now()
		p, _, err := fetch(ctx, c, "slow.example", fetchOptions{timeout: 300 * time.Millisecond})
		wantFetchError(t, p, err, KindTimeout, tlsrpt.STSPolicyFetchError)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("slow headers vs fetch budget", func(t *testing.T) {
		ps.serve(t, "mta-sts.slowhead.example", nil, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		})
		p, _, err := fetch(ctx, c, "slowhead.example", fetchOptions{timeout: 300 * time.Millisecond})
		wantFetchError(t, p, err, KindTimeout, tlsrpt.STSPolicyFetchError)
	})
}

func TestFetchWebPKI(t *testing.T) {
	t.Parallel()
	ps := newPolicyServer(t)
	ctx := context.Background()
	other := newTestPKI(t)
	serve := func(host string, cert tls.Certificate) {
		ps.serve(t, host, &cert, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(goodPolicy))
		})
	}
	now := time.Now()
	serve("mta-sts.wrongname.example", ps.pki.leaf(t, time.Time{}, time.Time{}, "wrongname.example", "www.wrongname.example"))
	serve("mta-sts.expired.example", ps.pki.leaf(t, now.Add(-48*time.Hour), now.Add(-time.Hour), "mta-sts.expired.example"))
	serve("mta-sts.future.example", ps.pki.leaf(t, now.Add(time.Hour), now.Add(48*time.Hour), "mta-sts.future.example"))
	serve("mta-sts.untrusted.example", other.leaf(t, time.Time{}, time.Time{}, "mta-sts.untrusted.example"))
	serve("mta-sts.wildcard.example", ps.pki.leaf(t, time.Time{}, time.Time{}, "*.wildcard.example"))
	ps.servePolicy(t, "mta-sts.good.example", goodPolicy)
	// A certificate that names another host, for a client configured to
	// verify that other name.
	serve("mta-sts.sni.example", ps.pki.leaf(t, time.Time{}, time.Time{}, "elsewhere.example"))
	ps.mu.Lock()
	ps.certs["elsewhere.example"] = ps.certs["mta-sts.sni.example"]
	ps.mu.Unlock()

	tests := []struct {
		name   string
		domain string
		client func() *http.Client
		ok     bool
	}{
		{"valid", "good.example", ps.client, true},
		{"wildcard certificate", "wildcard.example", ps.client, true},
		{"wrong name", "wrongname.example", ps.client, false},
		{"expired", "expired.example", ps.client, false},
		{"not yet valid", "future.example", ps.client, false},
		{"unknown authority", "untrusted.example", ps.client, false},
		{"InsecureSkipVerify with a bad certificate", "untrusted.example", func() *http.Client {
			c := ps.client()
			c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
			return c
		}, false},
		{"InsecureSkipVerify with a good certificate", "good.example", func() *http.Client {
			c := ps.client()
			c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true, RootCAs: ps.pki.pool}
			return c
		}, false},
		{"client verifying another name", "sni.example", func() *http.Client {
			c := ps.client()
			c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: ps.pki.pool, ServerName: "elsewhere.example"}
			return c
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Fetch(ctx, tt.client(), tt.domain)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantFetchError(t, p, err, KindCertificate, tlsrpt.STSWebPKIInvalid)
		})
	}
}

func TestFetchTLSVersion(t *testing.T) {
	t.Parallel()
	ps := newPolicyServer(t)
	ps.srv.TLS.MinVersion = tls.VersionTLS10
	ps.srv.TLS.MaxVersion = tls.VersionTLS11
	ps.servePolicy(t, "mta-sts.old.example", goodPolicy)
	c := ps.client()
	c.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS10
	p, err := Fetch(context.Background(), c, "old.example")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Fetch over TLS 1.1 = %+v, %v", p, err)
	}
	// Depending on the cipher suites Go still offers for TLS 1.1, either
	// the handshake fails or Fetch refuses the connection afterwards.
	if e.Kind != KindTLSVersion && e.Kind != KindNetwork {
		t.Errorf("error %v", err)
	}
	t.Logf("TLS 1.1: %v", err)
}

func TestPrivateHTTPClient(t *testing.T) {
	t.Parallel()
	c := newPrivateHTTPClient()
	if c == http.DefaultClient || c.Transport == http.DefaultTransport {
		t.Fatal("private client shares the default client")
	}
	ft, ok := c.Transport.(*FetchTransport)
	if !ok || ft.RootCAs != nil || ft.Proxy == nil {
		t.Fatalf("transport %T %+v, want a FetchTransport with the system roots and proxies from the environment", c.Transport, c.Transport)
	}
	ft.init()
	if cfg := ft.proxied.TLSClientConfig; cfg.MinVersion < tls.VersionTLS12 || cfg.RootCAs != nil || cfg.InsecureSkipVerify {
		t.Errorf("TLS config %+v", cfg)
	}
	// With a nil client, Fetch uses such a client: a loopback test
	// server's CA is not among the system roots.
	ps := newPolicyServer(t)
	ps.servePolicy(t, "mta-sts.good.example", goodPolicy)
	_, err := Fetch(context.Background(), nil, "good.example")
	var e *Error
	if !errors.As(err, &e) || e.Kind == KindInvalidDomain {
		t.Fatalf("Fetch with nil client: %v", err)
	}
}
