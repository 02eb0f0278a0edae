package tlsrpt_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/smtptls/smtptls/tlsrpt"
	"github.com/smtptls/smtptls/tlsverify"
)

// TestClassify covers every error shape Classify knows, bare and wrapped
// the ways they reach it: fmt.Errorf with %w, *net.OpError, *url.Error
// (an HTTPS fetch) and *tls.CertificateVerificationError.
func TestClassify(t *testing.T) {
	t.Parallel()
	reasons := []struct {
		reason x509.InvalidReason
		want   tlsrpt.ResultType
	}{
		{x509.NotAuthorizedToSign, tlsrpt.CertificateNotTrusted},
		{x509.Expired, tlsrpt.CertificateExpired},
		{x509.CANotAuthorizedForThisName, tlsrpt.CertificateNotTrusted},
		{x509.TooManyIntermediates, tlsrpt.CertificateNotTrusted},
		{x509.IncompatibleUsage, tlsrpt.CertificateNotTrusted},
		{x509.NameMismatch, tlsrpt.CertificateNotTrusted},
		{x509.NameConstraintsWithoutSANs, tlsrpt.CertificateNotTrusted},
		{x509.UnconstrainedName, tlsrpt.CertificateNotTrusted},
		{x509.TooManyConstraints, tlsrpt.CertificateNotTrusted},
		{x509.CANotAuthorizedForExtKeyUsage, tlsrpt.CertificateNotTrusted},
		{x509.NoValidChains, tlsrpt.CertificateNotTrusted},
	}
	type tc struct {
		name string
		err  error
		want tlsrpt.ResultType
	}
	base := []tc{
		{"hostname", x509.HostnameError{Host: "mx.example.com"}, tlsrpt.CertificateHostMismatch},
		{"unknown-authority", x509.UnknownAuthorityError{}, tlsrpt.CertificateNotTrusted},
		{"constraint-violation", x509.ConstraintViolationError{}, tlsrpt.CertificateNotTrusted},
		{"unhandled-critical-extension", x509.UnhandledCriticalExtension{}, tlsrpt.CertificateNotTrusted},
		{"insecure-algorithm", x509.InsecureAlgorithmError(x509.SHA1WithRSA), tlsrpt.CertificateNotTrusted},
		{"system-roots", x509.SystemRootsError{}, tlsrpt.CertificateNotTrusted},
		{"verification-error-untyped", &tls.CertificateVerificationError{Err: errors.New("x")}, tlsrpt.CertificateNotTrusted},
		{"verification-error-hostname", &tls.CertificateVerificationError{Err: x509.HostnameError{}}, tlsrpt.CertificateHostMismatch},
		{"verification-error-expired", &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, tlsrpt.CertificateExpired},
		{"local-alert", tls.AlertError(40), tlsrpt.ValidationFailure},
		{"record-header", tls.RecordHeaderError{Msg: "not TLS"}, tlsrpt.ValidationFailure},
		{"tlsverify-error", &tlsverify.Error{Kind: tlsverify.KindNoUsableRecords, Result: tlsrpt.TLSAInvalid}, tlsrpt.TLSAInvalid},
		{"tlsverify-error-no-match", &tlsverify.Error{Kind: tlsverify.KindNoMatch, Result: tlsrpt.ValidationFailure}, tlsrpt.ValidationFailure},
		// The verifier's decision wins over the x509 error it wraps.
		{"tlsverify-error-wins", &tlsverify.Error{Kind: tlsverify.KindNoMatch, Result: tlsrpt.ValidationFailure, Err: x509.HostnameError{}}, tlsrpt.ValidationFailure},
		{"tlsverify-error-without-result", &tlsverify.Error{Err: x509.UnknownAuthorityError{}}, tlsrpt.CertificateNotTrusted},
		// Not recognisably TLS failures: the caller decides.
		{"nil", nil, ""},
		{"canceled", context.Canceled, ""},
		{"deadline", context.DeadlineExceeded, ""},
		{"io-timeout", os.ErrDeadlineExceeded, ""},
		{"eof", io.EOF, ""},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ""},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, ""},
		{"untyped", errors.New("tls: failed to parse certificate"), ""},
	}
	for _, r := range reasons {
		base = append(base, tc{"invalid-" + fmt.Sprint(int(r.reason)), x509.CertificateInvalidError{Reason: r.reason}, r.want})
	}
	var cases []tc
	for _, c := range base {
		cases = append(cases, c)
		if c.err == nil {
			continue
		}
		cases = append(cases,
			tc{c.name + "/errorf", fmt.Errorf("smtp: starttls: %w", c.err), c.want},
			tc{c.name + "/op-error", &net.OpError{Op: "read", Net: "tcp", Err: c.err}, c.want},
			tc{c.name + "/url-error", &url.Error{Op: "Get", URL: "https://mta-sts.example.com/", Err: c.err}, c.want},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := tlsrpt.Classify(c.err); got != c.want {
				t.Errorf("Classify(%v) = %q, want %q", c.err, got, c.want)
			}
			// ClassifyHandshakeError is Classify with validation-failure
			// for any other handshake error.
			want := c.want
			if want == "" && c.err != nil {
				want = tlsrpt.ValidationFailure
			}
			if got := tlsverify.ClassifyHandshakeError(c.err); got != want {
				t.Errorf("ClassifyHandshakeError(%v) = %q, want %q", c.err, got, want)
			}
		})
	}
}

