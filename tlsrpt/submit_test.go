package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// reportServer is a real HTTPS report endpoint that records what it
// received.
type reportServer struct {
	*httptest.Server
	mu       sync.Mutex // guards received
	received []receivedReport
}

type receivedReport struct {
	method, path, contentType string
	report                    *Report
	err                       error
}

func newReportServer(t *testing.T) *reportServer {
	rs := &reportServer{}
	rs.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var rep *Report
		if err == nil {
			var zr *gzip.Reader
			if zr, err = gzip.NewReader(bytes.NewReader(body)); err == nil {
				var j []byte
				if j, err = io.ReadAll(zr); err == nil {
					rep, err = ParseReport(j)
				}
			}
		}
		rs.mu.Lock()
		rs.received = append(rs.received, receivedReport{req.Method, req.URL.Path, req.Header.Get("Content-Type"), rep, err})
		rs.mu.Unlock()
		switch req.URL.Path {
		case "/ok":
		case "/created":
			w.WriteHeader(http.StatusCreated)
		case "/redirect":
			http.Redirect(w, req, "/ok", http.StatusFound)
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(bytes.Repeat([]byte("busy\n"), 1<<18))
		default:
			http.NotFound(w, req)
		}
	}))
	// The refused handshakes of TestSubmitDefaultClient are expected.
	rs.Config.ErrorLog = log.New(io.Discard, "", 0)
	rs.StartTLS()
	t.Cleanup(rs.Close)
	return rs
}

func (rs *reportServer) log() []receivedReport {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]receivedReport(nil), rs.received...)
}

func TestSubmit(t *testing.T) {
	t.Parallel()
	r := sampleReport(t)
	rs := newReportServer(t)
	s := &Submitter{HTTPClient: rs.Client()}
	ctx := context.Background()

	for _, path := range []string{"/ok", "/created"} {
		if err := s.Submit(ctx, rs.URL+path, &r); err != nil {
			t.Errorf("Submit %s: %v", path, err)
		}
	}
	seen := rs.log()
	if len(seen) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(seen))
	}
	for _, got := range seen {
		if got.method != http.MethodPost || got.contentType != MediaTypeGzip || got.err != nil || !reflect.DeepEqual(*got.report, r) {
			t.Errorf("server saw %s %s %q: %+v, %v", got.method, got.path, got.contentType, got.report, got.err)
		}
	}

	err := s.Submit(ctx, rs.URL+"/fail", &r)
	if e, ok := errors.AsType[*Error](err); !ok || e.Kind != KindHTTPStatus || e.StatusCode != http.StatusServiceUnavailable || len(e.Error()) > 512 {
		t.Errorf("Submit /fail: %v", err)
	}
	if err := s.Submit(ctx, rs.URL+"/missing", &r); kindOf(err) != KindHTTPStatus {
		t.Errorf("Submit /missing: %v", err)
	}

	before := len(rs.log())
	for _, uri := range []string{
		strings.Replace(rs.URL, "https:", "http:", 1) + "/ok",
		"mailto:tlsrpt@example.com",
		"https:///nohost",
		"://",
	} {
		if err := s.Submit(ctx, uri, &r); kindOf(err) != KindInvalid {
			t.Errorf("Submit(%q): %v, want kind %v", uri, err, KindInvalid)
		}
	}
	if err := s.Submit(ctx, rs.URL+"/ok", nil); kindOf(err) != KindInvalid {
		t.Errorf("Submit(nil report): %v", err)
	}
	if n := len(rs.log()); n != before {
		t.Errorf("refused submissions reached the server (%d requests)", n-before)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Submit(cctx, rs.URL+"/ok", &r); kindOf(err) != KindCanceled {
		t.Errorf("Submit with cancelled context: %v", err)
	}
}

// The default client verifies certificates and refuses redirects.
func TestSubmitDefaultClient(t *testing.T) {
	t.Parallel()
	r := sampleReport(t)
	rs := newReportServer(t)
	ctx := context.Background()

	var zero Submitter
	if err := zero.Submit(ctx, rs.URL+"/ok", &r); kindOf(err) != KindNetwork {
		t.Errorf("zero Submitter with an untrusted certificate: %v, want kind %v", err, KindNetwork)
	}
	if n := len(rs.log()); n != 0 {
		t.Errorf("server saw %d requests over an unverified connection", n)
	}

	// The same private client, trusting the test server's CA.
	roots := x509.NewCertPool()
	roots.AddCert(rs.Certificate())
	trusting := &Submitter{HTTPClient: newPrivateClient(&tls.Config{RootCAs: roots})}
	if err := trusting.Submit(ctx, rs.URL+"/ok", &r); err != nil {
		t.Fatalf("private client: %v", err)
	}
	err := trusting.Submit(ctx, rs.URL+"/redirect", &r)
	if e, ok := errors.AsType[*Error](err); !ok || e.Kind != KindHTTPStatus || e.StatusCode != http.StatusFound {
		t.Errorf("redirect: %v, want kind %v with status 302", err, KindHTTPStatus)
	}
	if seen := rs.log(); len(seen) != 2 || seen[1].path != "/redirect" {
		t.Errorf("server log %+v: the redirect must not be followed", seen)
	}
}
