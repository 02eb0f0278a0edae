package smtptlstest

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxUDPSize is the largest UDP payload the front sends, whatever the
// client offers: the DNS Flag Day 2020 value, which avoids IP
// fragmentation and which common resolvers default to.
const maxUDPSize = 1232

// maxChase bounds the CNAME links the front follows for one question.
const maxChase = 16

// serveDNS is the front: a recursive resolver over the World's zones.
func (w *World) serveDNS(rw dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		w.queries.Add(1)
		m := new(dns.Msg)
		m.SetRcodeFormatError(req)
		rw.WriteMsg(m)
		return
	}
	q := req.Question[0]
	qname := strings.ToLower(q.Name)
	w.countQuery(qname, q.Qtype)
	_, udp := rw.RemoteAddr().(*net.UDPAddr)

	w.mu.RLock()
	f := (w.nameFaults(qname, q.Qtype) | w.route(qname, q.Qtype).fault) & serverFaults
	delay := w.delay
	if f&FaultDelay != 0 {
		fd := w.faultDelay
		if fd == 0 {
			fd = time.Second
		}
		delay += fd
	}
	w.mu.RUnlock()
	if !w.sleep(context.Background(), delay) {
		return
	}
	if f&FaultTimeout != 0 {
		return
	}
	resp := w.respond(req, q, qname, f)
	if udp {
		opt := req.IsEdns0()
		if f&FaultTruncate != 0 {
			resp.Answer, resp.Ns = nil, nil
			resp.Extra = keepOPT(resp.Extra)
			resp.Truncated = true
		}
		limit := dns.MinMsgSize
		if opt != nil {
			limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		}
		resp.Truncate(limit)
		if f&FaultWrongID != 0 {
			bad := resp.Copy()
			bad.Id = resp.Id ^ 0x5a5a
			rw.WriteMsg(bad)
			other := resp.Copy()
			other.Question = []dns.Question{{Name: "wrong-question." + strings.TrimPrefix(qname, "."), Qtype: otherType(q.Qtype), Qclass: q.Qclass}}
			rw.WriteMsg(other)
		}
	}
	rw.WriteMsg(resp)
}

func otherType(t uint16) uint16 {
	if t == dns.TypeTXT {
		return dns.TypeA
	}
	return dns.TypeTXT
}

func keepOPT(extra []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// respond computes the answer to one question.
func (w *World) respond(req *dns.Msg, q dns.Question, qname string, f Fault) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = false
	m.RecursionAvailable = true
	m.CheckingDisabled = req.CheckingDisabled
	m.Compress = true
	opt := req.IsEdns0()
	do := opt != nil && opt.Do()
	if opt != nil {
		m.SetEdns0(maxUDPSize, do)
		if opt.Version() != 0 {
			// RFC 6891 section 6.1.3.
			m.Rcode = dns.RcodeBadVers
			return m
		}
	}
	fail := func(rcode int, ede uint16, text string) *dns.Msg {
		m.Rcode = rcode
		if opt != nil && ede != 0 {
			o := m.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: ede, ExtraText: text})
		}
		return m
	}
	switch {
	case q.Qclass != dns.ClassINET:
		return fail(dns.RcodeRefused, dns.ExtendedErrorCodeNotSupported, "class not supported")
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR || q.Qtype == dns.TypeOPT:
		return fail(dns.RcodeRefused, dns.ExtendedErrorCodeNotSupported, "type not supported")
	case f&FaultServFail != 0:
		return fail(dns.RcodeServerFailure, 0, "")
	}

	w.mu.RLock()
	defer w.mu.RUnlock()
	res := w.resolve(qname, q.Qtype, f&FaultPartialChain != 0)
	if res.servfail {
		return fail(dns.RcodeServerFailure, res.ede, res.why)
	}
	v := w.judge(res)
	if !req.CheckingDisabled && v.st == stBogus {
		return fail(dns.RcodeServerFailure, v.ede, v.why)
	}
	m.Rcode = res.rcode
	for _, p := range res.answer {
		rrs, err := w.emit(p, do)
		if err != nil {
			return fail(dns.RcodeServerFailure, dns.ExtendedErrorCodeOther, err.Error())
		}
		m.Answer = append(m.Answer, rrs...)
	}
	for _, p := range res.auth {
		if !do && (p.rrtype == dns.TypeNSEC || p.rrtype == dns.TypeNSEC3) {
			// RFC 4035 section 3.2.1: no DNSSEC records for a client
			// that did not ask with DO.
			continue
		}
		rrs, err := w.emit(p, do)
		if err != nil {
			return fail(dns.RcodeServerFailure, dns.ExtendedErrorCodeOther, err.Error())
		}
		m.Ns = append(m.Ns, rrs...)
	}
	// RFC 6840 section 5.7: AD for clients that set DO or AD.
	m.AuthenticatedData = !req.CheckingDisabled && v.st == stSecure && (do || req.AuthenticatedData)
	return m
}

