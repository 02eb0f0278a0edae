package smtptls_test

import (
	"crypto/x509"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/tlsrpt"
)

// TestFailureResultCertificate: FailureResult classifies with
// tlsrpt.Classify. A certificate error that reaches it without a
// *tls.CertificateVerificationError or *tlsverify.Error around it (an
// MTA's own x509 check) used to give "" (not counted); it is now the
// certificate result type RFC 8460 4.3.1 names.
func TestFailureResultCertificate(t *testing.T) {
	t.Parallel()
	h := &smtptls.Host{Name: "mx.example.com"}
	for _, tc := range []struct {
		name string
		err  error
		want tlsrpt.ResultType
	}{
		{"x509-hostname", x509.HostnameError{Host: "mx.example.com"}, tlsrpt.CertificateHostMismatch},
		{"x509-expired", fmt.Errorf("verify: %w", x509.CertificateInvalidError{Reason: x509.Expired}), tlsrpt.CertificateExpired},
		{"x509-unknown-authority", x509.UnknownAuthorityError{}, tlsrpt.CertificateNotTrusted},
		{"starttls-not-offered", fmt.Errorf("smtp: %w", smtptls.ErrSTARTTLSNotOffered), tlsrpt.StartTLSNotSupported},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ""},
		{"nil", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := h.FailureResult(tc.err); got != tc.want {
				t.Errorf("FailureResult(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
