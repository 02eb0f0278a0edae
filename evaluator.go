package smtptls

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/tlsrpt"
)

// DefaultMaxMX is the number of MX hosts an Evaluator considers when
// MaxMX is zero. Postfix tries 5 addresses by default; hosts beyond ten are
// never reached in practice and would only multiply lookups an attacker
// can trigger.
const DefaultMaxMX = 10

// Evaluator turns a recipient domain into a delivery Decision: the MX hosts
// to try, in order, each with its TLS requirement, *tls.Config and
// verifier, and the TLS-RPT policy to report against.
//
// Its zero value is ready to use and secure: DANE and MTA-STS are both on.
// Set fields before the first call and do not change them afterwards; an
// Evaluator is safe for concurrent use and must not be copied after first
// use.
type Evaluator struct {
	// Resolver looks up MX, address, TLSA and TXT records. It must report
	// DNSSEC status faithfully for DANE to work. Nil means a
	// resolver.Cache over a resolver.Validating that asks the system's
	// resolvers (resolv.conf) for DNSSEC data and validates it in-process
	// from the root trust anchors, so no local validating resolver is
	// needed; call Check at start-up to learn whether the upstream passes
	// DNSSEC records through. A resolver.Stub in front of a local
	// validating resolver (unbound) is the alternative. Both default
	// caches keep their default bounds (resolver.DefaultCacheBytes of
	// answers, resolver.DefaultValidatingCacheBytes of zone keys): room
	// for more than 100,000 recipient domains.
	Resolver resolver.Resolver

	// STS is the MTA-STS client. Nil means a client sharing Resolver and
	// Now, with an HTTPS client that trusts Roots, an in-memory policy
	// cache and decoded layer at their default bounds
	// (mtasts.DefaultMemoryCacheBytes, mtasts.DefaultDecodedBytes: more
	// than 100,000 policies), whose policies are lost on restart; give it
	// a DirCache in production.
	STS *mtasts.Client

	// DisableSTS turns MTA-STS off. Domains that publish only MTA-STS
	// then get opportunistic TLS, which an active attacker can strip.
	DisableSTS bool

	// DisableDANE turns DANE off: no TLSA lookups. Domains that publish
	// only DANE then get opportunistic TLS, which an attacker can strip.
	DisableDANE bool

	// Roots are the WebPKI roots for MTA-STS and operator "verify"
	// certificate checks. Nil means the system roots.
	Roots *x509.CertPool

	// Overrides are per-domain operator policies, like Postfix's
	// smtp_tls_policy_maps, keyed by domain (any case, U-labels allowed).
	// A domain without an entry gets the automatic DANE + MTA-STS
	// decision. Nil means none.
	Overrides map[string]Override

	// DigestPreference ranks TLSA digest matching types for DANE digest
	// agility (RFC 7671 9), strongest first; see
	// tlsverify.DANE.DigestPreference. Nil means SHA-512 then SHA-256. A
	// record of a matching type the list leaves out is unusable: a host
	// that publishes only such records gets Encrypt (or STSEnforce), not
	// DANE (dane.Options).
	DigestPreference []uint8

	// MaxMX bounds the MX hosts considered. Zero means DefaultMaxMX.
	MaxMX int

	// DialContext dials the TCP connections of the default MTA-STS
	// client's policy fetches (when STS is nil), with the signature of
	// net.Dialer.DialContext. It is only ever given IP addresses: the
	// policy host mta-sts.<domain> is resolved with Resolver (A and AAAA,
	// resolver.LookupAddrs, at the same time as the TXT record), never
	// with the system's resolver, so that the whole decision rests on one
	// view of the DNS. Nil means a net.Dialer. It does not reach a client
	// the caller builds: set STS.HTTPClient's transport instead.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Now is the Evaluator's clock. Nil means time.Now. It reaches
	// everything the Evaluator builds: the certificate validity checks of
	// every verifier and tls.Config it returns (Host.Verify,
	// Host.TLSConfig), the default resolver (resolver.Cache TTLs and
	// resolver.Validating signature validity periods) when Resolver is
	// nil, and the default MTA-STS client (policy expiry and fetch
	// back-off, its MemoryCache, and the certificate check of policy
	// fetches) when STS is nil. It does not reach parts the caller builds:
	// a caller who sets Resolver or STS and wants one clock sets the same
	// func on each of them (resolver.Cache.Now, resolver.Validating.Now,
	// mtasts.Client.Now, mtasts.MemoryCache.Now, and the Time of the
	// policy fetch's tls.Config). A clock that is wrong by days makes
	// DNSSEC answers Bogus and certificates expired.
	Now func() time.Time

	// Logger receives warnings (invalid overrides, DANE disabled). Nil
	// means slog.Default(). It is also the Logger of the default MTA-STS
	// client (when STS is nil), which logs fetch failures and a policy's
	// lint warnings once, when it fetches the policy, and of the default
	// validator (when Resolver is nil), which logs each use of a negative
	// trust anchor; a caller who sets STS or Resolver sets their
	// Loggers. Evaluate itself logs nothing per message.
	Logger *slog.Logger

	once sync.Once
	res  resolver.Resolver
	// defVal and defCache are the default resolver's parts (nil when the
	// caller set Resolver), for SetNegativeAnchors.
	defVal   *resolver.Validating
	defCache *resolver.Cache
	ntaMu    sync.Mutex // serialises SetNegativeAnchors
	ntaZones []string   // the zones of the NTAs in force
	sts      *mtasts.Client
	log      *slog.Logger
	over     map[string]Override

	// signed remembers zones known to be signed, for early TLSA lookups.
	signed signedZones
	// sequential turns early lookups off (tests compare decisions).
	sequential bool
}

