package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Validating is a Resolver that validates DNSSEC itself, from the root
// trust anchors, over ordinary recursive resolvers (stub validation, RFC
// 4033 section 7; RFC 4035 sections 4 and 5). It asks every question
// with DO=1 and CD=1, ignores the upstream's AD bit, and builds the chain
// of trust locally: DS to DNSKEY from the anchors down to the signer of
// each answer, RRSIG checks (signer label-wise above the owner, validity
// period in serial arithmetic, REVOKE), wildcard proofs, NSEC and NSEC3
// denial (opt-out, closest encloser), CNAME and DNAME chains across zones
// with each link judged in its own zone, and TTL capping (RFC 4035
// 5.3.3).
//
// Verdicts: an answer is Secure when every link validates from an anchor,
// Insecure when a link provably lies below an insecure delegation or in a
// zone whose DS RRset names only unsupported algorithms or digests (Ed448
// and RSA keys shorter than 1024 bits included) or whose NSEC3 proof uses
// more than 150 iterations (RFC 9276). Bogus and indeterminate results
// are a *Error of Kind KindBogus or KindIndeterminate, with a Reason and,
// where one fits, an Extended DNS Error code (RFC 8914) in EDE; they are
// never returned as Insecure answers.
//
// Validated DNSKEY states are cached by TTL (at most a day, bounded by
// CacheSize zones), shared between concurrent lookups (one flight per
// zone), so a warm lookup costs one query and the signatures of its own
// answer. Work per lookup is bounded against KeyTrap-style responses
// (CVE-2023-50387): queries, signature verifications, RRSIGs per RRset,
// keys per key tag and NSEC3 hashes; past a bound the answer is Bogus.
//
// The zero value validates with the IANA root anchors over the servers
// of /etc/resolv.conf. The upstream must pass DNSSEC records and honour
// CD=1; Check reports one that does not. A Validating must not be copied
// after first use.
type Validating struct {
	// Servers lists the upstream recursive resolvers as host:port. They
	// are tried in rotation until one answers. Empty means the
	// nameservers of /etc/resolv.conf on port 53. The upstream is not
	// trusted: a lying upstream can only cause Bogus answers or
	// timeouts, never a Secure answer the anchors do not sign.
	Servers []string
	// Anchors are the trust anchors of the root zone in DS form. Nil
	// means RootAnchors(). Tests and private roots set their own.
	Anchors []*dns.DS
	// Now returns the time against which signature validity periods are
	// checked. Nil means time.Now. A clock that is wrong by days makes
	// every answer Bogus (expired or not yet valid signatures).
	Now func() time.Time
	// Timeout bounds each query to one server. Zero means 2 seconds.
	Timeout time.Duration
	// LookupTimeout bounds a whole Lookup, chain of trust included, in
	// addition to the caller's context. Zero means 10 seconds.
	LookupTimeout time.Duration
	// MaxQueries bounds the upstream queries of one Lookup (answer,
	// CNAME links, DS and DNSKEY fetches, retries on other servers).
	// Zero means 64. Exceeding it makes the answer Bogus.
	MaxQueries int
	// MaxVerifications bounds the signature verifications of one Lookup.
	// Zero means 64; a cold lookup through three zones needs about 6.
	MaxVerifications int
	// MaxSignatures bounds the RRSIGs tried for one RRset and the trust
	// paths tried for one DNSKEY RRset. Zero means 8.
	MaxSignatures int
	// MaxKeysPerTag bounds the keys tried for one RRSIG: key tags are
	// 16-bit checksums, so an attacker's zone can publish many keys with
	// one tag (KeyTrap). Zero means 4.
	MaxKeysPerTag int
	// MaxNSEC3Hashes bounds the NSEC3 hash computations of one Lookup.
	// Zero means 128 (a closest encloser proof hashes each label between
	// the name and its zone).
	MaxNSEC3Hashes int
	// CacheSize bounds the zones whose validated state is cached. Zero
	// means 4096; negative disables the cache (every lookup then walks
	// the chain of trust from the root, a cost, not a security risk).
	CacheSize int

	initOnce  sync.Once
	cache     *valCache
	flights   singleflight.Group
	resolv    []string
	resolvErr error
	rotate    atomic.Uint64

	statQueries atomic.Uint64
	statVerifs  atomic.Uint64
	statHashes  atomic.Uint64
}

// ValidatingStats counts the work a Validating has done since it was
// created.
type ValidatingStats struct {
	// Queries is the number of queries sent upstream.
	Queries uint64
	// Verifications is the number of signature verifications (each one
	// cryptographic operation, successful or not).
	Verifications uint64
	// NSEC3Hashes is the number of NSEC3 owner-name hashes computed.
	NSEC3Hashes uint64
}

