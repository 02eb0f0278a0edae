package resolver

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver/internal/wire"
)

// DefaultTimeout is the per-server query timeout of a Stub whose Timeout is
// zero.
const DefaultTimeout = 3 * time.Second

// resolvConf is where a Stub with no Servers finds its resolvers.
const resolvConf = "/etc/resolv.conf"

// Stub is a client of recursive resolvers that trusts their AD bit for
// DNSSEC status, as Postfix and most MTAs do. It implements Resolver.
//
// Trusting AD is only as safe as the path to the resolver: anyone on that
// path can set the bit. A Stub therefore trusts AD only when every server is
// on a loopback address (a validating resolver on the same host), or when
// TrustAD says the path is otherwise protected. From any other server every
// answer is Insecure, which disables DANE, and the Evaluator's start-up probe
// reports it.
//
// A Stub keeps a few sockets to its servers open between lookups and
// reuses them, each for a bounded number of queries over a few seconds,
// every query with a new random ID; it closes them itself once they have
// been idle for two seconds, so it needs no Close.
//
// A Stub must not be copied after first use. The zero value queries the
// nameservers of /etc/resolv.conf.
type Stub struct {
	// Servers lists recursive resolvers as host:port. Empty means the
	// nameservers of /etc/resolv.conf, on port 53.
	Servers []string

	// TrustAD trusts the AD bit even when some server is not on a loopback
	// address, like glibc's "options trust-ad". Set it only when the path
	// to every server is protected (a private link, DNS over TLS, IPsec):
	// an on-path attacker who can set AD can forge "secure" answers and
	// with them TLSA records for any MX. The zero value (false) trusts AD
	// only from loopback servers.
	TrustAD bool

	// Timeout bounds one query to one server, the TCP retry of a
	// truncated answer included. Zero means DefaultTimeout. A UDP query
	// unanswered after a third of it is sent again, twice at most (RFC
	// 1123 6.1.3.3), so that a lost datagram does not fail the lookup; a
	// Timeout under 750 ms leaves no room for that. The context bounds
	// the whole lookup.
	Timeout time.Duration

	// Limiter, if not nil, is waited on before every query sent to a
	// server (see Limiter); an error from it ends the lookup with that
	// error. Nil means no limit.
	Limiter Limiter

	once    sync.Once
	servers []string
	confErr error
	adTrust bool
	next    atomic.Uint32 // index of the server to try first
	pool    wire.Pool     // sockets reused between queries
}

func (s *Stub) init() {
	s.once.Do(func() {
		s.servers = s.Servers
		if len(s.servers) == 0 {
			cc, err := dns.ClientConfigFromFile(resolvConf)
			if err != nil {
				s.confErr = err
				return
			}
			for _, h := range cc.Servers {
				s.servers = append(s.servers, net.JoinHostPort(h, cc.Port))
			}
			if len(s.servers) == 0 {
				s.confErr = errors.New("no nameservers in " + resolvConf)
			}
		}
		s.adTrust = s.TrustAD || allLoopback(s.servers)
	})
}

// CloseIdleConnections closes the sockets the Stub keeps open between
// queries, as net/http's Transport.CloseIdleConnections does. Nothing
// requires it: a socket unused for two seconds is closed anyway, and an
// idle Stub holds no goroutine. It is for a program that wants its
// sockets gone now (at shutdown, or before measuring its memory); the
// Stub stays usable and opens new sockets for its next queries.
func (s *Stub) CloseIdleConnections() { s.pool.CloseIdle() }

// TrustsAD reports whether the Stub believes the AD bit of its servers,
// that is whether it can ever return a Secure answer. An MTA that wants
// DANE should check it at start-up.
func (s *Stub) TrustsAD() bool {
	s.init()
	return s.confErr == nil && s.adTrust
}

// allLoopback reports whether every host:port is a loopback address.
func allLoopback(servers []string) bool {
	if len(servers) == 0 {
		return false
	}
	for _, hp := range servers {
		h, _, err := net.SplitHostPort(hp)
		if err != nil {
			return false
		}
		if strings.EqualFold(h, "localhost") {
			continue
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Unmap().IsLoopback() {
			return false
		}
	}
	return true
}

// Lookup implements Resolver. It sends the question with RD, AD (RFC 6840
// 5.7) and EDNS0 with DO set, retries over TCP when the UDP answer is
// truncated, fails over to the next server on SERVFAIL, REFUSED, timeouts
// and malformed replies, and follows CNAME chains, re-querying when a
// server returned only part of a chain, up to MaxCNAMEs links.
func (s *Stub) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	qname := Fqdn(name)
	if err := checkName(qname, qtype); err != nil {
		return nil, err
	}
	s.init()
	if s.confErr != nil {
		return nil, &Error{Name: qname, Type: qtype, Kind: KindNetwork, Reason: "no servers", Err: s.confErr}
	}
	ans := &Answer{Name: qname, Type: qtype, Security: Secure}
	c := chase{ans: ans, ttl: math.MaxUint32, cur: qname}
	for {
		r, err := s.query(ctx, c.cur, qtype)
		if err != nil {
			return nil, err
		}
		sec := Insecure
		if s.adTrust && r.AuthenticatedData {
			sec = Secure
		}
		if sec == Insecure && ans.Reason == "" {
			ans.EDE, ans.Reason = s.insecureWhy(r, c.cur)
		}
		ans.Security = ans.Security.Worse(sec)
		done, err := c.step(r)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		// The server stopped at a CNAME target without saying anything
		// about it: ask for the target (the chain so far stays in ans).
	}
	if c.ttl == math.MaxUint32 {
		c.ttl = 0
	}
	ans.TTL = time.Duration(c.ttl) * time.Second
	return ans, nil
}

