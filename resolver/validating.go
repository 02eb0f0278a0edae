package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver/internal/dnssec"

	"github.com/smtptls/smtptls/internal/quote"
)

// DefaultValidatingCacheBytes is the memory bound of the zone state cache
// of a Validating whose CacheBytes is zero: the keys of about 100,000
// zones signed with ECDSA (70,000 with RSA), or the states of 200,000
// insecure ones (BENCHMARKS.md).
const DefaultValidatingCacheBytes = dnssec.DefaultCacheBytes

// Validating is a Resolver that validates DNSSEC itself, from its trust
// anchors (the root's by default), over ordinary recursive resolvers (stub validation, RFC
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
// more than 150 iterations (RFC 9276), lies under no trust anchor, or lies
// at or below a negative trust anchor in force (RFC 7646). An Insecure
// answer says why in Reason, with an Extended DNS Error code (RFC 8914)
// in EDE where one fits. Bogus and indeterminate results are a *Error of
// Kind KindBogus or KindIndeterminate, with a Reason naming the zone and
// the record and, where one fits, an EDE code; they are never returned
// as Insecure answers.
//
// Signature validity periods are checked with a bounded allowance for
// clock skew: a tenth of the signature's validity period, at least 5
// minutes and at most an hour, on either side (RFC 4035 5.3.1 relaxed as
// unbound's val-sig-skew-min and val-sig-skew-max do, with tighter
// bounds).
//
// Validated DNSKEY states are cached by TTL (at most a day, bounded by
// CacheBytes of memory), shared between concurrent lookups (one flight per
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
	// Anchors are the trust anchors in DS form (RFC 4033 3.1: secure
	// entry points), for any zones: the owner name of each record is the
	// zone it anchors, and a zone may have several. The chain of trust
	// of a name starts at the closest anchored zone at or above it (as
	// in unbound and BIND), whatever the zones above say; a name under
	// no anchor is Insecure, there being nothing to validate it against.
	// Nil means RootAnchors().
	//
	// Private anchors (a company's signed internal zone, a test root, a
	// zone being migrated) go next to the root's: append them to
	// RootAnchors(). Anchors without a root anchor make every public
	// domain Insecure, which silently turns DANE off; Check reports such
	// a set as CheckNoRootAnchor. ParseAnchors reads anchor files.
	//
	// The validated keys of anchored zones are cached like any zone's:
	// set Anchors before the first lookup (a change reaches zones
	// already cached when their keys expire, within a day).
	Anchors []*dns.DS
	// NegativeAnchors are negative trust anchors (RFC 7646) to start
	// with; SetNegativeAnchors replaces them while lookups run. They
	// are read at the first use of the Validating. An entry with an
	// empty or invalid zone, the root zone, or a zero Expires is a
	// configuration error: it is ignored (the zone stays validated,
	// never silently insecure), logged at error level, and reported by
	// Check as CheckBadNegativeAnchor.
	NegativeAnchors []NegativeAnchor
	// Logger receives a warning for each lookup a negative trust anchor
	// made Insecure (RFC 7646 8: every use is logged), with the zone,
	// name and type quoted, and configuration errors. Nil means
	// slog.Default().
	Logger *slog.Logger
	// Now returns the time against which signature validity periods are
	// checked. Nil means time.Now. A clock that is wrong by days makes
	// every answer Bogus (expired or not yet valid signatures).
	Now func() time.Time
	// Timeout bounds each query to one server. Zero means 2 seconds. A
	// UDP query unanswered after a third of it is sent again, twice at
	// most (see Stub.Timeout).
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
	// CacheBytes bounds the estimated memory of the cached zone states
	// (a signed zone's keys take 500 bytes to a kilobyte, an insecure
	// zone's state about 350 bytes: BENCHMARKS.md). Zero means
	// DefaultValidatingCacheBytes, room for the zones of 100,000 recipient
	// domains; negative disables the cache (every lookup then walks the
	// chain of trust from the root, a cost, not a security risk).
	CacheBytes int64
	// CacheSize, when positive, also bounds the number of cached zone
	// states. Zero means no bound on the number: CacheBytes alone bounds
	// the cache. Negative disables the cache.
	CacheSize int
	// Limiter, if not nil, is waited on before every query sent upstream,
	// the DS and DNSKEY queries of the chain of trust and Check's probes
	// included (see Limiter); an error from it ends the lookup with that
	// error. Nil means no limit.
	Limiter Limiter

	initOnce  sync.Once
	val       *dnssec.Validator
	resolv    []string
	resolvErr error

	ntas       atomic.Pointer[dnssec.NTAs] // the negative trust anchors in force
	badNTAs    []error                     // NegativeAnchors entries ignored at init
	anchorMemo atomic.Pointer[anchorMemo]  // Anchors, prepared
}