// Stats returns the work counters. Comparing them around a lookup shows
// what it cost: a warm lookup verifies only its own answer's signatures.
func (v *Validating) Stats() ValidatingStats {
	return ValidatingStats{
		Queries:       v.statQueries.Load(),
		Verifications: v.statVerifs.Load(),
		NSEC3Hashes:   v.statHashes.Load(),
	}
}

func (v *Validating) init() {
	v.initOnce.Do(func() {
		switch {
		case v.CacheSize == 0:
			v.cache = &valCache{zones: map[string]valCacheEntry{}, max: 4096}
		case v.CacheSize > 0:
			v.cache = &valCache{zones: map[string]valCacheEntry{}, max: v.CacheSize}
		}
		if len(v.Servers) == 0 {
			cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
			if err != nil {
				v.resolvErr = err
				return
			}
			for _, s := range cfg.Servers {
				v.resolv = append(v.resolv, net.JoinHostPort(s, cfg.Port))
			}
		}
	})
}

func (v *Validating) servers() ([]string, error) {
	v.init()
	if len(v.Servers) > 0 {
		return v.Servers, nil
	}
	if v.resolvErr != nil {
		return nil, &Error{Kind: KindNetwork, Reason: "no upstream servers: reading resolv.conf", Err: v.resolvErr}
	}
	return v.resolv, nil
}

func (v *Validating) anchors() []*dns.DS {
	if v.Anchors != nil {
		return v.Anchors
	}
	return RootAnchors()
}

func (v *Validating) timeout() time.Duration {
	if v.Timeout > 0 {
		return v.Timeout
	}
	return 2 * time.Second
}

func (v *Validating) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func valOrDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// valLimits are the work bounds of one lookup.
type valLimits struct {
	queries, verifs, hashes int64
	sigs, keysPerTag        int
}

// valLookup is the state of one Lookup (or Check): its context and
// clock, its work budget, and the responses it has fetched, so that a
// question asked twice in one lookup (the answer query and a DS walk,
// or a prefetch and its use) goes upstream once.
type valLookup struct {
	v       *Validating
	ctx     context.Context
	now     time.Time
	servers []string
	lim     valLimits

	queries, verifs, hashes atomic.Int64

	mu      sync.Mutex // guards fetches
	fetches map[valQKey]*valFetch
}

type valQKey struct {
	name  string
	qtype uint16
}

type valFetch struct {
	done chan struct{}
	msg  *dns.Msg
	err  error
}

func (v *Validating) newLookup(ctx context.Context, servers []string) *valLookup {
	return &valLookup{
		v:       v,
		ctx:     ctx,
		now:     v.now(),
		servers: servers,
		lim: valLimits{
			queries:    int64(valOrDefault(v.MaxQueries, 64)),
			verifs:     int64(valOrDefault(v.MaxVerifications, 64)),
			sigs:       valOrDefault(v.MaxSignatures, 8),
			keysPerTag: valOrDefault(v.MaxKeysPerTag, 4),
			hashes:     int64(valOrDefault(v.MaxNSEC3Hashes, 128)),
		},
		fetches: map[valQKey]*valFetch{},
	}
}

func (l *valLookup) spendQuery() error {
	l.v.statQueries.Add(1)
	if l.queries.Add(1) > l.lim.queries {
		return valBogus(dns.ExtendedErrorCodeDNSBogus, "work limit: more than %d queries", l.lim.queries)
	}
	return nil
}

func (l *valLookup) spendVerification() error {
	if l.verifs.Add(1) > l.lim.verifs {
		return valBogus(dns.ExtendedErrorCodeDNSBogus, "work limit: more than %d signature verifications", l.lim.verifs)
	}
	l.v.statVerifs.Add(1)
	return nil
}

func (l *valLookup) spendHash() error {
	if l.hashes.Add(1) > l.lim.hashes {
		return valBogus(dns.ExtendedErrorCodeDNSBogus, "work limit: more than %d NSEC3 hashes", l.lim.hashes)
	}
	l.v.statHashes.Add(1)
	return nil
}

