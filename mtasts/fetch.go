package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/tlsrpt"
)

// DefaultFetchTimeout is the time budget of one policy fetch when the
// context carries no shorter deadline (RFC 8461 3.3 suggests one minute).
const DefaultFetchTimeout = 60 * time.Second

// Fetch retrieves and parses the policy of domain from
// https://mta-sts.<domain>/.well-known/mta-sts.txt as RFC 8461 3.3
// requires:
//
//   - HTTPS only, to mta-sts.<domain> only; the certificate must be valid
//     under WebPKI for that name. A client that skips verification
//     (InsecureSkipVerify) makes every fetch fail: a response is accepted
//     only when the connection has verified chains and the leaf names the
//     policy host.
//   - Redirects are refused, also when c would follow them: Fetch uses a
//     shallow copy of c whose CheckRedirect returns http.ErrUseLastResponse,
//     and any 3xx is an error. Only status 200 is accepted.
//   - The media type must be text/plain (parameters are ignored).
//   - A body over MaxPolicySize is an error, never truncated.
//   - No HTTP caching: the request carries Cache-Control: no-cache and no
//     conditional headers, and the copy of c has no cookie jar.
//   - The fetch ends after DefaultFetchTimeout unless ctx ends sooner.
//
// A nil c means a private client, a FetchTransport with the system's
// roots (HTTP/1.1, X25519, the connection closed after the fetch), never
// http.DefaultClient. domain may be in any case, with a trailing dot or
// U-labels. Errors are *Error: Result is tlsrpt.STSWebPKIInvalid for
// certificate failures, tlsrpt.STSPolicyInvalid for a body that is not a
// valid policy, and tlsrpt.STSPolicyFetchError for everything else but
// KindInvalidDomain and KindCanceled.
func Fetch(ctx context.Context, c *http.Client, domain string) (*Policy, error) {
	d, err := normalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = newPrivateHTTPClient()
	}
	p, _, err := fetch(ctx, c, d, fetchOptions{})
	return p, err
}

// fetchOptions carries a Client's fetch settings.
type fetchOptions struct {
	timeout    time.Duration
	mediaTypes []string
}

// newPrivateHTTPClient returns a client of its own: a FetchTransport with
// the system roots and proxies from the environment, nothing shared with
// http.DefaultClient (whose transport other code may have weakened).
func newPrivateHTTPClient() *http.Client {
	return &http.Client{Transport: &FetchTransport{Proxy: http.ProxyFromEnvironment}}
}

// fetch is Fetch for a normalised domain; it also returns the raw body,
// which the cache keeps.
func fetch(ctx context.Context, c *http.Client, domain string, opts fetchOptions) (*Policy, []byte, error) {
	timeout := opts.timeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	host := "mta-sts." + domain
	mkErr := func(kind Kind, rt tlsrpt.ResultType, reason string, err error) *Error {
		if perr := parent.Err(); perr != nil {
			return &Error{Kind: KindCanceled, Domain: domain, Err: perr}
		}
		if kind == KindNetwork && (ctx.Err() != nil || isNetTimeout(err)) {
			kind = KindTimeout
		}
		return &Error{Kind: kind, Domain: domain, Result: rt, Reason: reason, Err: err}
	}
	fail := func(kind Kind, rt tlsrpt.ResultType, reason string, err error) (*Policy, []byte, error) {
		return nil, nil, mkErr(kind, rt, reason, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return fail(KindInvalidDomain, "", "cannot build request", err)
	}
	// RFC 8461 3.3: "HTTP caching MUST NOT be used"; ask intermediaries
	// too.
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Accept", "text/plain")
	// Fetches are rare (a new id, a daily refresh): close the connection
	// afterwards, so that the next fetch handshakes, and validates the
	// certificate, again.
	req.Close = true

	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cc.Jar = nil
	resp, err := cc.Do(req)
	if err != nil {
		// RFC 8460 4.3.2.2: sts-webpki-invalid is a policy host whose
		// certificate fails PKIX validation.
		if tlsrpt.Classify(err).IsCertificate() {
			return fail(KindCertificate, tlsrpt.STSWebPKIInvalid, "", err)
		}
		return fail(KindNetwork, tlsrpt.STSPolicyFetchError, "", err)
	}
	defer resp.Body.Close()

	// RFC 8461 3.3: the certificate MUST be valid for mta-sts.<domain>
	// under WebPKI. Check it here as well as in the transport, so that a
	// client configured to skip verification (or to verify another name)
	// can never weaken it.
	if resp.TLS == nil {
		return fail(KindCertificate, tlsrpt.STSWebPKIInvalid, "response not received over TLS", nil)
	}
	if len(resp.TLS.VerifiedChains) == 0 || len(resp.TLS.VerifiedChains[0]) == 0 {
		return fail(KindCertificate, tlsrpt.STSWebPKIInvalid, "certificate chain was not verified", nil)
	}
	if err := resp.TLS.VerifiedChains[0][0].VerifyHostname(host); err != nil {
		return fail(KindCertificate, tlsrpt.STSWebPKIInvalid, "", err)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		return fail(KindTLSVersion, tlsrpt.STSPolicyFetchError, tls.VersionName(resp.TLS.Version), nil)
	}

	if resp.StatusCode != http.StatusOK {
		e := mkErr(KindHTTPStatus, tlsrpt.STSPolicyFetchError, "", nil)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			e = mkErr(KindRedirect, tlsrpt.STSPolicyFetchError, "RFC 8461 3.3 forbids following redirects", nil)
		}
		if e.Kind != KindCanceled {
			e.StatusCode = resp.StatusCode
		}
		return nil, nil, e
	}

	ct := resp.Header.Get("Content-Type")
	if !acceptableMediaType(ct, opts.mediaTypes) {
		return fail(KindContentType, tlsrpt.STSPolicyFetchError, quote.String(ct)+" is not text/plain", nil)
	}
	if resp.ContentLength > MaxPolicySize {
		return fail(KindBodyTooLarge, tlsrpt.STSPolicyInvalid, "Content-Length "+strconv.FormatInt(resp.ContentLength, 10), nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err != nil {
		return fail(KindNetwork, tlsrpt.STSPolicyFetchError, "reading body", err)
	}
	if len(body) > MaxPolicySize {
		return fail(KindBodyTooLarge, tlsrpt.STSPolicyInvalid, "more than "+strconv.Itoa(MaxPolicySize)+" bytes", nil)
	}
	p, err := ParsePolicy(body)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Domain = domain
		}
		return nil, nil, err
	}
	return p, body, nil
}

// acceptableMediaType reports whether a Content-Type header names
// text/plain (RFC 8461 3.2: parameters other than charset are ignored, and
// so is the charset: the body is parsed as the ABNF's bytes) or one of the
// extra media types a Client allows.
func acceptableMediaType(ct string, extra []string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return false
	}
	if mt == "text/plain" {
		return true
	}
	for _, x := range extra {
		if strings.EqualFold(mt, x) {
			return true
		}
	}
	return false
}

// isNetTimeout reports whether err is a network timeout.
func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
