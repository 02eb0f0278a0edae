package mtasts

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"

	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/tlsrpt"
)

// FetchBackoff is how long a Client waits after a failed fetch before it
// fetches the same policy id of the same domain again (RFC 8461 3.3: at
// least five minutes). Recheck ignores it.
const FetchBackoff = 5 * time.Minute

// DefaultPruneAfter is the PruneAfter of a Client whose field is zero: as
// long as the largest max_age, so pruning never removes a policy sooner
// than its publisher could have made it last.
const DefaultPruneAfter = MaxMaxAge

// putStripes is the number of locks serialising cache writes per domain.
const putStripes = 32

// Client finds the MTA-STS policy that applies to a domain: it looks up
// the TXT record, fetches, caches and refreshes policies as RFC 8461
// sections 3, 5 and 10 require. Its zero value is ready to use; set fields
// before the first use and do not change them afterwards. A Client is safe
// for concurrent use.
type Client struct {
	// Resolver looks up the _mta-sts TXT records. nil means
	// &resolver.Stub{} (the system's resolv.conf). MTA-STS does not need
	// DNSSEC: its trust comes from the policy host's WebPKI certificate.
	Resolver resolver.Resolver

	// HTTPClient fetches policies. Whatever it is configured to do,
	// redirects are refused and the certificate must be WebPKI-valid for
	// mta-sts.<domain> (see Fetch). nil means a private client with the
	// system roots, never http.DefaultClient.
	HTTPClient *http.Client

	// Cache keeps policies across lookups. nil means a MemoryCache of
	// DefaultMemoryCacheBytes, created on first use: policies then do
	// not survive a restart, so after one the first message to each
	// domain is protected only if its policy can be fetched (trust on
	// first use again). Use a DirCache or a shared cache in production.
	Cache Cache

	// Now returns the current time; it decides expiry, back-off and
	// pruning, and is the Now of the default MemoryCache. nil means
	// time.Now. Network timeouts always use the real clock, and so does
	// certificate validity unless HTTPClient's tls.Config sets Time.
	Now func() time.Time

	// Logger receives fetch failures, policy warnings, cache errors and
	// refresh results. nil means slog.Default().
	Logger *slog.Logger

	// FetchTimeout bounds one policy fetch. Zero means
	// DefaultFetchTimeout (one minute, RFC 8461 3.3); a longer budget
	// lets slow or hostile policy hosts hold connections longer.
	FetchTimeout time.Duration

	// ExtraMediaTypes lists media types accepted besides text/plain for
	// policy bodies (for example "application/octet-stream", which some
	// misconfigured hosts send). nil means text/plain only, as RFC 8461
	// 3.2 recommends: the check guards against hosts where untrusted users
	// can place other content at the well-known path.
	ExtraMediaTypes []string

	// PruneAfter is how long an entry may go unused before Refresh deletes
	// it. Zero means DefaultPruneAfter; a negative value disables pruning
	// (the cache then grows with every domain ever delivered to). Pruning
	// a live policy sooner than its max_age returns that domain to trust
	// on first use.
	PruneAfter time.Duration

	// RefreshConcurrency bounds the fetches Refresh runs at once. Zero
	// means 4.
	RefreshConcurrency int

	// PrefetchPolicyHost looks up the policy host's addresses (A and
	// AAAA of mta-sts.<domain>, with Resolver) at the same time as the
	// _mta-sts TXT record, whenever a fetch may follow (no unexpired
	// policy in the decoded layer, or Recheck) and the TXT lookup will
	// take a round trip (its answer is not in Resolver's cache, when
	// Resolver is a resolver.Cache), so that the fetch does not wait one
	// more round trip for them. They are used only when a
	// TXT record exists and a fetch follows: the fetch hands the lookup
	// to HTTPClient's dialer through the request's context, and the
	// dialer must take the addresses with PolicyHostAddrs, or the lookup
	// is wasted. Otherwise the lookup is abandoned (cancelled, never
	// waited for). The cost is two queries per lookup that may fetch,
	// for domains without MTA-STS too; a resolver.Cache as Resolver
	// answers repeats from memory. The Evaluator's default client sets
	// it and dials the addresses. False, the zero value, leaves the
	// policy host to the dialer.
	PrefetchPolicyHost bool

	// DecodedBytes bounds the memory of the Client's decoded layer: the
	// parsed policies and fetch back-off of the domains looked up most
	// recently, kept in front of Cache so that a lookup costs neither a
	// Cache read nor a parse. Zero means DefaultDecodedBytes, which holds
	// more typical policies than a MemoryCache of DefaultMemoryCacheBytes
	// (about 950 bytes each, and 200 for a domain without a policy:
	// BENCHMARKS.md); with a DirCache or a shared cache, size it for the
	// domains delivered to within a day. A domain dropped from the layer
	// is read back from Cache at its next lookup.
	DecodedBytes int64

	initOnce sync.Once
	cache    Cache
	httpc    *http.Client
	res      resolver.Resolver
	log      *slog.Logger
	flight   singleflight.Group

	// putMu serialises the cache writes of a domain (striped by domain).
	putMu [putStripes]sync.Mutex

	mu sync.Mutex // guards states, lru and decodedBytes, and the fields of every domainState
	// states, seed and lru are the decoded layer (decoded.go).
	states       map[uint64]*domainState
	seed         maphash.Seed
	lru          domainState // sentinel: lru.next is the most recently used
	decodedBytes int64
}