// start begins fetching a question unless this lookup already has; it
// does not wait.
func (l *valLookup) start(name string, qtype uint16) *valFetch {
	k := valQKey{name, qtype}
	l.mu.Lock()
	f := l.fetches[k]
	if f == nil {
		f = &valFetch{done: make(chan struct{})}
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
func (l *valLookup) fetch(name string, qtype uint16) (*dns.Msg, error) {
	f := l.start(name, qtype)
	select {
	case <-f.done:
		return f.msg, f.err
	case <-l.ctx.Done():
		return nil, valCtxError(name, qtype, l.ctx.Err())
	}
}

// valMetaType reports query types that cannot be validated as one RRset.
func valMetaType(t uint16) bool {
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
func (v *Validating) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	qname := Fqdn(name)
	fail := func(e *Error) (*Answer, error) {
		e.Name, e.Type = qname, qtype
		return nil, e
	}
	if _, ok := dns.IsDomainName(qname); !ok || len(qname) > 255 {
		return fail(&Error{Kind: KindMalformed, Reason: "invalid domain name"})
	}
	if valMetaType(qtype) {
		return fail(&Error{Kind: KindMalformed, Reason: "query type " + dns.TypeToString[qtype] + " cannot be validated"})
	}
	servers, err := v.servers()
	if err != nil {
		return fail(err.(*Error))
	}
	limit := v.LookupTimeout
	if limit <= 0 {
		limit = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	l := v.newLookup(ctx, servers)
	ans, err := l.resolve(qname, qtype)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Kind: KindIndeterminate, Err: err}
		} else {
			c := *e
			e = &c
		}
		return fail(e)
	}
	return ans, nil
}