func (e *Evaluator) init() {
	e.once.Do(func() {
		e.res = e.Resolver
		if e.res == nil {
			e.defVal = &resolver.Validating{Now: e.Now, Logger: e.Logger}
			e.defCache = &resolver.Cache{Resolver: e.defVal, Now: e.Now}
			e.res = e.defCache
		}
		e.log = e.Logger
		if e.log == nil {
			e.log = slog.Default()
		}
		e.sts = e.STS
		if e.sts == nil && !e.DisableSTS {
			e.sts = &mtasts.Client{
				Resolver:   e.res,
				HTTPClient: policyHTTPClient(e.Roots, e.Now, e.policyDialer()),
				Now:        e.Now,
				Logger:     e.Logger,
				// policyDialer dials the addresses looked up with the
				// TXT record (mtasts.PolicyHostAddrs).
				PrefetchPolicyHost: !e.sequential,
			}
		}
		e.over = make(map[string]Override, len(e.Overrides))
		for d, o := range e.Overrides {
			if n, err := dnsname.Mail.Normalize(d); err == nil {
				e.over[n] = o
			} else {
				e.log.Warn("smtptls: ignoring override for invalid domain", "domain", d, "err", err)
			}
		}
	})
}

// ErrCustomResolver is what SetNegativeAnchors returns when the caller
// set Resolver: the Evaluator cannot reach inside a resolver it did not
// build.
var ErrCustomResolver = errors.New("smtptls: negative trust anchors go to the resolver.Validating of the Resolver the caller set (and its resolver.Cache flushed), not through the Evaluator")

// SetNegativeAnchors replaces the negative trust anchors (RFC 7646) of
// the default resolver (when Resolver is nil) with ntas, while the MTA
// runs; nil lifts them all. It is the operator's lever when a recipient
// zone's DNSSEC breaks (an expired signature, a botched rollover): every
// lookup in the zone is Bogus and its mail defers; under an NTA its
// answers are Insecure, and its mail goes out with opportunistic TLS, or
// under its MTA-STS policy, until the NTA expires or is lifted. An NTA
// never makes an answer Secure and reaches no other zone (see
// resolver.NegativeAnchor). The answers the default cache holds for the
// zones of the NTAs set before and now are flushed, so the change
// applies to the next Evaluate.
//
// An unusable entry (no expiry, the root zone, not a domain name) makes
// it return the resolver's *resolver.NegativeAnchorError for each, and
// change nothing. With a Resolver the caller set it returns
// ErrCustomResolver: call SetNegativeAnchors on that resolver.Validating
// and Flush its resolver.Cache.
func (e *Evaluator) SetNegativeAnchors(ntas []resolver.NegativeAnchor) error {
	e.init()
	if e.defVal == nil {
		return ErrCustomResolver
	}
	e.ntaMu.Lock()
	defer e.ntaMu.Unlock()
	if err := e.defVal.SetNegativeAnchors(ntas); err != nil {
		return err
	}
	zones := make([]string, 0, len(ntas))
	for _, n := range ntas {
		zones = append(zones, n.Zone)
	}
	for _, z := range slices.Concat(e.ntaZones, zones) {
		e.defCache.Flush(z)
	}
	e.ntaZones = zones
	return nil
}