// resolution is the answer to a question, possibly from several zones.
type resolution struct {
	rcode    int
	answer   []*part
	auth     []*part
	results  []*zoneResult
	servfail bool
	ede      uint16
	why      string
}

// resolve answers (qname, qtype) from the zones, following CNAMEs across
// zones unless partial. Callers hold w.mu.
func (w *World) resolve(qname string, qtype uint16, partial bool) *resolution {
	res := &resolution{}
	seen := make(map[string]bool)
	name := qname
	for i := 0; ; i++ {
		z := w.route(name, qtype)
		if i > 0 && (w.nameFaults(name, qtype)|z.fault)&FaultServFail != 0 {
			res.servfail = true
			return res
		}
		zr := z.lookup(name, qtype)
		if zr.lame {
			res.servfail = true
			res.ede = dns.ExtendedErrorCodeNoReachableAuthority
			res.why = "delegation to a zone the World does not serve"
			return res
		}
		res.results = append(res.results, zr)
		res.answer = append(res.answer, zr.answer...)
		res.auth = append(res.auth, zr.auth...)
		res.rcode = zr.rcode
		if zr.cname == "" || partial {
			return res
		}
		seen[name] = true
		name = zr.cname
		if seen[name] || i >= maxChase {
			// A loop or an overlong chain: return it as it is, for
			// the client to see and reject.
			return res
		}
	}
}

// emit returns the RRs of a part as served: copies with the served owner
// and TTL, and with DO its RRSIG unless stripped. Callers hold w.mu.
func (w *World) emit(p *part, do bool) ([]dns.RR, error) {
	f := w.rrsetFaults(p.zone, p)
	set := p.rrs
	if p.rrtype == dns.TypeDS && f&FaultWrongDS != 0 {
		set = alterDS(set)
	}
	out := make([]dns.RR, 0, len(set)+1)
	for _, rr := range set {
		c := dns.Copy(rr)
		c.Header().Name = p.owner
		if p.ttl != 0 {
			c.Header().Ttl = p.ttl
		}
		out = append(out, c)
	}
	if !do || f&FaultStripRRSIGs != 0 {
		return out, nil
	}
	signer := p.owner
	if p.wildcard != "" {
		signer = p.wildcard
	}
	sig, err := p.zone.signature(signer, p.rrtype, set, f)
	if err != nil || sig == nil {
		return out, err
	}
	s := dns.Copy(sig).(*dns.RRSIG)
	s.Hdr.Name = p.owner
	if p.ttl != 0 {
		s.Hdr.Ttl = p.ttl
	}
	return append(out, s), nil
}

// alterDS returns copies of a DS RRset with each digest changed, so that
// none matches the child's key.
func alterDS(set []dns.RR) []dns.RR {
	out := make([]dns.RR, len(set))
	for i, rr := range set {
		c := dns.Copy(rr)
		if ds, ok := c.(*dns.DS); ok && ds.Digest != "" {
			b := []byte(strings.ToUpper(ds.Digest))
			last := len(b) - 1
			if b[last] == '0' {
				b[last] = '1'
			} else {
				b[last] = '0'
			}
			ds.Digest = string(b)
		}
		out[i] = c
	}
	return out
}
