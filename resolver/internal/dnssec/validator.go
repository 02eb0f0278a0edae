package dnssec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/resolver/internal/wire"
	"golang.org/x/sync/singleflight"
)

// Validator holds what lookups share: the cache of validated zone states,
// the key fetches in flight (one per zone), the rotation over upstream
// servers, the sockets to them and the work counters. Everything else a lookup needs comes in
// its Config. A Validator is safe for concurrent use; create it with New.
type Validator struct {
	cache   *zoneCache // nil: no caching
	flights singleflight.Group
	rotate  atomic.Uint64
	pool    wire.Pool // the sockets of the exchanges (exchange.go)

	statQueries atomic.Uint64
	statVerifs  atomic.Uint64
	statHashes  atomic.Uint64
}

// DefaultCacheBytes is the memory bound of the zone state cache of a
// Validator created with New(0, 0): the keys of about 100,000 zones
// signed with ECDSA (70,000 with RSA), or the states of 200,000 insecure
// ones.
const DefaultCacheBytes = 64 << 20

// New returns a Validator that caches the validated state (keys, or
// insecurity) of zones, each for its TTL capped at one day, within
// maxBytes of estimated memory (zero means DefaultCacheBytes) and, when
// maxZones is positive, for at most maxZones zones. A negative maxZones
// or maxBytes disables the cache, so that every lookup walks the chain of
// trust from the root (a cost, not a security risk).
func New(maxZones int, maxBytes int64) *Validator {
	v := &Validator{}
	if maxZones < 0 || maxBytes < 0 {
		return v
	}
	if maxBytes == 0 {
		maxBytes = DefaultCacheBytes
	}
	v.cache = &zoneCache{zones: map[string]cacheEntry{}, max: maxZones, maxBytes: maxBytes}
	return v
}

// Config is what one lookup is asked with. Zero values of the numeric
// fields mean the defaults given; Servers and Anchors have none.
type Config struct {
	// Servers lists the upstream recursive resolvers as host:port, tried
	// in rotation until one answers. None is trusted: a lying upstream
	// can only cause Bogus answers or failures.
	Servers []string
	// Anchors are the trust anchors, at any zones (see Anchors). A name
	// under none of them is Insecure.
	Anchors *Anchors
	// NegativeAnchors are the negative trust anchors in force (RFC 7646):
	// at and below them every answer is Insecure and nothing is
	// validated. Nil means none.
	NegativeAnchors *NTAs
	// Logger receives one warning per lookup that a negative trust
	// anchor made Insecure (RFC 7646 8: log every use). Nil logs nothing.
	Logger *slog.Logger
	// Now is the clock signature validity periods and cache lifetimes are
	// judged by. It is read once per lookup. Nil means time.Now.
	Now func() time.Time
	// Timeout bounds one exchange with one server (UDP and a TCP retry
	// together). Zero means 2 seconds.
	Timeout time.Duration
	// LookupTimeout bounds a whole Lookup, chain of trust included, in
	// addition to the caller's context. Zero means 10 seconds.
	LookupTimeout time.Duration
	// MaxCNAMEs bounds the CNAME and DNAME links followed from the
	// question. Zero means 8.
	MaxCNAMEs int
	// Limits bound the work of one lookup against KeyTrap-style
	// responses.
	Limits Limits
	// Limiter, if not nil, is waited on before every upstream query
	// (answers, DS and DNSKEY fetches, retries): a global query rate.
	Limiter interface {
		Wait(ctx context.Context) error
	}
}

// Limits bound the work of one lookup (CVE-2023-50387, KeyTrap, and its
// NSEC3 cousin CVE-2023-50868). Past any of them the answer is Bogus.
// Zero fields mean the defaults given.
type Limits struct {
	// Queries bounds the upstream queries (answer, CNAME links, DS and
	// DNSKEY fetches, retries on other servers). Zero means 64.
	Queries int
	// Verifications bounds the signature verifications. Zero means 64.
	Verifications int
	// Signatures bounds the RRSIGs tried for one RRset and the trust
	// paths tried for one DNSKEY RRset. Zero means 8.
	Signatures int
	// KeysPerTag bounds the keys tried for one RRSIG or one DS: key tags
	// are 16-bit checksums, so a zone can publish many keys with one
	// tag. Zero means 4.
	KeysPerTag int
	// NSEC3Hashes bounds the NSEC3 hash computations. Zero means 128.
	NSEC3Hashes int
}

