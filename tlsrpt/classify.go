package tlsrpt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
)

// ResultError is an error that knows its own TLS-RPT result type, such as
// *tlsverify.Error. Classify reports the result of the outermost
// ResultError in an error's chain instead of looking further down.
type ResultError interface {
	error
	// TLSRPTResult returns the error's result type, or "" when it has
	// none (Classify then ignores the error).
	TLSRPTResult() ResultType
}

// Classify returns the RFC 8460 4.3.1 result type of a failed TLS
// negotiation, or "" when err is nil or not recognisably a TLS failure.
// It is the module's one classifier of TLS errors: the other packages call
// it rather than inspect x509 and tls errors themselves. It looks through
// wrapping (fmt.Errorf with %w, *net.OpError, *url.Error,
// *tls.CertificateVerificationError) and decides, first match wins:
//
//   - a ResultError with a result (a *tlsverify.Error) gives that result;
//   - x509.HostnameError gives CertificateHostMismatch;
//   - x509.CertificateInvalidError gives CertificateExpired for the
//     reason x509.Expired (a certificate expired or not yet valid), and
//     CertificateNotTrusted for every other reason (a CA not allowed to
//     sign, name constraints, key usage, path length, ...);
//   - x509.UnknownAuthorityError, x509.ConstraintViolationError,
//     x509.UnhandledCriticalExtension, x509.InsecureAlgorithmError and
//     x509.SystemRootsError give CertificateNotTrusted, and so does a
//     *tls.CertificateVerificationError around any other error;
//   - an alert, sent (tls.AlertError) or received (over TCP, a
//     *net.OpError with Op "remote error"; over QUIC, a tls.AlertError),
//     and a peer that does not speak TLS (tls.RecordHeaderError) give
//     ValidationFailure.
//
// RFC 8460 4.3.1 names certificate-not-trusted the "catch-all" for
// certificate failures ("untrusted/unknown CAs, certificate name
// constraints, certificate chain errors, etc.") and validation-failure a
// "general failure for a reason not matched by a category above". So
// every x509 verification failure that is neither a name mismatch nor an
// expiry is certificate-not-trusted, including the rarer x509 error types
// (an unhandled critical extension, an insecure signature algorithm) that
// earlier copies of this classifier reported as validation-failure.
//
// Anything else (a timeout, a reset or closed connection, a refused
// connection, a cancelled context, an untyped crypto/tls error) gives "":
// whether it is a TLS failure depends on where it happened, which only the
// caller knows (tlsverify.ClassifyHandshakeError, for an error known to
// come from a handshake, reports it as ValidationFailure). Deciding that
// STARTTLS was not offered (StartTLSNotSupported) is the SMTP client's
// job. Error text is never matched.
func Classify(err error) ResultType {
	if err == nil {
		return ""
	}
	if re, ok := errors.AsType[ResultError](err); ok {
		if rt := re.TLSRPTResult(); rt != "" {
			return rt
		}
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return CertificateHostMismatch
	}
	if e, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		if e.Reason == x509.Expired {
			return CertificateExpired
		}
		return CertificateNotTrusted
	}
	if isAnyOf[x509.UnknownAuthorityError](err) || isAnyOf[x509.ConstraintViolationError](err) ||
		isAnyOf[x509.UnhandledCriticalExtension](err) || isAnyOf[x509.InsecureAlgorithmError](err) ||
		isAnyOf[x509.SystemRootsError](err) || isAnyOf[*tls.CertificateVerificationError](err) {
		return CertificateNotTrusted
	}
	if _, ok := remoteAlert(err); ok || isAnyOf[tls.AlertError](err) || isAnyOf[tls.RecordHeaderError](err) {
		return ValidationFailure
	}
	return ""
}

// IsCertificate reports whether t is one of the result types of a
// certificate failure: certificate-host-mismatch, certificate-expired or
// certificate-not-trusted (RFC 8460 4.3.1).
func (t ResultType) IsCertificate() bool {
	return t == CertificateHostMismatch || t == CertificateExpired || t == CertificateNotTrusted
}

func isAnyOf[T error](err error) bool {
	_, ok := errors.AsType[T](err)
	return ok
}

// remoteAlert returns the *net.OpError of an alert the peer sent, if err
// is one: over TCP crypto/tls reports a received alert as a *net.OpError
// with Op "remote error" around an unexported alert value (tls.AlertError
// wraps alerts only on QUIC connections).
func remoteAlert(err error) (*net.OpError, bool) {
	op, ok := errors.AsType[*net.OpError](err)
	return op, ok && op.Op == "remote error" && op.Err != nil
}