// policyHTTPClient is the default MTA-STS fetch client: an
// mtasts.FetchTransport (never http.DefaultClient) dialling with dial,
// trusting roots, checking certificate validity at now (nil: time.Now):
// HTTP/1.1, X25519, TLS 1.2 at least (RFC 8461 3.3), one connection per
// fetch, verified intermediates remembered.
func policyHTTPClient(roots *x509.CertPool, now func() time.Time, dial dialFunc) *http.Client {
	return &http.Client{
		Transport: &mtasts.FetchTransport{RootCAs: roots, Now: now, DialContext: dial},
		Timeout:   60 * time.Second,
	}
}

// dialFunc is the signature of net.Dialer.DialContext.
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// policyDialAttempt bounds one connection attempt to a policy host's
// address when more addresses remain to be tried, so that one
// unreachable address cannot use up the whole fetch budget.
const policyDialAttempt = 10 * time.Second

// policyDialer returns the dial function of the default MTA-STS client:
// host names (mta-sts.<domain>) are resolved with the Evaluator's
// resolver, and each address is dialled with DialContext (nil: a
// net.Dialer) in the order resolver.LookupAddrs returns them until one
// connects. The addresses the MTA-STS client looked up with the TXT
// record (mtasts.PolicyHostAddrs, the same lookup through the same
// resolver, started a round trip earlier) are used when there are
// some. Only addresses reach the dialler, so neither it nor the system's
// resolver ever looks a name up.
func (e *Evaluator) policyDialer() dialFunc {
	dial := e.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, portText, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return dial(ctx, network, addr)
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "invalid port", Addr: addr}}
		}
		addrs, ok := mtasts.PolicyHostAddrs(ctx, host)
		if !ok {
			addrs, _, err = resolver.LookupAddrs(ctx, e.res, dns.Fqdn(strings.ToLower(host)))
			if err != nil {
				return nil, &net.DNSError{Err: "lookup failed", Name: host, IsTemporary: true, UnwrapErr: err}
			}
		}
		var targets []string
		for _, a := range addrs {
			if a = a.Unmap(); network == "tcp4" && !a.Is4() || network == "tcp6" && !a.Is6() {
				continue
			}
			targets = append(targets, netip.AddrPortFrom(a, uint16(port)).String())
		}
		if len(targets) == 0 {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var errs []error
		for i, t := range targets {
			actx, cancel := ctx, context.CancelFunc(func() {})
			if i < len(targets)-1 {
				actx, cancel = context.WithTimeout(ctx, policyDialAttempt)
			}
			c, err := dial(actx, network, t)
			cancel()
			if err == nil {
				return c, nil
			}
			if errs = append(errs, err); ctx.Err() != nil {
				break
			}
		}
		return nil, errors.Join(errs...)
	}
}

// Decision is how to deliver to one domain.
type Decision struct {
	// Domain is the recipient domain (the MTA-STS policy domain),
	// lowercase A-labels.
	Domain string
	// MXSecure reports whether the MX RRset (or its authenticated
	// absence, for an implicit MX) was DNSSEC-secure. For a relay it is
	// true: the name came from local configuration.
	MXSecure bool
	// MXCNAME is the CNAME expansion of Domain followed by the MX lookup,
	// or "" (a DANE-TA reference identifier, RFC 7672 3.2.2).
	MXCNAME string
	// ImplicitMX is true when the domain has no MX records and is its own
	// mail host (RFC 5321 5.1).
	ImplicitMX bool
	// Relay is true for decisions made by EvaluateRelay.
	Relay bool
	// Hosts are every MX host considered, in delivery order, including
	// those that must not be used (Err set), for reporting.
	Hosts []*Host
	// STS is the MTA-STS outcome, or nil when MTA-STS was not consulted.
	STS *mtasts.Result
	// Override is the operator override applied, or nil.
	Override *Override

	rptMu   sync.Mutex           // guards rptDone
	rptDone []*tlsrpt.Aggregator // where the MTA-STS policy failure was counted
}

// Deliverable returns the hosts an MTA may try, in order. Empty means
// defer (or, after Recheck, bounce).
func (d *Decision) Deliverable() []*Host {
	var out []*Host
	for _, h := range d.Hosts {
		if h.Err == nil {
			out = append(out, h)
		}
	}
	return out
}

