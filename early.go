package smtptls

import (
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
)

// earlyTLSA reports whether the TLSA RRset of host may be asked for at
// the same time as its addresses (dane.Options.EarlyTLSA), which makes a
// cold DANE decision two round trips (MX; addresses and TLSA) rather than
// three. RFC 7672 2.2.2 says a client SHOULD NOT look up TLSA records
// for a host whose address response is insecure, so the query is only
// sent early for a host whose zone is already known to be signed:
//
//   - the host lies at or below the owner of a secure MX RRset (the
//     recipient domain, or its CNAME expansion): the zone that signed the
//     MX RRset holds the host unless an unsigned zone is delegated in
//     between, which mail domains rarely do;
//   - or the resolver's cache holds a secure address answer of another
//     host with the same parent name (signedZones): a provider's zone
//     that holds the MX hosts of many domains is learnt once.
//
// For any other host (an MX host of unknown zone, a relay) the TLSA
// query waits for the addresses, as RFC 7672 2.2.2 describes. The early
// answer is read only if the addresses turn out secure, and never waited
// for otherwise (dane.LookupWith), so the decision is the same either
// way.
func (e *Evaluator) earlyTLSA(dec *Decision, host string, r resolver.Resolver) bool {
	if e.sequential {
		return false
	}
	if dec.MXSecure && !dec.Relay && (inDomain(host, dec.Domain) || (dec.MXCNAME != "" && inDomain(host, dec.MXCNAME))) {
		return true
	}
	return e.signed.holds(host, r)
}

// inDomain reports whether host is domain or lies below it, label-wise.
// Both are lowercase A-labels without the trailing dot.
func inDomain(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// maxSignedZones bounds the parent names signedZones remembers.
const maxSignedZones = 4096

// signedZones remembers, for the parent name of MX hosts whose address
// answers were secure, one such host, so that a sibling host in the same
// zone (a provider's mx1.<customer>.mail.provider.example next to
// mx1.<other>.mail.provider.example) is known to be in a signed zone.
// The name only says where to look: the evidence is the resolver's cache,
// read with Peek, so that it lasts as long as the secure answer's TTL
// and no longer. It is bounded (maxSignedZones, an arbitrary name goes
// when full) and safe for concurrent use; its zero value is ready.
type signedZones struct {
	mu    sync.Mutex        // guards hosts
	hosts map[string]string // parent name -> host
}

// add remembers that host's address answer was secure.
func (s *signedZones) add(host string) {
	p, ok := parentName(host)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hosts[p] != "" {
		return
	}
	if s.hosts == nil {
		s.hosts = make(map[string]string)
	}
	if len(s.hosts) >= maxSignedZones {
		for k := range s.hosts {
			delete(s.hosts, k)
			break
		}
	}
	s.hosts[p] = host
}

// holds reports whether r's cache holds a secure address answer of a
// host with the same parent name as host (another one: host's own
// answers make an early lookup pointless).
func (s *signedZones) holds(host string, r resolver.Resolver) bool {
	pk, ok := r.(peeker)
	if !ok {
		return false
	}
	p, ok := parentName(host)
	if !ok {
		return false
	}
	s.mu.Lock()
	sib := s.hosts[p]
	s.mu.Unlock()
	if sib == "" || sib == host {
		return false
	}
	a, hit, err := pk.Peek(sib, dns.TypeA)
	return hit && err == nil && a.Security == resolver.Secure
}

// parentName returns the parent of a host name below a TLD: a host
// directly under a TLD (or a TLD) has no zone worth remembering.
func parentName(host string) (string, bool) {
	i := strings.IndexByte(host, '.')
	if i < 0 || !strings.Contains(host[i+1:], ".") {
		return "", false
	}
	return host[i+1:], true
}