// resolve follows the answer for qname from link to link. The upstream
// usually returns the whole chain in one response; when it stops short,
// the next link is asked for directly.
func (l *valLookup) resolve(qname string, qtype uint16) (*Answer, error) {
	ans := &Answer{Name: qname, Type: qtype, Security: Secure}
	ttl := uint32(valMaxTTL)
	cur, asked := qname, qname
	msg, err := l.fetch(cur, qtype)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{qname: true}
	for {
		sets := valGroup(msg.Answer)
		if s := valFind(sets, cur, qtype); s != nil {
			r, err := l.verifyAnswer(msg, s)
			if err != nil {
				return nil, err
			}
			ans.Security = ans.Security.Worse(r.sec)
			ttl = min(ttl, r.ttl)
			for _, rr := range s.rrs {
				rr.Header().Ttl = r.ttl
				ans.Records = append(ans.Records, rr)
			}
			break
		}
		target, r, ok, err := l.link(msg, sets, cur, qtype)
		if err != nil {
			return nil, err
		}
		if ok {
			if len(ans.CNAMEs) >= MaxCNAMEs || seen[target] {
				return nil, &Error{Kind: KindLoop, Reason: fmt.Sprintf("CNAME chain from %s loops or exceeds %d links", qname, MaxCNAMEs)}
			}
			seen[target] = true
			ans.CNAMEs = append(ans.CNAMEs, target)
			ans.Security = ans.Security.Worse(r.sec)
			ttl = min(ttl, r.ttl)
			cur = target
			if !valAnswersFor(msg, cur) {
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
		ans.Security = ans.Security.Worse(p.sec)
		ttl = min(ttl, p.ttl)
		break
	}
	ans.TTL = time.Duration(ttl) * time.Second
	return ans, nil
}

// valAnswersFor reports whether msg carries the rest of the chain from
// name: records owned by name or a DNAME above it, or (when the chain
// ends at name) the authority section of its denial.
func valAnswersFor(msg *dns.Msg, name string) bool {
	for _, rr := range msg.Answer {
		h := rr.Header()
		if strings.EqualFold(h.Name, name) || (h.Rrtype == dns.TypeDNAME && valIsProperAncestor(h.Name, name)) {
			return true
		}
	}
	return len(msg.Ns) > 0 && len(msg.Answer) > 0
}

// verifyAnswer validates an answer RRset and, for a wildcard expansion,
// the proof that the name itself does not exist.
func (l *valLookup) verifyAnswer(msg *dns.Msg, s *valSet) (valVerified, error) {
	r, err := l.verifySet(s, keysOpt{speculate: true})
	if err != nil || r.sec != Secure || r.wildcard == "" {
		return r, err
	}
	p, err := l.proof(msg, s.name, s.rrtype, r.zone, keysOpt{speculate: true})
	if err != nil {
		return r, err
	}
	if p.sec == Secure && p.zone != r.zone {
		return r, valBogus(dns.ExtendedErrorCodeNSECMissing, "wildcard answer %s from %s comes with a proof from %s", s.name, r.zone, p.zone)
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
func (l *valLookup) link(msg *dns.Msg, sets []*valSet, cur string, qtype uint16) (target string, r valVerified, ok bool, err error) {
	if qtype == dns.TypeCNAME {
		return "", r, false, nil
	}
	cname := valFind(sets, cur, dns.TypeCNAME)
	var dname *valSet
	for _, s := range sets {
		if s.rrtype == dns.TypeDNAME && valIsProperAncestor(s.name, cur) &&
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
		target = valLower(prefix + d.Target)
		if d.Target == "." {
			target = valLower(prefix)
		}
		if _, okName := dns.IsDomainName(target); !okName || len(target) > 255 {
			return "", r, false, &Error{Kind: KindMalformed, Reason: "DNAME substitution for " + cur + " is too long"}
		}
		if cname != nil {
			c, good := cname.rrs[0].(*dns.CNAME)
			if len(cname.rrs) != 1 || !good || valLower(c.Target) != target {
				return "", r, false, valBogus(dns.ExtendedErrorCodeDNSBogus, "CNAME at %s does not match the DNAME at %s", cur, dname.name)
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
	return valLower(c.Target), r, true, nil
}

// CheckKind says why an upstream resolver is unfit for stub validation.
type CheckKind uint8

const (
	// CheckUnreachable: the upstream did not answer the probe.
	CheckUnreachable CheckKind = iota + 1
	// CheckNoDNSKEY: the root DNSKEY RRset was missing from the answer to
	// a DO=1, CD=1 query: the upstream blocks such queries or does not
	// speak DNSSEC.
	CheckNoDNSKEY
	// CheckNoRRSIG: the root DNSKEY RRset came without RRSIGs: the
	// upstream strips DNSSEC records.
	CheckNoRRSIG
	// CheckUntrusted: the root DNSKEY RRset did not validate against the
	// trust anchors (wrong anchors, a wrong clock, or a lying upstream).
	CheckUntrusted
)

var checkKindNames = [...]string{
	CheckUnreachable: "unreachable",
	CheckNoDNSKEY:    "no DNSKEY for the root (DNSSEC queries blocked)",
	CheckNoRRSIG:     "RRSIGs stripped",
	CheckUntrusted:   "root keys do not validate against the trust anchors",
}

// String describes the kind.
func (k CheckKind) String() string {
	if int(k) < len(checkKindNames) && checkKindNames[k] != "" {
		return checkKindNames[k]
	}
	return fmt.Sprintf("checkkind(%d)", k)
}

// CheckError reports an upstream resolver that cannot serve stub
// validation. Every answer through such an upstream would be Bogus, so
// a mail server should refuse to start (or loudly fall back) rather
// than defer all DANE mail.
type CheckError struct {
	// Server is the upstream, host:port.
	Server string
	// Kind says what is wrong.
	Kind CheckKind
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *CheckError) Error() string {
	s := "resolver: upstream " + e.Server + ": " + e.Kind.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *CheckError) Unwrap() error { return e.Err }

// Check probes every upstream server with a DO=1, CD=1 query for the
// root DNSKEY RRset and validates it against the anchors. It returns nil
// when all servers are fit, otherwise one *CheckError per unfit server
// (joined with errors.Join; match with errors.As). It is meant for
// start-up: a DANE client over an upstream that strips DNSSEC must say
// so, not silently fail every lookup (DESIGN: security invariant 6).
func (v *Validating) Check(ctx context.Context) error {
	servers, err := v.servers()
	if err != nil {
		return &CheckError{Kind: CheckUnreachable, Err: err}
	}
	var errs []error
	for _, srv := range servers {
		cctx, cancel := context.WithTimeout(ctx, 2*v.timeout())
		l := v.newLookup(cctx, []string{srv})
		if err := l.check(); err != nil {
			err.Server = srv
			errs = append(errs, err)
		}
		cancel()
	}
	return errors.Join(errs...)
}

func (l *valLookup) check() *CheckError {
	msg, err := l.exchange(".", dns.TypeDNSKEY)
	if err != nil {
		return &CheckError{Kind: CheckUnreachable, Err: err}
	}
	set := valFind(valGroup(msg.Answer), ".", dns.TypeDNSKEY)
	switch {
	case set == nil:
		return &CheckError{Kind: CheckNoDNSKEY}
	case len(set.sigs) == 0:
		return &CheckError{Kind: CheckNoRRSIG}
	}
	l.mu.Lock()
	f := &valFetch{done: make(chan struct{}), msg: msg}
	close(f.done)
	l.fetches[valQKey{".", dns.TypeDNSKEY}] = f
	l.mu.Unlock()
	if _, err := l.rootKeys(); err != nil {
		return &CheckError{Kind: CheckUntrusted, Err: err}
	}
	return nil
}