// STSPolicy returns the MTA-STS policy in effect (enforce or testing), or
// nil.
func (d *Decision) STSPolicy() *mtasts.Policy {
	if d.STS == nil {
		return nil
	}
	return d.STS.Policy
}

// Evaluate decides how to deliver mail to domain. It looks up the MX
// RRset and the MTA-STS policy concurrently, then the DANE policy of every
// MX host concurrently (the TLSA RRset with the addresses for hosts in a
// zone known to be signed: a cold DANE domain whose MX hosts lie in its
// own signed zone takes two round trips), and combines them:
//
//   - A DNS failure of the MX lookup is an error (defer). NXDOMAIN
//     matches ErrNoSuchDomain and a null MX ErrNullMX (both permanent); NODATA
//     makes the domain its own MX (RFC 5321 5.1).
//   - With a DNSSEC-secure MX RRset, a host with usable TLSA records is
//     decided by DANE alone; MTA-STS never overrides a DANE failure (RFC
//     8461 2).
//   - With an insecure MX RRset, MTA-STS enforce MX matching still applies
//     to every host (an attacker can spoof an insecure MX to a host in his
//     own signed zone), and DANE then replaces only the certificate check;
//     such sessions are Trusted, never Verified (RFC 7672 2.2.1).
//   - MTA-STS enforce marks hosts not matching the policy as unusable.
//   - A host whose address or TLSA lookup failed is unusable (RFC 7672
//     2.1.2), and so is an MX target that is not a host name: one that
//     looks like an address ("192.0.2.44.") is never dialled as one.
//
// The returned error is a *Error (KindMXLookup, KindInvalidDomain, or
// KindCanceled when ctx ended before the MTA-STS lookup completed: a
// decision without the policy would be weaker than the domain's),
// KindNullMX (errors.Is ErrNullMX) or KindNoSuchDomain (errors.Is
// ErrNoSuchDomain). A Decision with no deliverable host is
// not an error: the MTA defers.
func (e *Evaluator) Evaluate(ctx context.Context, domain string) (*Decision, error) {
	e.init()
	d, err := dnsname.Mail.Normalize(domain)
	if err != nil {
		return nil, &Error{Kind: KindInvalidDomain, Domain: domain, Err: err}
	}
	if p, ok := e.res.(peeker); ok {
		// Warm path: with every MX and DANE answer cached, nothing can
		// wait for the network, and the goroutines that overlap lookups
		// would cost more than the lookups. A miss starts over on the
		// cold path; so far only memory was read.
		if dec, err := e.evaluate(ctx, d, cachedOnly{p}); !errors.Is(err, errNotCached) {
			return dec, err
		}
	}
	return e.evaluate(ctx, d, e.res)
}

// evaluate is Evaluate for a normalised domain with the MX and DANE
// lookups through r; with a cachedOnly r it returns errNotCached at the
// first missing answer.
func (e *Evaluator) evaluate(ctx context.Context, d string, r resolver.Resolver) (*Decision, error) {
	_, warm := r.(cachedOnly)
	dec := &Decision{Domain: d}
	ov, hasOv := e.over[d]
	if hasOv {
		dec.Override = &ov
	}

	// MTA-STS starts with the MX lookup: its TXT query does not depend on
	// it (RFC 8461 5 does not order them).
	stsDone := func() error { return nil }
	if !warm {
		stsDone = e.startSTS(ctx, dec, hasOv, false)
	}

	mxs, ans, err := resolver.LookupMX(ctx, r, d)
	if errors.Is(err, errNotCached) {
		return nil, err
	}
	if err != nil {
		stsDone()
		return nil, &Error{Kind: KindMXLookup, Domain: d, Err: err}
	}
	dec.MXSecure = ans.Security == resolver.Secure
	if n := len(ans.CNAMEs); n > 0 {
		dec.MXCNAME = strings.TrimSuffix(ans.CNAMEs[n-1], ".")
	}
	switch {
	case ans.NXDomain:
		stsDone()
		return nil, &Error{Kind: KindNoSuchDomain, Domain: d}
	case len(mxs) == 1 && mxs[0].Mx == ".":
		stsDone()
		return nil, &Error{Kind: KindNullMX, Domain: d}
	case len(mxs) == 0:
		dec.ImplicitMX = true
		dec.Hosts = []*Host{{Name: d}}
	default:
		dec.Hosts = e.sortMX(d, mxs)
	}
	e.evaluateHosts(ctx, dec, 25, r, warm)
	if warm {
		for _, h := range dec.Hosts {
			if errors.Is(h.Err, errNotCached) {
				return nil, errNotCached
			}
		}
		stsDone = e.startSTS(ctx, dec, hasOv, true)
	}
	if err := stsDone(); err != nil {
		return nil, err
	}
	e.combine(dec, ov, hasOv)
	return dec, nil
}

