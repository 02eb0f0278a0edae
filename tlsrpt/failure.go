package tlsrpt

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
)

// Failure reason codes returned by FailureReasonCode for failures that
// are not TLS alerts.
const (
	ReasonRecordHeader     = "tls-record-header-error"
	ReasonTimeout          = "io-timeout-during-handshake"
	ReasonConnectionClosed = "connection-closed-during-handshake"
)

// FailureReasonCode returns a short failure-reason-code (RFC 8460 4.3.3,
// 4.4) for an error from a TLS handshake, for use with the result type
// validation-failure:
//
//   - an alert from the peer gives "tls-remote-alert-<n>-<name>", such as
//     "tls-remote-alert-70-protocol-version-not-supported", or
//     "tls-remote-alert-<n>" for an alert crypto/tls has no name for;
//   - an alert this side sent (errors wrapping tls.AlertError) gives
//     "tls-local-alert-<n>-<name>";
//   - a peer that does not speak TLS (tls.RecordHeaderError) gives
//     ReasonRecordHeader;
//   - a deadline or timeout gives ReasonTimeout;
//   - a peer closing or resetting the connection gives
//     ReasonConnectionClosed.
//
// Certificate failures (those Classify gives a certificate result type), a
// cancelled context and anything else give "": certificate failures have
// result types of their own, which say enough, and a cancellation is not
// the peer's failure.
//
// crypto/tls reports a peer's alert over TCP as a *net.OpError with Op
// "remote error" around an unexported alert value; its number is read by
// reflection on that value's kind (uint8). Error text is never matched.
func FailureReasonCode(err error) string {
	if err == nil {
		return ""
	}
	if Classify(err).IsCertificate() || errors.Is(err, context.Canceled) {
		return ""
	}
	if op, ok := remoteAlert(err); ok {
		if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 {
			return alertCode("tls-remote-alert-", uint8(v.Uint()))
		}
	}
	if a, ok := errors.AsType[tls.AlertError](err); ok {
		return alertCode("tls-local-alert-", uint8(a))
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return ReasonRecordHeader
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ReasonTimeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return ReasonTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) {
		return ReasonConnectionClosed
	}
	return ""
}

// alertCode names alert n as prefix + n + "-" + crypto/tls's description
// with spaces turned into hyphens, or prefix + n when crypto/tls has no
// description.
func alertCode(prefix string, n uint8) string {
	s := prefix + strconv.Itoa(int(n))
	desc := strings.TrimPrefix(tls.AlertError(n).Error(), "tls: ")
	if strings.HasPrefix(desc, "alert(") {
		return s
	}
	var b strings.Builder
	for _, c := range strings.ToLower(desc) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	return s + "-" + strings.Trim(b.String(), "-")
}