// TestClassifyHandshakes classifies the errors of real handshakes over
// loopback TCP, as crypto/tls returns them: a received alert (a
// *net.OpError "remote error"), and certificate failures as
// *tls.CertificateVerificationError around the x509 error.
func TestClassifyHandshakes(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	serveCert := func(c tls.Certificate, min uint16) string {
		return serve(t, tlsServer(&tls.Config{Certificates: []tls.Certificate{c}, MinVersion: min}))
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) error
		want tlsrpt.ResultType
		// remote: the error must be an alert the server sent.
		remote bool
	}{
		{"expired", func(t *testing.T) error {
			return handshake(t, serveCert(pki.expired, 0), &tls.Config{RootCAs: pki.roots, ServerName: "localhost"}, nil)
		}, tlsrpt.CertificateExpired, false},
		{"host-mismatch", func(t *testing.T) error {
			return handshake(t, serveCert(pki.valid, 0), &tls.Config{RootCAs: pki.roots, ServerName: "otherhost"}, nil)
		}, tlsrpt.CertificateHostMismatch, false},
		{"unknown-authority", func(t *testing.T) error {
			return handshake(t, serveCert(pki.valid, 0), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}, nil)
		}, tlsrpt.CertificateNotTrusted, false},
		{"received-alert", func(t *testing.T) error {
			cfg := &tls.Config{RootCAs: pki.roots, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}
			return handshake(t, serveCert(pki.valid, tls.VersionTLS12), cfg, nil)
		}, tlsrpt.ValidationFailure, true},
		{"verifier", func(t *testing.T) error {
			d := &tlsverify.DANE{Records: []tlsverify.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: make([]byte, 32)}}}
			return handshake(t, serveCert(pki.valid, 0), tlsverify.Config(nil, "localhost", d), nil)
		}, tlsrpt.ValidationFailure, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.run(t)
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			if op, ok := errors.AsType[*net.OpError](err); tc.remote && (!ok || op.Op != "remote error") {
				t.Fatalf("error %v (%T) is not a received alert", err, err)
			}
			if got := tlsrpt.Classify(err); got != tc.want {
				t.Errorf("Classify(%v) = %q, want %q", err, got, tc.want)
			}
			if got := tlsrpt.Classify(fmt.Errorf("session: %w", err)); got != tc.want {
				t.Errorf("Classify(wrapped %v) = %q, want %q", err, got, tc.want)
			}
		})
	}
}

func TestResultTypeIsCertificate(t *testing.T) {
	t.Parallel()
	for _, rt := range []tlsrpt.ResultType{tlsrpt.CertificateHostMismatch, tlsrpt.CertificateExpired, tlsrpt.CertificateNotTrusted} {
		if !rt.IsCertificate() {
			t.Errorf("%s: IsCertificate false", rt)
		}
	}
	for _, rt := range []tlsrpt.ResultType{"", tlsrpt.StartTLSNotSupported, tlsrpt.ValidationFailure, tlsrpt.TLSAInvalid,
		tlsrpt.DNSSECInvalid, tlsrpt.DANERequired, tlsrpt.STSPolicyFetchError, tlsrpt.STSPolicyInvalid, tlsrpt.STSWebPKIInvalid} {
		if rt.IsCertificate() {
			t.Errorf("%q: IsCertificate true", rt)
		}
	}
}