// peeker is a resolver that can answer from its cache alone
// (resolver.Cache).
type peeker interface {
	Peek(name string, qtype uint16) (*resolver.Answer, bool, error)
}

// errNotCached is a cachedOnly miss; it never leaves Evaluate.
var errNotCached = errors.New("smtptls: answer not cached")

// cachedOnly is a Resolver that answers from a cache's unexpired entries
// (cached failures included) and never asks upstream: a miss is
// errNotCached. It is a peeker too, so that resolver.LookupAddrs takes its
// no-goroutine path.
type cachedOnly struct{ p peeker }

func (c cachedOnly) Lookup(_ context.Context, name string, qtype uint16) (*resolver.Answer, error) {
	a, ok, err := c.p.Peek(name, qtype)
	if !ok {
		return nil, errNotCached
	}
	return a, err
}

func (c cachedOnly) Peek(name string, qtype uint16) (*resolver.Answer, bool, error) {
	return c.p.Peek(name, qtype)
}

// EvaluateRelay decides how to deliver to a relay or smart host given by
// name and port, with the same logic as Evaluate and no MX lookup: the
// host's own domain is the MTA-STS policy domain (RFC 8461 3.4, never a
// parent domain), its TLSA records are at _port._tcp.host, and the name
// counts as secure since it comes from local configuration (as Postfix
// treats a configured [relayhost]). A port other than 25 usually has no
// MTA-STS meaning; the policy is still consulted, as RFC 8461 3.4 says.
func (e *Evaluator) EvaluateRelay(ctx context.Context, host string, port int) (*Decision, error) {
	e.init()
	if port <= 0 || port > 65535 {
		return nil, &Error{Kind: KindInvalidDomain, Domain: host, Reason: "port out of range"}
	}
	d, err := dnsname.Mail.Normalize(host)
	if err != nil {
		return nil, &Error{Kind: KindInvalidDomain, Domain: host, Err: err}
	}
	dec := &Decision{Domain: d, MXSecure: true, Relay: true, Hosts: []*Host{{Name: d}}}
	ov, hasOv := e.over[d]
	if hasOv {
		dec.Override = &ov
	}
	stsDone := e.startSTS(ctx, dec, hasOv, false)
	e.evaluateHosts(ctx, dec, port, e.res, false)
	if err := stsDone(); err != nil {
		return nil, err
	}
	e.combine(dec, ov, hasOv)
	return dec, nil
}

// Recheck looks for a new MTA-STS policy for domain, bypassing the cache
// and the fetch back-off (mtasts.Client.Recheck: the policy host is asked
// again, even when an ordinary lookup's fetch is in flight), then
// evaluates again. RFC 8461 5 asks for it before an enforce failure
// becomes a permanent bounce. Where Evaluate does not consult MTA-STS
// (DisableSTS, or an operator override for the domain), Recheck does not
// either and is Evaluate.
func (e *Evaluator) Recheck(ctx context.Context, domain string) (*Decision, error) {
	e.init()
	if e.sts != nil && !e.DisableSTS {
		// An invalid name skips the fetch: Evaluate reports it.
		d, err := dnsname.Mail.Normalize(domain)
		if _, hasOv := e.over[d]; err == nil && !hasOv {
			if _, err := e.sts.Recheck(ctx, domain); err != nil && ctx.Err() != nil {
				return nil, err
			}
		}
	}
	return e.Evaluate(ctx, domain)
}