// chase follows a CNAME chain through one or more responses.
type chase struct {
	ans *Answer
	ttl uint32
	cur string // the name whose records are wanted next
}

// step consumes one response to a question for c.cur. It reports done when
// the answer is complete (records, NXDOMAIN or NODATA), and false when the
// response ended at a CNAME target it says nothing about, which the caller
// must ask for next. Peer data only ever narrows the answer: records of
// other names, classes or types are ignored.
func (c *chase) step(r *dns.Msg) (done bool, err error) {
	ans := c.ans
	qtype := ans.Type
	start := c.cur
	var recs []dns.RR
	for {
		var cname *dns.CNAME
		for _, rr := range r.Answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, c.cur) {
				continue
			}
			switch {
			case h.Rrtype == qtype:
				h.Name = c.cur
				recs = append(recs, rr)
				c.ttl = min(c.ttl, h.Ttl)
			case h.Rrtype == dns.TypeCNAME && qtype != dns.TypeCNAME && cname == nil:
				cname = rr.(*dns.CNAME)
			}
		}
		if len(recs) > 0 || cname == nil {
			break
		}
		next := Fqdn(cname.Target)
		if next == ans.Name || len(ans.CNAMEs) >= MaxCNAMEs || contains(ans.CNAMEs, next) {
			return false, &Error{Name: ans.Name, Type: qtype, Kind: KindLoop,
				Reason: "CNAME chain loops or exceeds " + strconv.Itoa(MaxCNAMEs) + " links"}
		}
		ans.CNAMEs = append(ans.CNAMEs, next)
		c.ttl = min(c.ttl, cname.Hdr.Ttl)
		c.cur = next
	}
	switch {
	case len(recs) > 0:
		ans.Records = recs
		return true, nil
	case r.Rcode == dns.RcodeNameError:
		// RFC 6604 3: with a CNAME chain, NXDOMAIN is about the last name.
		ans.NXDomain = true
		c.ttl = min(c.ttl, negTTL(r, c.cur))
		return true, nil
	case c.cur == start || hasSOAFor(r, c.cur):
		// NODATA: the server answered for c.cur itself.
		c.ttl = min(c.ttl, negTTL(r, c.cur))
		return true, nil
	}
	return false, nil
}

// query asks the servers in turn, starting with the one that last worked.
func (s *Stub) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	// No ID: the exchange gives every query a new random one.
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{RecursionDesired: true, AuthenticatedData: true},
		Question: []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}},
	}
	m.SetEdns0(wire.EDNSSize, true)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	n := uint32(len(s.servers))
	first := s.next.Load() % n
	var lastErr error
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		idx := (first + i) % n
		if err := waitLimiter(ctx, s.Limiter, name, qtype); err != nil {
			return nil, err
		}
		r, err := exchange(ctx, &s.pool, s.servers[idx], m, timeout)
		if err == nil {
			switch r.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				if idx != first {
					s.next.Store(idx)
				}
				return r, nil
			case dns.RcodeServerFailure:
				err = &Error{Name: name, Type: qtype, Kind: KindServFail, Reason: "SERVFAIL from " + s.servers[idx], EDE: edeCode(r)}
			default:
				err = &Error{Name: name, Type: qtype, Kind: KindRefused, Reason: dns.RcodeToString[r.Rcode] + " from " + s.servers[idx], EDE: edeCode(r)}
			}
		}
		lastErr = err
	}
	if err := wire.CtxErr(ctx); err != nil {
		return nil, &Error{Name: name, Type: qtype, Kind: KindTimeout, Reason: "lookup abandoned", Err: err}
	}
	s.next.Store((first + 1) % n)
	return nil, lastErr
}

// checkName rejects names that cannot be asked (RFC 1035 2.3.4).
func checkName(qname string, qtype uint16) error {
	if _, ok := dns.IsDomainName(qname); !ok || len(qname) > 254 {
		return &Error{Name: qname, Type: qtype, Kind: KindMalformed, Reason: "invalid domain name"}
	}
	return nil
}

// negTTL is the negative-caching TTL of RFC 2308 5: the smaller of the SOA's
// TTL and its MINIMUM field, from an SOA that is an ancestor of name.
func negTTL(r *dns.Msg, name string) uint32 {
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, name) {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return 0
}

func hasSOAFor(r *dns.Msg, name string) bool {
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, name) {
			return true
		}
	}
	return false
}

// insecureWhy says why an answer to a question for name is Insecure: the
// upstream's Extended DNS Error (RFC 8914) when it sent one, otherwise
// whether AD was missing or not trusted.
func (s *Stub) insecureWhy(r *dns.Msg, name string) (uint16, string) {
	if o := r.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if ede, ok := e.(*dns.EDNS0_EDE); ok {
				why := "upstream Extended DNS Error " + strconv.Itoa(int(ede.InfoCode))
				if ede.ExtraText != "" {
					why += ": " + quoteBounded(ede.ExtraText)
				}
				return ede.InfoCode, quoteBounded(name) + ": " + why
			}
		}
	}
	if !s.adTrust {
		return 0, quoteBounded(name) + ": AD bit not trusted (a server is not on loopback and TrustAD is off)"
	}
	return 0, quoteBounded(name) + ": the upstream did not set the AD bit"
}

// edeCode returns the first Extended DNS Error code in r (RFC 8914), or 0.
func edeCode(r *dns.Msg) uint16 {
	if o := r.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if ede, ok := e.(*dns.EDNS0_EDE); ok {
				return ede.InfoCode
			}
		}
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