// anchorMemo is the prepared form of one Anchors slice, recognised by
// its backing array and length so that a lookup does not prepare the
// anchors again (Anchors is read per lookup, as every field).
type anchorMemo struct {
	data **dns.DS
	n    int
	set  *dnssec.Anchors
}

// ValidatingStats counts the work a Validating has done since it was
// created, and what its cache holds.
type ValidatingStats struct {
	// Queries is the number of queries sent upstream.
	Queries uint64
	// Verifications is the number of signature verifications (each one
	// cryptographic operation, successful or not).
	Verifications uint64
	// NSEC3Hashes is the number of NSEC3 owner-name hashes computed.
	NSEC3Hashes uint64
	// CachedZones is the number of zone states (validated keys, or
	// insecurity) cached now.
	CachedZones int
	// CacheBytes is their estimated memory, what CacheBytes bounds.
	CacheBytes int64
}

// Stats returns the work counters and the size of the zone state cache.
// Comparing the counters around a lookup shows what it cost: a warm
// lookup verifies only its own answer's signatures.
func (v *Validating) Stats() ValidatingStats {
	v.init()
	s := v.val.Stats()
	return ValidatingStats{Queries: s.Queries, Verifications: s.Verifications, NSEC3Hashes: s.NSEC3Hashes,
		CachedZones: s.CachedZones, CacheBytes: s.CacheBytes}
}

// CloseIdleConnections closes the sockets the Validating keeps open
// between queries, as Stub.CloseIdleConnections does; its cache of
// validated zone states is kept, and it stays usable.
func (v *Validating) CloseIdleConnections() {
	v.init()
	v.val.CloseIdleConnections()
}

