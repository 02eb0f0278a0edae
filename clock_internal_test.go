package smtptls

import (
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

// TestPolicyHTTPClientClock: the default MTA-STS fetch client checks the
// policy host's certificate at the Evaluator's Now. httptest's
// certificate is valid until 2084.
func TestPolicyHTTPClientClock(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	for _, tc := range []struct {
		name string
		now  func() time.Time
		want tlsrpt.ResultType
	}{
		{"real-clock", nil, ""},
		{"2100", func() time.Time { return time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) }, tlsrpt.CertificateExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := policyHTTPClient(pool, tc.now, (&net.Dialer{}).DialContext).Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if got := tlsrpt.Classify(err); got != tc.want {
				t.Errorf("Get: %v (%q), want %q", err, got, tc.want)
			}
		})
	}
}