// startSTS starts the MTA-STS lookup when it applies (inline: when the
// returned function is called, on the caller's goroutine) and returns a
// function that waits for it and stores the result in dec, or returns a
// KindCanceled *Error when the lookup could not complete.
func (e *Evaluator) startSTS(ctx context.Context, dec *Decision, hasOv, inline bool) func() error {
	// No operator override consults MTA-STS: the operator has decided.
	if e.sts == nil || e.DisableSTS || hasOv {
		return func() error { return nil }
	}
	type result struct {
		r   *mtasts.Result
		err error
	}
	lookup := func() result {
		r, err := e.sts.Lookup(ctx, dec.Domain)
		return result{r, err}
	}
	wait := lookup
	if !inline {
		done := make(chan result, 1)
		go func() { done <- lookup() }()
		wait = func() result { return <-done }
	}
	return func() error {
		res := wait()
		if me, ok := errors.AsType[*mtasts.Error](res.err); ok && me.Kind == mtasts.KindInvalidDomain {
			// A name MTA-STS cannot apply to (not a host name, RFC 8461
			// 3.4): no policy can exist for it.
			return nil
		}
		if res.err != nil {
			// Otherwise Lookup fails only when ctx ended: the policy, even
			// a cached one, is unknown. A decision without it would be
			// opportunistic where enforce applies, so there is none
			// (invariant 1): the caller defers.
			return &Error{Kind: KindCanceled, Domain: dec.Domain, Reason: "MTA-STS lookup did not complete", Err: res.err}
		}
		// The policy's lint warnings (dec.STS.Warnings) are not logged
		// here, once per message: the MTA-STS client logs them when it
		// fetches the policy.
		dec.STS = res.r
		return nil
	}
}

// sortMX orders MX hosts by preference, shuffling hosts of equal
// preference (RFC 5321 5.1), and keeps at most MaxMX. A target that is
// not a host name is kept, with Err set (badMXTarget).
func (e *Evaluator) sortMX(domain string, mxs []*dns.MX) []*Host {
	hosts := make([]*Host, 0, len(mxs))
	for _, mx := range mxs {
		h := &Host{Name: strings.TrimSuffix(mx.Mx, "."), Preference: mx.Preference}
		if n, err := dnsname.Mail.Normalize(h.Name); err == nil {
			h.Name = n
		} else {
			h.Name = strings.ToLower(h.Name)
			h.Err = badMXTarget(domain, mx.Mx, err)
		}
		hosts = append(hosts, h)
	}
	rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
	slices.SortStableFunc(hosts, func(a, b *Host) int { return cmp.Compare(a.Preference, b.Preference) })
	max := e.MaxMX
	if max <= 0 {
		max = DefaultMaxMX
	}
	if len(hosts) > max {
		hosts = hosts[:max]
	}
	return hosts
}

// evaluateHosts runs the DANE lookup of every host through r
// concurrently, the last host's on the calling goroutine; inline (the warm
// path) runs them all there. On the cold path a host whose zone is known
// to be signed has its TLSA RRset asked for with its addresses
// (earlyTLSA).
func (e *Evaluator) evaluateHosts(ctx context.Context, dec *Decision, port int, r resolver.Resolver, inline bool) {
	daneOn := !e.DisableDANE && (dec.Override == nil || dec.Override.Mode.usesDANE())
	lookup := func(h *Host) {
		if h.Err != nil {
			return // not a host name (badMXTarget): nothing to look up
		}
		if !daneOn {
			e.lookupAddrsOnly(ctx, r, h)
			return
		}
		o := dane.Options{DigestPreference: e.DigestPreference, EarlyTLSA: !inline && e.earlyTLSA(dec, h.Name, r)}
		p, err := dane.LookupWith(ctx, r, h.Name, port, o)
		if err != nil {
			h.Err = hostLookupError(dec.Domain, h.Name, err)
			return
		}
		if !inline && p.AddrSecurity == resolver.Secure {
			e.signed.add(h.Name)
		}
		h.DANE = p
		h.Addrs = p.Addrs
		h.AddrSecurity = p.AddrSecurity
	}
	var wg sync.WaitGroup
	for i, h := range dec.Hosts {
		h.dec = dec
		h.ev = e
		h.port = port
		if inline || i == len(dec.Hosts)-1 {
			lookup(h)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lookup(h)
		}()
	}
	wg.Wait()
}

// lookupAddrsOnly resolves a host's addresses when DANE is off.
func (e *Evaluator) lookupAddrsOnly(ctx context.Context, r resolver.Resolver, h *Host) {
	addrs, ans, err := resolver.LookupAddrs(ctx, r, h.Name)
	switch {
	case err != nil:
		h.Err = &Error{Kind: KindHostLookup, Domain: h.dec.Domain, Host: h.Name, Err: err}
	case len(addrs) == 0:
		h.Err = &Error{Kind: KindHostLookup, Domain: h.dec.Domain, Host: h.Name, Reason: "no address"}
	default:
		h.Addrs, h.AddrSecurity = addrs, ans.Security
	}
}