func (v *Validating) init() {
	v.initOnce.Do(func() {
		v.val = dnssec.New(v.CacheSize, v.CacheBytes)
		v.ntas.Store(v.prepareNTAs())
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

// config is what the validator is asked with: the fields as they are now
// (they are read per lookup, as a Stub's are).
func (v *Validating) config(servers []string) dnssec.Config {
	return dnssec.Config{
		Servers:         servers,
		Anchors:         v.anchors(),
		NegativeAnchors: v.ntas.Load(),
		Logger:          v.logger(),
		Now:             v.Now,
		Timeout:         v.Timeout,
		LookupTimeout:   v.LookupTimeout,
		MaxCNAMEs:       MaxCNAMEs,
		Limiter:         v.Limiter,
		Limits: dnssec.Limits{
			Queries:       v.MaxQueries,
			Verifications: v.MaxVerifications,
			Signatures:    v.MaxSignatures,
			KeysPerTag:    v.MaxKeysPerTag,
			NSEC3Hashes:   v.MaxNSEC3Hashes,
		},
	}
}

// Lookup implements Resolver: it resolves name and qtype through the
// upstream servers and validates the answer, or the denial, and every
// link of its CNAME/DNAME chain.
func (v *Validating) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	qname := Fqdn(name)
	if err := dnssec.CheckQuestion(qname, qtype); err != nil {
		return nil, fromDNSSEC(err, qname, qtype)
	}
	servers, err := v.servers()
	if err != nil {
		e := err.(*Error)
		e.Name, e.Type = qname, qtype
		return nil, e
	}
	r, err := v.val.Lookup(ctx, v.config(servers), qname, qtype)
	if err != nil {
		return nil, fromDNSSEC(err, qname, qtype)
	}
	return &Answer{
		Name:     qname,
		Type:     qtype,
		Records:  r.Records,
		CNAMEs:   r.CNAMEs,
		NXDomain: r.NXDomain,
		TTL:      r.TTL,
		Security: fromDNSSECSecurity(r.Security),
		EDE:      r.EDE,
		Reason:   r.Reason,
	}, nil
}

// fromDNSSEC maps an error of the validator to a *Error about the
// question name, qtype (with empty name and qtype 0 for Check's probes,
// as before the validator had its own package).
func fromDNSSEC(err error, name string, qtype uint16) *Error {
	var e *dnssec.Error
	if !errors.As(err, &e) {
		return &Error{Name: name, Type: qtype, Kind: KindIndeterminate, Err: err}
	}
	return &Error{Name: name, Type: qtype, Kind: dnssecKinds[e.Kind], Reason: e.Reason, EDE: e.EDE, Err: e.Err}
}

// dnssecKinds maps the validator's failure kinds to this package's.
var dnssecKinds = [...]Kind{
	dnssec.KindServFail:      KindServFail,
	dnssec.KindRefused:       KindRefused,
	dnssec.KindTimeout:       KindTimeout,
	dnssec.KindMalformed:     KindMalformed,
	dnssec.KindBogus:         KindBogus,
	dnssec.KindIndeterminate: KindIndeterminate,
	dnssec.KindLoop:          KindLoop,
	dnssec.KindNetwork:       KindNetwork,
}

// fromDNSSECSecurity maps the validator's verdict; it never returns
// Indeterminate for a Result (the validator's contract), and if it did,
// Indeterminate stays Indeterminate, never Insecure.
func fromDNSSECSecurity(s dnssec.Security) Security {
	switch s {
	case dnssec.Secure:
		return Secure
	case dnssec.Insecure:
		return Insecure
	}
	return Indeterminate
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
	// CheckUntrusted: the DNSKEY RRset of the root (or of another
	// anchored zone) did not validate against the trust anchors (wrong
	// anchors, a wrong clock, or a lying upstream).
	CheckUntrusted
	// CheckNoRootAnchor: Anchors holds no anchor for the root zone, so
	// every name outside the anchored zones is Insecure and DANE is off
	// for every public domain. Its Server is empty. An operator who
	// means to validate private zones only may accept it.
	CheckNoRootAnchor
	// CheckBadNegativeAnchor: an entry of NegativeAnchors is unusable
	// (no expiry, the root zone, an invalid name) and was ignored. Its
	// Server is empty and its Err a *NegativeAnchorError.
	CheckBadNegativeAnchor
)

var checkKindNames = [...]string{
	CheckUnreachable:       "unreachable",
	CheckNoDNSKEY:          "no DNSKEY for the root (DNSSEC queries blocked)",
	CheckNoRRSIG:           "RRSIGs stripped",
	CheckUntrusted:         "keys do not validate against the trust anchors",
	CheckNoRootAnchor:      "no root trust anchor (public domains are Insecure)",
	CheckBadNegativeAnchor: "unusable negative trust anchor ignored",
}

// checkKinds maps the validator's probe results to this package's.
var checkKinds = [...]CheckKind{
	dnssec.CheckUnreachable: CheckUnreachable,
	dnssec.CheckNoDNSKEY:    CheckNoDNSKEY,
	dnssec.CheckNoRRSIG:     CheckNoRRSIG,
	dnssec.CheckUntrusted:   CheckUntrusted,
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
	s := "resolver: upstream " + quote.Text(e.Server) + ": " + e.Kind.String()
	if e.Server == "" {
		s = "resolver: " + e.Kind.String()
	}
	if e.Err != nil {
		s += ": " + quote.Err(e.Err)
	}
	return s
}

// Unwrap returns the underlying error.
func (e *CheckError) Unwrap() error { return e.Err }

// Check probes every upstream server with a DO=1, CD=1 query for the
// root DNSKEY RRset and validates the keys of every anchored zone
// against its anchors. It returns nil when all servers are fit and the
// anchors usable, otherwise one *CheckError per problem (joined with
// errors.Join; match with errors.As): per unfit server, and with an
// empty Server for anchors without a root anchor (CheckNoRootAnchor: an
// error, not a warning, since DANE is then off for every public domain;
// an operator who validates private zones only may skip that kind) and
// for each unusable entry of NegativeAnchors (CheckBadNegativeAnchor).
// It is meant for start-up: a DANE client over an upstream that strips
// DNSSEC must say so, not silently fail every lookup (DESIGN: security
// invariant 6).
func (v *Validating) Check(ctx context.Context) error {
	servers, err := v.servers()
	if err != nil {
		return &CheckError{Kind: CheckUnreachable, Err: err}
	}
	cfg := v.config(nil)
	errs := v.checkAnchors()
	for _, srv := range servers {
		k, err := v.val.Check(ctx, cfg, srv)
		if k == 0 {
			continue
		}
		ce := &CheckError{Server: srv, Kind: checkKinds[k]}
		if err != nil {
			ce.Err = fromDNSSEC(err, "", 0)
		}
		errs = append(errs, ce)
	}
	return errors.Join(errs...)
}
