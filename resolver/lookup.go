package resolver

import (
	"context"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// LookupMX looks up the MX RRset of domain. A domain without MX records
// returns an empty slice and the Answer (NODATA or NXDOMAIN); the caller
// decides what that means (RFC 5321 5.1, RFC 7505).
func LookupMX(ctx context.Context, r Resolver, domain string) ([]*dns.MX, *Answer, error) {
	a, err := r.Lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, nil, err
	}
	return typed[*dns.MX](a), a, nil
}

// LookupTLSA looks up the TLSA RRset at _port._tcp.host (RFC 7672 2.2.3).
// A CNAME at that name is followed; the caller keeps host as the TLSA base
// domain either way.
func LookupTLSA(ctx context.Context, r Resolver, port int, host string) ([]*dns.TLSA, *Answer, error) {
	name := "_" + strconv.Itoa(port) + "._tcp." + strings.TrimSuffix(host, ".")
	a, err := r.Lookup(ctx, name, dns.TypeTLSA)
	if err != nil {
		return nil, nil, err
	}
	return typed[*dns.TLSA](a), a, nil
}

// LookupTXT looks up the TXT RRset of name and returns one string per
// record, its character-strings joined with nothing between (RFC 8461 3.1,
// RFC 8460 3).
func LookupTXT(ctx context.Context, r Resolver, name string) ([]string, *Answer, error) {
	a, err := r.Lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, nil, err
	}
	txts := typed[*dns.TXT](a)
	out := make([]string, len(txts))
	for i, t := range txts {
		out[i] = JoinTXT(t.Txt)
	}
	return out, a, nil
}

// JoinTXT returns the character-strings of a TXT record (as miekg/dns
// keeps them, in escaped presentation form: `\"`, `\009`) joined with
// nothing between and unescaped to the bytes that were on the wire.
func JoinTXT(parts []string) string {
	if len(parts) == 1 && strings.IndexByte(parts[0], '\\') < 0 {
		return parts[0]
	}
	var b strings.Builder
	for _, s := range parts {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c != '\\' || i+1 >= len(s) {
				b.WriteByte(c)
				continue
			}
			if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
				if v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); v <= 255 {
					b.WriteByte(byte(v))
					i += 3
					continue
				}
			}
			b.WriteByte(s[i+1])
			i++
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// LookupAddrs looks up the A and AAAA RRsets of host concurrently.
//
// The returned Answer describes both: Type is A, CNAMEs is the chain of
// whichever lookup followed one, TTL the smaller, Security the worse of the
// two, and NXDomain is true only when both say so.
//
// If both lookups fail, or either fails with a DNSSEC or protocol error
// (KindBogus, KindIndeterminate, KindMalformed, KindLoop), the error is
// returned: a forged or broken answer must stop delivery to this host
// (RFC 7672 2.1.2). So is any failure of one family, transient or not,
// next to a Secure answer of the other: the host's addresses are signed,
// so its address lookups are the first of the queries that locate its
// TLSA records (RFC 7672 2.2.2), and when any of those fails ("bogus" or
// "indeterminate" records, timeouts, malformed replies, SERVFAIL
// responses, etc.) the client "MUST treat that server as compromised and
// MUST NOT deliver mail via that server" (RFC 7672 2.1.2). That rule does
// not depend on telling bogus from SERVFAIL, which a Stub cannot (a
// validating upstream answers SERVFAIL for both), so every Resolver
// reaches the same verdict. A transient failure of one family (SERVFAIL,
// timeout, refused, network) while the other returned Insecure addresses
// yields those addresses, as MTAs do with hosts that mishandle AAAA
// queries: DANE does not apply to a host with insecure addresses, so
// nothing is lost; the security of the answer is then that of the
// successful lookup alone.
func LookupAddrs(ctx context.Context, r Resolver, host string) ([]netip.Addr, *Answer, error) {
	type res struct {
		a   *Answer
		err error
	}
	var (
		a4, a6     *Answer
		err4, err6 error
		hit        bool
	)
	if p, ok := r.(peeker); ok {
		// Both answers cached: no goroutine, no channel.
		var hit4, hit6 bool
		a4, hit4, err4 = p.Peek(host, dns.TypeA)
		a6, hit6, err6 = p.Peek(host, dns.TypeAAAA)
		hit = hit4 && hit6
	}
	if !hit {
		ch := make(chan res, 1)
		go func() {
			a, err := r.Lookup(ctx, host, dns.TypeAAAA)
			ch <- res{a, err}
		}()
		a4, err4 = r.Lookup(ctx, host, dns.TypeA)
		r6 := <-ch
		a6, err6 = r6.a, r6.err
	}

	if err4 != nil && err6 != nil {
		return nil, nil, err4
	}
	for _, err := range []error{err4, err6} {
		if err != nil && !transient(err) {
			return nil, nil, err
		}
	}
	switch {
	case err4 != nil && a6.Security == Secure:
		return nil, nil, err4
	case err6 != nil && a4.Security == Secure:
		return nil, nil, err6
	}
	var addrs []netip.Addr
	add := func(a *Answer) {
		if a == nil {
			return
		}
		for _, rr := range a.Records {
			var ip []byte
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A.To4()
			case *dns.AAAA:
				ip = v.AAAA.To16()
			}
			if ad, ok := netip.AddrFromSlice(ip); ok {
				addrs = append(addrs, ad)
			}
		}
	}
	add(a4)
	add(a6)
	if err4 != nil || err6 != nil {
		if len(addrs) == 0 {
			if err4 != nil {
				return nil, nil, err4
			}
			return nil, nil, err6
		}
		if a4 == nil {
			a4 = a6
		}
		out := *a4
		out.Type = dns.TypeA
		out.Records = nil
		return addrs, &out, nil
	}
	out := *a4
	if len(out.CNAMEs) == 0 {
		out.CNAMEs = a6.CNAMEs
	}
	out.TTL = min(a4.TTL, a6.TTL)
	if a6.Security < a4.Security {
		out.EDE, out.Reason = a6.EDE, a6.Reason
	}
	out.Security = a4.Security.Worse(a6.Security)
	out.NXDomain = a4.NXDomain && a6.NXDomain
	out.Records = nil
	return addrs, &out, nil
}

// peeker is implemented by caches that can answer without a query.
type peeker interface {
	Peek(name string, qtype uint16) (*Answer, bool, error)
}

func transient(err error) bool {
	var e *Error
	if !asError(err, &e) {
		return false
	}
	switch e.Kind {
	case KindServFail, KindTimeout, KindRefused, KindNetwork:
		return true
	}
	return false
}

func typed[T dns.RR](a *Answer) []T {
	out := make([]T, 0, len(a.Records))
	for _, rr := range a.Records {
		if v, ok := rr.(T); ok {
			out = append(out, v)
		}
	}
	return out
}
