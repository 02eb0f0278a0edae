package dnssec

import "github.com/miekg/dns"

// guessLabels is the depth of the zone the validator guesses for a name
// whose closest known zone is the root or a TLD: most names an MTA asks
// about (a mail domain, its MX hosts, _mta-sts and _25._tcp records) lie
// in a zone two labels deep, registered under a TLD.
const guessLabels = 2

// prefetchKeys starts fetching the keys the answer to qname will most
// likely need, without waiting, so that the DS and DNSKEY queries of a
// cold chain of trust go out with the answer query instead of a round
// trip after it. The zone is guessed, since only the answer's RRSIG
// names it for sure: the closest zone the cache holds at or above qname
// when it lies two labels deep or more (a zone cut below it is then
// unusual), otherwise the ancestor of qname two labels deep (the
// registered domain). The keys of that zone and of every zone above it
// up to the closest cached one (or the trust anchor) are fetched at
// once, each zone's in its key flight. Nothing is
// started when the keys are cached, when the name lies in a zone known
// to be insecure, under a negative trust anchor or under no anchor.
//
// Bounded work: the prefetch runs as part of this lookup, so its queries
// and verifications are spent from the lookup's own Limits, like any
// other; it shares the Validator's key flight of the zone with every
// lookup that needs the same keys (one set of queries for concurrent
// lookups of one domain); and it ends with the lookup's context. A wrong
// guess costs the queries of one zone that is not a cut (DS and DNSKEY,
// and the denial's verification); the answer's own signer is then
// fetched after the answer, as without a prefetch.
func (l *lookup) prefetchKeys(qname string) {
	if l.v.cache == nil {
		// Without a cache the keys are fetched per lookup anyway;
		// keep the lookup's work as it was.
		return
	}
	if z, _ := l.ntas.active(qname, l.now); z != "" {
		return
	}
	anchor := l.anchors.closest(qname)
	if anchor == "" {
		return
	}
	known := l.closestKnown(qname, anchor)
	if known != nil && known.status == statusInsecure {
		return
	}
	guess := anchor
	if known != nil {
		guess = known.name
	}
	if n := dns.CountLabel(qname); dns.CountLabel(guess) < guessLabels && n > dns.CountLabel(guess) {
		guess = suffix(qname, min(n, guessLabels))
	}
	if known != nil && guess == known.name {
		return // the keys are cached
	}
	// Every zone from the guess up to the closest known one (or to the
	// anchor, whose keys are not cached either) gets its key flight now:
	// a lookup that needs one of them later (a walk down for unsigned
	// data, a DS signer) joins that flight instead of starting its own
	// after this one reaches it.
	zones := make(map[string]bool, 3)
	for z := guess; known == nil || z != known.name; z = parent(z) {
		zones[z] = true
		if z == anchor || z == "." {
			break
		}
	}
	// Complete before the first flight starts: flights read it.
	l.prefetched = zones
	for z := range zones {
		go func() {
			// The outcome is cached (or shared with the lookups waiting
			// on the flight); an error is found again by whoever needs
			// the keys, with this lookup's budget spent the same way.
			_, _ = l.keys(z, keysOpt{speculate: true})
		}()
	}
}

// closestKnown is the cached state of qname or of its closest ancestor
// that has one, looking no higher than top (zoneCache.deepest), without
// allocating: it runs before every answer query, warm ones included.
func (l *lookup) closestKnown(qname, top string) *zoneState {
	for n := qname; ; {
		if z := l.v.cache.get(n, l.now); z != nil {
			return z
		}
		if n == top || n == "." {
			return nil
		}
		if off, end := dns.NextLabel(n, 0); end {
			n = "."
		} else {
			n = n[off:]
		}
	}
}