// Source says where a Result's policy came from.
type Source uint8

const (
	// SourceNone: no policy applies.
	SourceNone Source = iota
	// SourceFetch: fetched during this lookup.
	SourceFetch
	// SourceCache: a cached policy that has not expired.
	SourceCache
)

// String returns "none", "fetch" or "cache".
func (s Source) String() string {
	switch s {
	case SourceFetch:
		return "fetch"
	case SourceCache:
		return "cache"
	}
	return "none"
}

// RecordStatus is the outcome of the TXT lookup.
type RecordStatus uint8

const (
	// RecordFound: exactly one valid STS record.
	RecordFound RecordStatus = iota + 1
	// RecordAbsent: no STS record (NXDOMAIN, NODATA, only other TXT).
	RecordAbsent
	// RecordInvalid: several STS records, or one with a syntax error.
	RecordInvalid
	// RecordLookupFailed: the DNS lookup could not be completed.
	RecordLookupFailed
)

// String returns a short lowercase name.
func (s RecordStatus) String() string {
	switch s {
	case RecordFound:
		return "found"
	case RecordAbsent:
		return "absent"
	case RecordInvalid:
		return "invalid"
	case RecordLookupFailed:
		return "lookup failed"
	}
	return "unknown"
}

// Result is the outcome of Lookup. Its Policy and Record are shared with
// the Client's cache: treat them as read-only.
type Result struct {
	// Domain is the policy domain, lowercase A-labels.
	Domain string
	// Policy is the policy in effect, or nil when none applies (no
	// policy known, or the known policy has mode none).
	Policy *Policy
	// Mode is the mode of the known policy (None included), or "" when
	// no policy is known.
	Mode Mode
	// Source says where the known policy came from.
	Source Source
	// ID is the record id the known policy was fetched under.
	ID string
	// Fetched and Expires bound the known policy's life (Expires =
	// Fetched + max_age).
	Fetched, Expires time.Time
	// Warnings are Policy.Lint findings for the known policy.
	Warnings []Warning

	// Record is the TXT record found, or nil.
	Record *Record
	// RecordStatus and RecordError describe the TXT lookup; RecordError
	// is an *Error (KindNoRecord, KindMultipleRecords, KindRecordSyntax or
	// KindDNS) when RecordStatus is not RecordFound.
	RecordStatus RecordStatus
	RecordError  error

	// FetchError is the *Error of a fetch that failed during this lookup,
	// or of the last failed fetch while the back-off holds (then
	// BackoffUntil is set). A cached policy may still apply: RFC 8461 5
	// says failures never evict it. Its Result is what TLS-RPT
	// reports.
	FetchError error
	// BackoffUntil is non-zero when a fetch was skipped because one failed
	// less than FetchBackoff ago.
	BackoffUntil time.Time
}