// badMXTarget is the error of an MX host whose target is not a host name.
// An MX target is a domain name (RFC 1035 3.3.9, RFC 5321 5.1), never an
// address: "192.0.2.44." is a name of four labels whose last is numeric,
// which no host name has (RFC 1123 2.1), so it is refused rather than
// dialled as a literal, and DANE never applies to it (RFC 7672 2.2).
// Postfix does the same: it warns "numeric domain name in resource data
// of MX record" and does not use the record. The host stays in the
// Decision with this error so that the MTA sees why; the other MX hosts
// are used, and with none left the MTA defers (the domain may fix its
// DNS). It is not a TLS failure: no TLS-RPT result.
func badMXTarget(domain, target string, err error) *Error {
	e := &Error{Kind: KindHostLookup, Domain: domain, Host: strings.ToLower(strings.TrimSuffix(target, "."))}
	if errors.Is(err, dnsname.ErrAddress) {
		e.Reason = "numeric domain name in resource data of MX record: " + strconv.Quote(target) + " is a name, never an address (RFC 1035 3.3.9)"
	} else {
		e.Reason, e.Err = "MX target is not a host name", err
	}
	return e
}

// hostLookupError classifies a failed dane.Lookup: a TLSA (or CNAME)
// lookup failure is reported to TLS-RPT as dnssec-invalid when validation
// failed, an address failure is not a TLS failure at all.
func hostLookupError(domain, host string, err error) *Error {
	he := &Error{Kind: KindHostLookup, Domain: domain, Host: host, Err: err}
	var de *dane.Error
	if errors.As(err, &de) && (de.Kind == dane.KindTLSA || de.Kind == dane.KindCNAME) {
		he.Result = tlsrpt.DNSSECInvalid
		he.Reason = "the host must not be used (RFC 7672 2.1.2)" // dane says which lookup
	}
	return he
}

// combine sets each host's level from its DANE policy, the MTA-STS policy
// and the operator override.
func (e *Evaluator) combine(dec *Decision, ov Override, hasOv bool) {
	// Result.Policy is nil for a policy of mode none (mtasts.Result).
	sts := dec.STSPolicy()
	for _, h := range dec.Hosts {
		if h.Err != nil {
			continue
		}
		if hasOv {
			e.applyOverride(dec, h, ov)
			continue
		}
		h.Level = decideLevel(dec, h, sts)
		if sts == nil || sts.Mode != mtasts.Enforce || sts.Match(h.Name) {
			continue
		}
		// RFC 8461 4.1 and 5: under enforce a host not in the policy is
		// unusable, unless usable DANE from a secure MX RRset vouches
		// for it: then its name came from signed data (RFC 8461 2).
		if !(h.Level == DANE && dec.MXSecure) {
			h.Err = &Error{Kind: KindNotInPolicy, Domain: dec.Domain, Host: h.Name,
				Result: tlsrpt.ValidationFailure, Reason: "MX host does not match the MTA-STS policy (RFC 8461 4.1)"}
			h.Excluded = true
		}
	}
}

// decideLevel is the precedence of DANE and MTA-STS for one host whose
// lookups succeeded. sts is the policy in effect (enforce or testing), or
// nil.
func decideLevel(dec *Decision, h *Host, sts *mtasts.Policy) Level {
	daneLevel := dane.None
	if h.DANE != nil {
		daneLevel = h.DANE.Level
	}
	enforce := sts != nil && sts.Mode == mtasts.Enforce
	switch {
	case daneLevel == dane.Authenticate:
		// Usable DANE decides the certificate check, whatever MTA-STS
		// says (RFC 8461 2). With an insecure MX, MTA-STS enforce still
		// decides which hosts may be used (checked by the caller).
		return DANE
	case daneLevel == dane.Encrypt && enforce:
		// Both demand TLS; MTA-STS adds authentication. Taking the
		// stronger never lets MTA-STS rescue a DANE failure.
		return STSEnforce
	case daneLevel == dane.Encrypt:
		return Encrypt
	case enforce:
		return STSEnforce
	case sts != nil:
		return STSTesting
	}
	return Opportunistic
}