// Stats counts the work a Validator has done since it was created, and
// what its cache holds.
type Stats struct {
	// Queries is the number of queries sent upstream.
	Queries uint64
	// Verifications is the number of signature verifications (each one
	// cryptographic operation, successful or not).
	Verifications uint64
	// NSEC3Hashes is the number of NSEC3 owner-name hashes computed.
	NSEC3Hashes uint64
	// CachedZones is the number of zone states cached now, expired ones
	// included until they are looked up or evicted.
	CachedZones int
	// CacheBytes is their estimated memory, the figure the cache's byte
	// bound applies to.
	CacheBytes int64
}

// CloseIdleConnections closes the sockets kept for the next queries
// (wire.Pool.CloseIdle). The zone state cache is kept.
func (v *Validator) CloseIdleConnections() { v.pool.CloseIdle() }

// Stats returns the work counters and the size of the cache.
func (v *Validator) Stats() Stats {
	zones, bytes := v.cache.stats()
	return Stats{
		Queries:       v.statQueries.Load(),
		Verifications: v.statVerifs.Load(),
		NSEC3Hashes:   v.statHashes.Load(),
		CachedZones:   zones,
		CacheBytes:    bytes,
	}
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// limits are the work bounds of one lookup.
type limits struct {
	queries, verifs, hashes int64
	sigs, keysPerTag        int
}

// lookup is the state of one Lookup (or Check): its context and
// clock, its work budget, and the responses it has fetched, so that a
// question asked twice in one lookup (the answer query and a DS walk,
// or a prefetch and its use) goes upstream once.
type lookup struct {
	v         *Validator
	ctx       context.Context
	now       time.Time
	servers   []string
	anchors   *Anchors
	ntas      *NTAs
	timeout   time.Duration // per exchange
	maxCNAMEs int
	lim       limits
	limiter   interface {
		Wait(ctx context.Context) error
	}

	queries, verifs, hashes atomic.Int64

	mu      sync.Mutex // guards fetches
	fetches map[qkey]*inflight

	// prefetched are the zones whose key flights prefetchKeys started
	// (or joined); written before the answer query, read-only after.
	prefetched map[string]bool

	// ntaUsed is the first negative trust anchor this lookup applied,
	// logged once when the lookup ends.
	ntaUsed atomic.Pointer[string]
}

type qkey struct {
	name  string
	qtype uint16
}

type inflight struct {
	done chan struct{}
	msg  *dns.Msg
	err  error
}

func (v *Validator) newLookup(ctx context.Context, c *Config, servers []string) *lookup {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &lookup{
		v:         v,
		ctx:       ctx,
		now:       now(),
		servers:   servers,
		anchors:   c.Anchors,
		ntas:      c.NegativeAnchors,
		timeout:   timeout,
		maxCNAMEs: orDefault(c.MaxCNAMEs, 8),
		limiter:   c.Limiter,
		lim: limits{
			queries:    int64(orDefault(c.Limits.Queries, 64)),
			verifs:     int64(orDefault(c.Limits.Verifications, 64)),
			sigs:       orDefault(c.Limits.Signatures, 8),
			keysPerTag: orDefault(c.Limits.KeysPerTag, 4),
			hashes:     int64(orDefault(c.Limits.NSEC3Hashes, 128)),
		},
		fetches: map[qkey]*inflight{},
	}
}

func (l *lookup) spendQuery() error {
	l.v.statQueries.Add(1)
	if l.queries.Add(1) > l.lim.queries {
		return bogus(dns.ExtendedErrorCodeDNSBogus, "work limit: more than %d queries", l.lim.queries)
	}
	return nil
}

func (l *lookup) spendVerification() error {
	if l.verifs.Add(1) > l.lim.verifs {
		return bogus(dns.ExtendedErrorCodeDNSBogus, "work limit: more than %d signature verifications", l.lim.verifs)
	}
	l.v.statVerifs.Add(1)
	return nil
}

func (l *lookup) spendHash() error {
	if l.hashes.Add(1) > l.lim.hashes {
		return bogus(dns.ExtendedErrorCodeDNSBogus, "work limit: more than %d NSEC3 hashes", l.lim.hashes)
	}
	l.v.statHashes.Add(1)
	return nil
}

// start begins fetching a question unless this lookup already has; it
// does not wait.
func (l *lookup) start(name string, qtype uint16) *inflight {
	k := qkey{name, qtype}
	l.mu.Lock()
	f := l.fetches[k]
	if f == nil {
		f = &inflight{done: make(chan struct{})}
		l.fetches[k] = f
		go func() {
			defer close(f.done)
			f.msg, f.err = l.exchange(name, qtype)
		}()
	}
	l.mu.Unlock()
	return f
}

// fetch returns the answer to a question, asking upstream at most once
// per lookup.
func (l *lookup) fetch(name string, qtype uint16) (*dns.Msg, error) {
	f := l.start(name, qtype)
	select {
	case <-f.done:
		return f.msg, f.err
	case <-l.ctx.Done():
		return nil, ctxError(name, qtype, l.ctx.Err())
	}
}

// metaType reports query types that cannot be validated as one RRset.
func metaType(t uint16) bool {
	switch t {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB,
		dns.TypeOPT, dns.TypeRRSIG, dns.TypeTSIG, dns.TypeTKEY, dns.TypeNone:
		return true
	}
	return false
}

// Lookup implements Resolver: it resolves name and qtype through the
// upstream servers and validates the answer, or the denial, and every
// link of its CNAME/DNAME chain.
// CheckQuestion reports whether a question can be validated: a valid
// domain name, and a type that names one RRset (not a meta type such as
// ANY or RRSIG). It returns a *Error of KindMalformed when not.
func CheckQuestion(name string, qtype uint16) error {
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 255 {
		return &Error{Kind: KindMalformed, Reason: "invalid domain name"}
	}
	if metaType(qtype) {
		return &Error{Kind: KindMalformed, Reason: "query type " + dns.TypeToString[qtype] + " cannot be validated"}
	}
	return nil
}

// Lookup resolves name and qtype through the upstream servers of c and
// validates the answer, or the denial, and every link of its CNAME/DNAME
// chain. name is made lowercase and fully qualified. A lookup that cannot
// reach a verdict of Secure or Insecure returns a *Error (see the
// package documentation).
func (v *Validator) Lookup(ctx context.Context, c Config, name string, qtype uint16) (*Result, error) {
	qname := lower(name)
	if err := CheckQuestion(qname, qtype); err != nil {
		return nil, err
	}
	if c.Anchors.Len() == 0 {
		// No anchor at all is a configuration error, never "everything
		// Insecure".
		return nil, &Error{Kind: KindIndeterminate, EDE: dns.ExtendedErrorCodeDNSSECIndeterminate, Reason: "no trust anchors configured"}
	}
	limit := c.LookupTimeout
	if limit <= 0 {
		limit = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	l := v.newLookup(ctx, &c, c.Servers)
	res, err := l.resolve(qname, qtype)
	if z := l.ntaUsed.Load(); z != nil && c.Logger != nil {
		c.Logger.Warn("dnssec: negative trust anchor applied, answer not validated (RFC 7646)",
			"zone", quote.String(*z), "name", quote.String(qname), "type", dns.TypeToString[qtype])
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return nil, &Error{Kind: KindIndeterminate, Err: err}
		}
		c := *e
		return nil, &c
	}
	return res, nil
}

// resolve follows the answer for qname from link to link. The upstream
// usually returns the whole chain in one response; when it stops short,
// the next link is asked for directly.
func (l *lookup) resolve(qname string, qtype uint16) (*Result, error) {
	ans := &Result{Security: Secure}
	ttl := uint32(maxTTL)
	cur, asked := qname, qname
	l.prefetchKeys(qname)
	msg, err := l.fetch(cur, qtype)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{qname: true}
	for {
		sets := group(msg.Answer)
		if s := find(sets, cur, qtype); s != nil {
			r, err := l.verifyAnswer(msg, s)
			if err != nil {
				return nil, err
			}
			ans.worse(r.sec, r.why, r.ede, s.name, s.rrtype)
			ttl = min(ttl, r.ttl)
			for _, rr := range s.rrs {
				// The message's records are not ours to change (group).
				rr = dns.Copy(rr)
				rr.Header().Ttl = r.ttl
				// The owner name is cur in canonical form: sharing
				// the string with the answer's name (or last CNAME
				// target) saves a copy per record in every cache
				// that keeps the answer.
				rr.Header().Name = cur
				ans.Records = append(ans.Records, rr)
			}
			break
		}
		target, r, ok, err := l.link(msg, sets, cur, qtype)
		if err != nil {
			return nil, err
		}
		if ok {
			if len(ans.CNAMEs) >= l.maxCNAMEs || seen[target] {
				return nil, &Error{Kind: KindLoop, Reason: fmt.Sprintf("CNAME chain from %s loops or exceeds %d links", qname, l.maxCNAMEs)}
			}
			seen[target] = true
			ans.CNAMEs = append(ans.CNAMEs, target)
			ans.worse(r.sec, r.why, r.ede, cur, dns.TypeCNAME)
			ttl = min(ttl, r.ttl)
			cur = target
			if !answersFor(msg, cur) {
				if msg, err = l.fetch(cur, qtype); err != nil {
					return nil, err
				}
				asked = cur
			}
			continue
		}
		if asked != cur && len(msg.Ns) == 0 {
			// The upstream stopped at a link without chasing it.
			if msg, err = l.fetch(cur, qtype); err != nil {
				return nil, err
			}
			asked = cur
			continue
		}
		// No records at the end of the chain: a denial (RFC 6604: the
		// rcode speaks of the last name of the chain).
		nx := msg.Rcode == dns.RcodeNameError
		p, err := l.proof(msg, cur, qtype, "", keysOpt{speculate: true})
		if err != nil {
			return nil, err
		}
		if nx {
			err = p.nxdomain(cur)
		} else {
			err = p.nodata(cur, qtype)
		}
		if err != nil {
			return nil, err
		}
		ans.NXDomain = nx
		ans.worse(p.sec, p.why, p.ede, cur, qtype)
		ttl = min(ttl, p.ttl)
		break
	}
	ans.TTL = time.Duration(ttl) * time.Second
	return ans, nil
}

// answersFor reports whether msg carries the rest of the chain from
// name: records owned by name or a DNAME above it, or (when the chain
// ends at name) the authority section of its denial.
func answersFor(msg *dns.Msg, name string) bool {
	for _, rr := range msg.Answer {
		h := rr.Header()
		if strings.EqualFold(h.Name, name) || (h.Rrtype == dns.TypeDNAME && isProperAncestor(h.Name, name)) {
			return true
		}
	}
	return len(msg.Ns) > 0 && len(msg.Answer) > 0
}

// verifyAnswer validates an answer RRset and, for a wildcard expansion,
// the proof that the name itself does not exist.
func (l *lookup) verifyAnswer(msg *dns.Msg, s *rrset) (rrsetResult, error) {
	r, err := l.verifySet(s, keysOpt{speculate: true})
	if err != nil || r.sec != Secure || r.wildcard == "" {
		return r, err
	}
	p, err := l.proof(msg, s.name, s.rrtype, r.zone, keysOpt{speculate: true})
	if err != nil {
		return r, err
	}
	if p.sec == Secure && p.zone != r.zone {
		return r, bogus(dns.ExtendedErrorCodeNSECMissing, "wildcard answer %s from %s comes with a proof from %s", quote.String(s.name), quote.String(r.zone), quote.String(p.zone))
	}
	if err := p.wildcardAnswer(s.name, r.wildcard); err != nil {
		return r, err
	}
	r.sec = r.sec.Worse(p.sec)
	return r, nil
}

// link follows one CNAME or DNAME step from cur. ok is false when msg
// has neither at cur. A CNAME synthesized from a DNAME (RFC 6672) takes
// the DNAME's security; the CNAME itself is usually unsigned and must
// match the synthesis.
func (l *lookup) link(msg *dns.Msg, sets []*rrset, cur string, qtype uint16) (target string, r rrsetResult, ok bool, err error) {
	if qtype == dns.TypeCNAME {
		return "", r, false, nil
	}
	cname := find(sets, cur, dns.TypeCNAME)
	var dname *rrset
	for _, s := range sets {
		if s.rrtype == dns.TypeDNAME && isProperAncestor(s.name, cur) &&
			(dname == nil || dns.CountLabel(s.name) > dns.CountLabel(dname.name)) {
			dname = s
		}
	}
	if dname != nil {
		d, good := dname.rrs[0].(*dns.DNAME)
		if len(dname.rrs) != 1 || !good {
			return "", r, false, &Error{Kind: KindMalformed, Reason: "DNAME RRset at " + dname.name + " has more than one record"}
		}
		// RFC 6672 2.2: replace the DNAME owner suffix of cur by the target.
		prefix := cur
		if idx := dns.Split(cur); dname.name != "." {
			prefix = cur[:idx[dns.CountLabel(cur)-dns.CountLabel(dname.name)]]
		}
		target = lower(prefix + d.Target)
		if d.Target == "." {
			target = lower(prefix)
		}
		if _, okName := dns.IsDomainName(target); !okName || len(target) > 255 {
			return "", r, false, &Error{Kind: KindMalformed, Reason: "DNAME substitution for " + cur + " is too long"}
		}
		if cname != nil {
			c, good := cname.rrs[0].(*dns.CNAME)
			if len(cname.rrs) != 1 || !good || lower(c.Target) != target {
				return "", r, false, bogus(dns.ExtendedErrorCodeDNSBogus, "CNAME at %s does not match the DNAME at %s", quote.String(cur), quote.String(dname.name))
			}
		}
		if r, err = l.verifyAnswer(msg, dname); err != nil {
			return "", r, false, err
		}
		return target, r, true, nil
	}
	if cname == nil {
		return "", r, false, nil
	}
	c, good := cname.rrs[0].(*dns.CNAME)
	if len(cname.rrs) != 1 || !good {
		return "", r, false, &Error{Kind: KindMalformed, Reason: "CNAME RRset at " + cur + " has more than one record"}
	}
	if r, err = l.verifyAnswer(msg, cname); err != nil {
		return "", r, false, err
	}
	return lower(c.Target), r, true, nil
}

// CheckKind says why an upstream resolver is unfit for stub validation.
type CheckKind uint8

const (
	// CheckUnreachable: the upstream did not answer the probe.
	CheckUnreachable CheckKind = iota + 1
	// CheckNoDNSKEY: the root DNSKEY RRset was missing from the answer
	// to a DO=1, CD=1 query.
	CheckNoDNSKEY
	// CheckNoRRSIG: the root DNSKEY RRset came without RRSIGs.
	CheckNoRRSIG
	// CheckUntrusted: the DNSKEY RRset of an anchored zone did not
	// validate against its trust anchors.
	CheckUntrusted
)

// Check probes one upstream server with a DO=1, CD=1 query for the root
// DNSKEY RRset (or that of the first anchored zone when the root has no
// anchor) and validates the DNSKEY RRset of every anchored zone against
// its anchors (c.Servers is ignored). It returns 0 and nil when the server is fit for stub
// validation, otherwise what is wrong and, where there is one, the
// underlying error. c.LookupTimeout is ignored: the probe is bounded by
// twice c.Timeout and by ctx.
func (v *Validator) Check(ctx context.Context, c Config, server string) (CheckKind, error) {
	l := v.newLookup(ctx, &c, []string{server})
	cctx, cancel := context.WithTimeout(ctx, 2*l.timeout)
	defer cancel()
	l.ctx = cctx
	return l.check()
}

// check probes the DNSKEY RRset of the root (or, without a root anchor,
// of the first anchored zone) for DNSSEC records, then validates the
// DNSKEY RRset of every anchored zone against its anchors.
func (l *lookup) check() (CheckKind, error) {
	zones := l.anchors.Zones()
	probe := "."
	if !l.anchors.HasRoot() && len(zones) > 0 {
		probe = zones[0]
	}
	msg, err := l.exchange(probe, dns.TypeDNSKEY)
	if err != nil {
		return CheckUnreachable, err
	}
	set := find(group(msg.Answer), probe, dns.TypeDNSKEY)
	switch {
	case set == nil:
		return CheckNoDNSKEY, nil
	case len(set.sigs) == 0:
		return CheckNoRRSIG, nil
	}
	l.mu.Lock()
	f := &inflight{done: make(chan struct{}), msg: msg}
	close(f.done)
	l.fetches[qkey{probe, dns.TypeDNSKEY}] = f
	l.mu.Unlock()
	for _, z := range zones {
		if _, err := l.anchorKeys(z); err != nil {
			return CheckUntrusted, err
		}
	}
	return 0, nil
}
