package tlsrpt

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/smtptls/smtptls/internal/quote"
)

// maxResponseRead bounds how much of a report server's response body is
// read (to reuse the connection) and how much of it is quoted in an error.
const (
	maxResponseRead  = 64 << 10
	maxResponseQuote = 256
)

// Submitter delivers reports by HTTPS POST (RFC 8460 3, 5.4). Its zero
// value is ready to use; it must not be copied after first use.
type Submitter struct {
	// HTTPClient sends the request. Nil means a private client (never
	// http.DefaultClient) that verifies the server's certificate, uses
	// TLS 1.2 or later, no proxy, refuses redirects, and gives up after
	// one minute. RFC 8460 3 lets submitters ignore certificate errors,
	// which this default does not do: a report names the sender's and
	// the receiver's MX hosts and failures, which an impostor would like
	// to read. A client that follows redirects risks a 301/302/303
	// turning the POST into a bodiless GET that "succeeds".
	HTTPClient *http.Client

	once    sync.Once // guards the creation of private
	private *http.Client
}

// newPrivateClient returns the client a Submitter uses when HTTPClient is
// nil; tlsConfig may add root CAs (tests).
func newPrivateClient(tlsConfig *tls.Config) *http.Client {
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	tlsConfig.MinVersion = tls.VersionTLS12
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsConfig,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 45 * time.Second,
			MaxIdleConns:          16,
			IdleConnTimeout:       30 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (s *Submitter) client() *http.Client {
	if s.HTTPClient != nil {
		return s.HTTPClient
	}
	s.once.Do(func() { s.private = newPrivateClient(nil) })
	return s.private
}

// Submit POSTs r, gzip-compressed with Content-Type
// application/tlsrpt+gzip (RFC 8460 5.2, 5.4), to uri, which must be an
// https URI with a host (take it from Record.HTTPS). Any 2xx status is
// success (RFC 8460 5.4 names 200 and 201); with the default client a
// redirect is a failure with its 3xx status. At most 64 KiB of the
// response body is read.
//
// Errors are *Error: KindInvalid (not an https URI, nil report),
// KindCanceled, KindNetwork (no response: connection, TLS, certificate or
// timeout failures) or KindHTTPStatus (StatusCode set; Reason quotes the
// start of the body).
func (s *Submitter) Submit(ctx context.Context, uri string, r *Report) error {
	if r == nil {
		return &Error{Kind: KindInvalid, Reason: "nil report"}
	}
	u, err := url.Parse(uri)
	if err != nil || !strings.EqualFold(u.Scheme, "https") || u.Host == "" {
		return &Error{Kind: KindInvalid, Reason: "report URI is not https: " + quote.String(uri)}
	}
	body, err := r.Gzip()
	if err != nil {
		return &Error{Kind: KindInvalid, Reason: "rendering report", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(body))
	if err != nil {
		return &Error{Kind: KindInvalid, Reason: "report URI " + quote.String(uri), Err: err}
	}
	req.Header.Set("Content-Type", MediaTypeGzip)
	resp, err := s.client().Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return &Error{Kind: KindCanceled, Err: cerr}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &Error{Kind: KindNetwork, Reason: "POST " + quote.String(uri), Err: err}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseQuote))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead-maxResponseQuote))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	reason := "POST " + quote.String(uri)
	if len(head) > 0 {
		reason += ": " + quote.String(clip(string(head), maxResponseQuote))
	}
	return &Error{Kind: KindHTTPStatus, StatusCode: resp.StatusCode, Reason: reason}
}
