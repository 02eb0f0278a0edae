// Package dnssec is the in-process DNSSEC validator behind
// resolver.Validating: stub validation (RFC 4033 7; RFC 4035 4 and 5) of
// answers fetched from untrusted recursive resolvers.
//
// # What it validates
//
// Validator.Lookup asks every question with RD=1, CD=1 and DO=1 through
// the module's one DNS exchange (resolver/internal/wire), ignores the
// upstream's AD bit, and builds the chain of trust itself: DS to DNSKEY
// from the trust anchors down to the signer of each answer (RFC 4035
// 5.2), RRSIG checks (signer label-wise at or above the owner, Labels,
// validity period in serial arithmetic with a bounded clock skew, REVOKE,
// zone key bit: RFC 4035 5.3, RFC 5011 2.1), wildcard expansions with their proofs (RFC 4035
// 5.3.4), NSEC and NSEC3 denial with closest encloser and opt-out (RFC
// 4035 5.4, RFC 5155 8, RFC 6840 4), CNAME and DNAME chains across zones
// with each link judged in its own zone (RFC 6672), and TTLs capped by
// the RRSIG (RFC 4035 5.3.3) and at one day.
//
// # From which anchors
//
// Only Config.Anchors, DS records of any zones (RFC 4033 3.1); the
// package has no default (resolver.RootAnchors holds the IANA ones). The
// chain of trust of a name starts at the closest anchored zone at or
// above it: an anchored zone's keys are validated against its anchors,
// never against a DS in its parent, and an RRSIG by a zone above that
// anchor is Bogus (unbound's rule). A name under no anchor is Insecure;
// no anchor at all is Indeterminate. An anchor that cannot be used (no
// supported algorithm or digest) is Indeterminate, a configuration to
// fix, not a property of the zone.
//
// Config.NegativeAnchors (RFC 7646) are checked first, by owner name,
// before any query or cache: an RRset, a denial or a zone at or below a
// negative trust anchor in force is Insecure and nothing below it is
// validated; such verdicts are never cached, so lifting an NTA takes
// effect at the next lookup. The first use in a lookup is logged once
// (RFC 7646 8) to Config.Logger.
//
// # Signature validity and clock skew
//
// RFC 4035 5.3.1 wants inception <= now <= expiration. The period is
// widened on each side by a tenth of its length, bounded to [5 minutes,
// 1 hour] (unbound's val-sig-skew-min/max do the same with [1 h, 24 h]):
// a host clock minutes off must not make fresh signatures Bogus, and an
// expired signature replayed to a DANE client stays a short window. A
// period whose expiration precedes its inception is never valid.
//
// Algorithms
// validated are those of RFC 8624 3.1 that miekg/dns verifies (5, 7, 8,
// 10, 13, 14, 15); DS digests SHA-1, SHA-256 and SHA-384, SHA-1 ignored
// next to a stronger one (RFC 4509 3). A zone whose DS RRset names only
// unsupported algorithms or digests, or RSA keys shorter than 1024 bits,
// is Insecure (RFC 4035 5.2, RFC 6840 5.2), never Bogus.
//
// # Work bounds
//
// Every lookup is bounded against KeyTrap-style responses (CVE-2023-50387,
// CVE-2023-50868) by Config.Limits: upstream queries, signature
// verifications, RRSIGs tried per RRset, keys tried per key tag, and
// NSEC3 hashes; past any bound the answer is Bogus. A DNSKEY RRset
// reached through a chain deeper than 32 zones is Bogus. An NSEC3 proof
// with more than MaxNSEC3Iterations iterations is Insecure, judged after
// its signature is verified and before any hashing (RFC 9276 3.2).
// Proofs are worked out on unverified records first, then only the
// records relied on are verified. Config.Timeout bounds each exchange,
// Config.LookupTimeout the whole lookup.
//
// # Round trips
//
// A lookup whose zone keys are not cached asks for them at the same time
// as its answer: the zone is guessed (the closest cached zone when it is
// two labels deep or more, else the ancestor of the name two labels
// deep), and the DS and DNSKEY RRsets of that zone and of every zone
// above it up to the closest cached one or the anchor are fetched at
// once, each zone in one flight shared by every lookup that needs it. A
// cold chain thus costs the round trip of the answer and no more when
// the guess is right, one more per level when it is not. These queries
// count against the lookup's Limits like any other.
//
// # What it returns
//
// A completed lookup is a *Result: records, NXDOMAIN or NODATA, Secure
// or Insecure, with its CNAME chain and TTL; an Insecure one says why in
// Result.Reason (the first insecure link, its zone and proof, names
// quoted) with an RFC 8914 code in Result.EDE where one fits (1, 2, 27). Anything else is a *Error
// whose Kind says why (KindBogus and KindIndeterminate for validation,
// others for transport and protocol failures), with an Extended DNS
// Error code (RFC 8914) where one fits and a Reason naming the zone and
// the record. A failure is never an Insecure
// Result: RFC 7672 2.1.1 makes a DANE client defer on it.
//
// # State and clock
//
// A Validator holds what lookups share: a cache of validated zone states
// (by TTL, at most one day; bounded by its estimated memory, and
// optionally by a number of zones), one key fetch per zone in flight, the
// rotation over servers, work counters. Everything else comes in the
// Config of each call, including the clock (Config.Now, read once per
// lookup; nil means time.Now): validity periods and cache lifetimes are
// judged by it alone. Network deadlines use the real time.
//
// The package imports nothing of the module but resolver/internal/wire
// and the leaves internal/quote and internal/memsize;
// resolver.Validating maps its results to resolver.Answer and
// resolver.Error.
package dnssec