func (c *Client) init() {
	c.initOnce.Do(func() {
		c.cache = c.Cache
		if c.cache == nil {
			mc := NewMemoryCache(0)
			mc.Now = c.Now
			mc.Logger = c.Logger
			c.cache = mc
		}
		c.httpc = c.HTTPClient
		if c.httpc == nil {
			c.httpc = newPrivateHTTPClient()
		}
		c.res = c.Resolver
		if c.res == nil {
			c.res = &resolver.Stub{}
		}
		c.log = c.Logger
		if c.log == nil {
			c.log = slog.Default()
		}
		c.states = make(map[uint64]*domainState)
		c.seed = maphash.MakeSeed()
		c.lru.prev, c.lru.next = &c.lru, &c.lru
	})
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Lookup returns the policy that applies to domain now, following RFC 8461
// section 5:
//
//   - The TXT record is looked up first. When its id equals the cached
//     policy's and that policy has not expired, the cached policy applies.
//   - A new id (or no unexpired cached policy) triggers a fetch; a valid
//     policy replaces the cached one (RFC 8461 10.3). A failed fetch never
//     evicts a cached policy, which keeps applying until it expires, and
//     the same id is not fetched again for FetchBackoff.
//   - A missing, invalid or unresolvable TXT record does not delete the
//     cached policy: it keeps applying until it expires.
//   - A policy of mode none is cached and applied as no policy.
//   - Only one fetch per domain is in flight; concurrent lookups share it
//     (a Recheck never joins an ordinary lookup's fetch: see Recheck).
//
// domain may be in any case, with a trailing dot or U-labels. DNS and
// fetch failures are outcomes in the Result, never errors: with no cached
// policy the sender delivers as if the domain had no policy. Lookup
// returns an error (*Error) only when ctx ends (KindCanceled, which
// unwraps to ctx.Err()) or domain is not a domain name (KindInvalidDomain:
// address literals have no policy, RFC 8461 3.4).
func (c *Client) Lookup(ctx context.Context, domain string) (*Result, error) {
	return c.lookup(ctx, domain, false)
}

// Recheck is Lookup for a message about to fail permanently because of
// an enforce policy: RFC 8461 5 requires the sender to check for an updated
// policy first. It ignores the cached policy's freshness and the fetch
// back-off and fetches the policy whenever a TXT record exists (even with
// an unchanged id): every Recheck reaches the policy host, sharing a fetch
// only with other Rechecks (and Refresh) in flight for the domain, never
// with an ordinary Lookup's. A failed fetch still leaves the cached
// policy in effect.
func (c *Client) Recheck(ctx context.Context, domain string) (*Result, error) {
	return c.lookup(ctx, domain, true)
}

func (c *Client) lookup(ctx context.Context, domain string, force bool) (*Result, error) {
	d, err := normalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	c.init()
	if err := ctx.Err(); err != nil {
		return nil, &Error{Kind: KindCanceled, Domain: d, Err: err}
	}
	st := c.state(ctx, d)
	var host *policyHost
	txtName := recordName(d)
	if c.PrefetchPolicyHost && (force || !c.live(st)) && !c.cached(txtName, dns.TypeTXT) {
		// RFC 8461 3.3 fetches from mta-sts.<domain>: start its address
		// lookup now rather than after the TXT record says to fetch.
		host = c.startPolicyHost(ctx, d)
		defer host.abandon()
	}
	res := &Result{Domain: d}
	rec, rerr := lookupRecordAt(ctx, c.res, d, txtName)
	if err := ctx.Err(); err != nil {
		return nil, &Error{Kind: KindCanceled, Domain: d, Err: err}
	}
	res.Record = rec
	if rerr != nil {
		res.RecordError = rerr
		var e *Error
		switch {
		case !errors.As(rerr, &e) || e.Kind == KindDNS:
			res.RecordStatus = RecordLookupFailed
		case e.Kind == KindNoRecord:
			res.RecordStatus = RecordAbsent
		default:
			res.RecordStatus = RecordInvalid
		}
	} else {
		res.RecordStatus = RecordFound
	}

	now := c.now()
	c.mu.Lock()
	cached := st.entry
	failID, failAt, failErr := st.failID, st.failAt, st.failErr
	c.mu.Unlock()

	if rec == nil || (!force && failID == rec.ID && now.Before(failAt.Add(FetchBackoff))) {
		// No fetch will happen: when the decoded copy is missing or
		// expired, look again in the Cache, which another MTA sharing it
		// may have refreshed (at most once a minute per domain, so that
		// domains without MTA-STS do not cost a Cache read per lookup).
		if cached == nil || !now.Before(cached.expires) {
			cached = c.reloadStale(ctx, st, d, now)
		}
	}
	if rec == nil {
		// RFC 8461 5: without a usable record, an unexpired cached policy
		// still applies; it is never deleted because of DNS alone.
		c.apply(res, cached, SourceCache, now)
		c.touch(ctx, cached, now)
		return res, nil
	}
	if !force && cached != nil && cached.id == rec.ID && now.Before(cached.expires) {
		c.apply(res, cached, SourceCache, now)
		c.touch(ctx, cached, now)
		return res, nil
	}
	if !force && failID == rec.ID && now.Before(failAt.Add(FetchBackoff)) {
		res.FetchError = failErr
		res.BackoffUntil = failAt.Add(FetchBackoff)
		c.apply(res, cached, SourceCache, now)
		return res, nil
	}

	fctx := ctx
	if host != nil {
		fctx = context.WithValue(ctx, policyHostKey{}, host)
	}
	fr, err := c.fetchShared(fctx, d, fetchRequest{id: rec.ID, force: force})
	if err != nil {
		return nil, err
	}
	now = c.now()
	if fr.err != nil {
		res.FetchError = fr.err
		c.mu.Lock()
		cached = st.entry
		c.mu.Unlock()
		c.apply(res, cached, SourceCache, now)
		return res, nil
	}
	c.apply(res, fr.entry, fr.source, time.Time{})
	return res, nil
}

// live reports whether the decoded layer holds an unexpired policy for
// st's domain, which a lookup will most likely apply without a fetch.
func (c *Client) live(st *domainState) bool {
	c.mu.Lock()
	e := st.entry
	c.mu.Unlock()
	return e != nil && c.now().Before(e.expires)
}

// apply fills res from e when e is live at now (a zero now skips the
// expiry check: a freshly fetched policy applies even with max_age 0).
func (c *Client) apply(res *Result, e *entry, src Source, now time.Time) {
	if e == nil || (!now.IsZero() && !now.Before(e.expires)) {
		return
	}
	res.Source = src
	res.Mode = e.policy.Mode
	res.ID = e.id
	res.Fetched = e.fetched
	res.Expires = e.expires
	res.Warnings = e.warnings
	if e.policy.Mode != None {
		res.Policy = e.policy
	}
}

// flightResult is what one shared fetch hands to every waiting lookup.
type flightResult struct {
	entry  *entry
	source Source
	err    error
}

// fetchRequest says what a shared fetch is for.
type fetchRequest struct {
	id string
	// force skips the cache and back-off checks (Recheck, Refresh).
	force bool
	// used is the last-used time to keep (Refresh is not a use); zero
	// means now.
	used time.Time
}

// fetchShared runs one fetch per domain at a time (golang.org/x/sync
// singleflight), and one forced fetch. Forced and ordinary fetches are
// separate flights: an ordinary fetch may answer from the Cache or the
// back-off without reaching the network, so a Recheck that joined one
// could miss the updated policy RFC 8461 5 asks it to look for. The fetch
// does not inherit ctx's cancellation, so a caller that gives up does not
// fail the others; each caller waits only as long as its own ctx allows.
func (c *Client) fetchShared(ctx context.Context, d string, req fetchRequest) (*flightResult, error) {
	key := d
	if req.force {
		// A domain name never contains a space.
		key += " force"
	}
	ch := c.flight.DoChan(key, func() (any, error) {
		return c.fetchAndStore(context.WithoutCancel(ctx), d, req), nil
	})
	select {
	case r := <-ch:
		return r.Val.(*flightResult), nil
	case <-ctx.Done():
		return nil, &Error{Kind: KindCanceled, Domain: d, Err: ctx.Err()}
	}
}

func (c *Client) fetchAndStore(ctx context.Context, d string, req fetchRequest) *flightResult {
	st := c.state(ctx, d)
	if !req.force {
		// Another lookup (or, with a shared cache, another MTA) may have
		// fetched this id, or failed to, since the caller looked.
		now := c.now()
		if e := c.reload(ctx, d); e != nil && e.id == req.id && now.Before(e.expires) {
			return &flightResult{entry: e, source: SourceCache}
		}
		c.mu.Lock()
		failID, failAt, failErr := st.failID, st.failAt, st.failErr
		c.mu.Unlock()
		if failID == req.id && now.Before(failAt.Add(FetchBackoff)) {
			return &flightResult{err: failErr}
		}
	}
	p, body, err := fetch(ctx, c.httpc, d, fetchOptions{timeout: c.FetchTimeout, mediaTypes: c.ExtraMediaTypes})
	now := c.now()
	if err != nil {
		c.log.Warn("mtasts: policy fetch failed", slog.String("domain", d), slog.String("id", req.id), slog.Any("error", err))
		e := &Error{}
		errors.As(err, &e)
		c.mu.Lock()
		st.failID, st.failAt, st.failErr = req.id, now, err
		cached := st.entry
		c.chargeLocked(st)
		c.mu.Unlock()
		if cached != nil && now.Before(cached.expires) {
			// Persist the back-off with the entry so that it survives a
			// restart; the cached policy itself stays as it was.
			ne := *cached
			ne.failAt, ne.failID, ne.failType, ne.failKind = now, req.id, e.Result, e.Kind
			c.putIf(ctx, &ne, cached)
		}
		return &flightResult{err: err}
	}
	used := req.used
	if used.IsZero() {
		used = now
	}
	// The body is cloned to its length: the decoded layer keeps it, and
	// the buffer it was read into is usually several times larger.
	e := &entry{domain: d, id: req.id, fetched: now, expires: now.Add(p.MaxAge), used: used,
		body: bytes.Clone(body), policy: p, warnings: p.Lint(d)}
	for _, w := range e.warnings {
		c.log.Warn("mtasts: policy warning", slog.String("domain", d), slog.String("warning", w.String()))
	}
	c.mu.Lock()
	st.failID, st.failAt, st.failErr = "", time.Time{}, nil
	c.chargeLocked(st)
	c.mu.Unlock()
	c.put(ctx, e)
	return &flightResult{entry: e, source: SourceFetch}
}

// put stores e in the Cache and in the decoded layer, replacing whatever
// is there. A Cache error is logged: the policy still applies from memory.
func (c *Client) put(ctx context.Context, e *entry) {
	c.store(ctx, e, nil, false)
}

// putIf is put only while the decoded layer still holds old: bookkeeping
// writes (last use, back-off) must never overwrite a newer policy.
func (c *Client) putIf(ctx context.Context, e, old *entry) {
	c.store(ctx, e, old, true)
}

func (c *Client) store(ctx context.Context, e, old *entry, conditional bool) {
	// Writes of one domain are serialised so that the check and the
	// write below are atomic with respect to each other.
	mu := &c.putMu[stripe(e.domain)]
	mu.Lock()
	defer mu.Unlock()
	st := c.state(ctx, e.domain)
	if conditional {
		c.mu.Lock()
		cur := st.entry
		c.mu.Unlock()
		if cur != old {
			return
		}
	}
	if err := c.cache.Put(ctx, e.domain, e.marshal()); err != nil {
		c.log.Error("mtasts: cache put failed", slog.String("domain", e.domain), slog.Any("error", err))
	}
	c.mu.Lock()
	st.entry = e
	c.chargeLocked(st)
	c.mu.Unlock()
}

// stripe picks one of the putMu locks for a domain (FNV-1a).
func stripe(d string) int {
	h := uint32(2166136261)
	for i := 0; i < len(d); i++ {
		h = (h ^ uint32(d[i])) * 16777619
	}
	return int(h % putStripes)
}

// touch records that e was used, writing it back at most once per
// usedGranularity so that a cache hit rarely costs a write.
func (c *Client) touch(ctx context.Context, e *entry, now time.Time) {
	if e == nil || now.Sub(e.used) < c.usedGranularity() {
		return
	}
	ne := *e
	ne.used = now
	c.putIf(ctx, &ne, e)
}

func (c *Client) usedGranularity() time.Duration {
	g := 24 * time.Hour
	if p := c.pruneAfter(); p > 0 && p/8 < g {
		g = p / 8
	}
	return g
}

func (c *Client) pruneAfter() time.Duration {
	switch {
	case c.PruneAfter == 0:
		return DefaultPruneAfter
	case c.PruneAfter < 0:
		return -1
	}
	return c.PruneAfter
}

// staleReload is how often a domain whose decoded entry is missing or
// expired is looked up again in the Cache when no fetch will replace it.
const staleReload = time.Minute

// reloadStale is reload, rate-limited per domain by staleReload.
func (c *Client) reloadStale(ctx context.Context, st *domainState, d string, now time.Time) *entry {
	c.mu.Lock()
	if !st.reloadedAt.IsZero() && now.Sub(st.reloadedAt) < staleReload && now.After(st.reloadedAt) {
		e := st.entry
		c.mu.Unlock()
		return e
	}
	st.reloadedAt = now
	c.mu.Unlock()
	return c.reload(ctx, d)
}

// reload re-reads d from the Cache into the decoded layer and returns the
// entry now in effect (nil if none).
func (c *Client) reload(ctx context.Context, d string) *entry {
	st := c.state(ctx, d)
	e := c.load(ctx, d)
	c.mu.Lock()
	defer c.mu.Unlock()
	// The Cache is the reference (another MTA may share it), unless the
	// decoded layer holds a newer entry that the Cache failed to store.
	if e != nil && (st.entry == nil || !e.fetched.Before(st.entry.fetched)) {
		st.entry = e
		c.chargeLocked(st)
	}
	return st.entry
}

// load reads and decodes d's entry from the Cache. Errors and corrupt
// entries are logged and read as a miss.
func (c *Client) load(ctx context.Context, d string) *entry {
	data, err := c.cache.Get(ctx, d)
	if errors.Is(err, ErrCacheMiss) {
		return nil
	}
	if err != nil {
		c.log.Error("mtasts: cache get failed", slog.String("domain", d), slog.Any("error", err))
		return nil
	}
	e, err := unmarshalEntry(data)
	if err == nil && e.domain != d {
		err = errCorruptEntry
	}
	if err != nil {
		c.log.Error("mtasts: ignoring corrupt cache entry", slog.String("domain", d), slog.Any("error", err))
		return nil
	}
	// The decoded layer keeps the entry: its strings and body are parts of
	// data, which they would keep whole (a typical entry's header is 140
	// bytes). Keep copies of the parts instead, and the caller's domain.
	e.domain, e.id, e.failID = d, strings.Clone(e.id), strings.Clone(e.failID)
	e.failType = tlsrpt.ResultType(strings.Clone(string(e.failType)))
	e.body = bytes.Clone(e.body)
	return e
}
