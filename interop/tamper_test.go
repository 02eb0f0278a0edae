package interop_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/smtptls/smtptls/internal/rawserver"
)

// proxy sits between Validating and the real upstream and rewrites the
// answer to one question (every question when q is zero).
type proxy struct {
	upstream string
	addr     string
	mu       sync.Mutex // guards q and tamper
	q        question
	tamper   func(p *proxy, m *dns.Msg)
}

func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	p := &proxy{upstream: upstream}
	pc, ln := rawserver.ListenPair(t)
	p.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(p.serve)
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
	return p
}

func (p *proxy) set(q question, f func(p *proxy, m *dns.Msg)) {
	p.mu.Lock()
	p.q, p.tamper = q, f
	p.mu.Unlock()
}

// ask sends a question upstream with DO=1 and CD=1.
func (p *proxy) ask(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.CheckingDisabled = true
	m.SetEdns0(4096, true)
	return p.forward(m)
}

func (p *proxy) forward(q *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", UDPSize: 4096, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(q.Copy(), p.upstream)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.Exchange(q.Copy(), p.upstream)
	}
	return r, err
}

func (p *proxy) serve(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		return
	}
	r, err := p.forward(q)
	if err != nil {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
		return
	}
	r.Id = q.Id
	p.mu.Lock()
	want, f := p.q, p.tamper
	p.mu.Unlock()
	if f != nil && (want.name == "" || (want.qtype == q.Question[0].Qtype && strings.EqualFold(dns.Fqdn(want.name), q.Question[0].Name))) {
		f(p, r)
	}
	size := dns.MinMsgSize
	if opt := q.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && r.Len() > size {
		r.Truncated, r.Answer, r.Ns = true, nil, nil
	}
	_ = w.WriteMsg(r)
}

func dropType(rrs []dns.RR, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype != t {
			out = append(out, rr)
		}
	}
	return out
}

func sigsOf(rrs []dns.RR) []*dns.RRSIG {
	var out []*dns.RRSIG
	for _, rr := range rrs {
		if s, ok := rr.(*dns.RRSIG); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestInteropTampered checks our verdict on responses an attacker between
// the validator and its upstream could forge. Only Validating sits behind
// the proxy; the verdict must be Bogus (or, for harmless padding, what the
// untouched answer gives), and KeyTrap floods must stay within the
// verification limits.
func TestInteropTampered(t *testing.T) {
	e := setup(t)
	const keyTrapLimit = 64 // Validating's default MaxVerifications
	cases := []struct {
		name   string
		q      question
		at     question // the question whose answer is rewritten; zero = q
		tamper func(t *testing.T, p *proxy, m *dns.Msg)
		want   string
	}{
		{
			name: "stripped RRSIGs on the answer",
			q:    question{qtype: dns.TypeMX, name: "example.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				m.Answer = dropType(m.Answer, dns.TypeRRSIG)
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "stripped RRSIGs on the DNSKEY RRset",
			q:    question{qtype: dns.TypeMX, name: "alg13.test"},
			at:   question{qtype: dns.TypeDNSKEY, name: "alg13.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				m.Answer = dropType(m.Answer, dns.TypeRRSIG)
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "stripped DS (unsigned NODATA)",
			q:    question{qtype: dns.TypeMX, name: "alg13.test"},
			at:   question{qtype: dns.TypeDS, name: "alg13.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				m.Answer, m.Ns = nil, dropType(dropType(dropType(m.Ns, dns.TypeRRSIG), dns.TypeNSEC3), dns.TypeNSEC)
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "altered data",
			q:    question{qtype: dns.TypeA, name: "mail.example.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				for _, rr := range m.Answer {
					if a, ok := rr.(*dns.A); ok {
						a.A = net.IPv4(192, 0, 2, 66)
					}
				}
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "altered data at the end of a CNAME chain",
			q:    question{qtype: dns.TypeA, name: "www.example.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				for _, rr := range m.Answer {
					if a, ok := rr.(*dns.A); ok {
						a.A = net.IPv4(192, 0, 2, 66)
					}
				}
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "wrong Labels: claims a wildcard expansion",
			q:    question{qtype: dns.TypeA, name: "mail.alg13.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				for _, s := range sigsOf(m.Answer) {
					s.Labels--
				}
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "wrong Labels: more labels than the owner",
			q:    question{qtype: dns.TypeA, name: "mail.alg13.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				for _, s := range sigsOf(m.Answer) {
					s.Labels = 9
				}
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "signer outside the owner's tree",
			q:    question{qtype: dns.TypeA, name: "mail.example.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				for _, s := range sigsOf(m.Answer) {
					s.SignerName = "alg13.test."
				}
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "missing wildcard proof (NSEC3)",
			q:    question{qtype: dns.TypeMX, name: "foo.wild.example.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				m.Ns = nil
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "missing wildcard proof (NSEC)",
			q:    question{qtype: dns.TypeMX, name: "x.wild.alg13.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				m.Ns = dropType(m.Ns, dns.TypeNSEC)
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "NXDOMAIN without proof",
			q:    question{qtype: dns.TypeMX, name: "nosuch.example.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				m.Ns = dropType(m.Ns, dns.TypeNSEC3)
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "existing name turned into NXDOMAIN",
			q:    question{qtype: dns.TypeMX, name: "alg13.test"},
			tamper: func(t *testing.T, p *proxy, m *dns.Msg) {
				nx, err := p.ask("nosuch.alg13.test", dns.TypeMX)
				if err != nil {
					t.Error(err)
					return
				}
				m.Rcode, m.Answer, m.Ns = dns.RcodeNameError, nil, nx.Ns
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "parent-side NSEC denies data at the delegation",
			q:    question{qtype: dns.TypeMX, name: "test"},
			tamper: func(t *testing.T, p *proxy, m *dns.Msg) {
				m.Answer, m.Ns = nil, rootNSECForTest(t, p)
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "parent-side NSEC denies a name below the delegation",
			q:    question{qtype: dns.TypeA, name: "www.test"},
			tamper: func(t *testing.T, p *proxy, m *dns.Msg) {
				m.Rcode, m.Answer, m.Ns = dns.RcodeNameError, nil, rootNSECForTest(t, p)
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "DS denial replayed from another name",
			q:    question{qtype: dns.TypeMX, name: "alg13.test"},
			at:   question{qtype: dns.TypeDS, name: "alg13.test"},
			tamper: func(t *testing.T, p *proxy, m *dns.Msg) {
				other, err := p.ask("unsigned.test", dns.TypeDS)
				if err != nil {
					t.Error(err)
					return
				}
				m.Answer, m.Ns = nil, other.Ns
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "CNAME into a bogus zone",
			q:    question{qtype: dns.TypeA, name: "bad.example.test"},
			want: "bogus/SERVFAIL",
		},
		{
			name: "KeyTrap: 300 RRSIGs with the key tag of the zone's key",
			q:    question{qtype: dns.TypeMX, name: "alg13.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				sigs := sigsOf(m.Answer)
				if len(sigs) == 0 {
					return
				}
				for range 300 {
					c := dns.Copy(sigs[0]).(*dns.RRSIG)
					c.Signature = randomSig(64)
					m.Answer = append([]dns.RR{c}, m.Answer...)
				}
				m.Answer = dropFirstValid(m.Answer, sigs)
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "KeyTrap: DNSKEY RRset padded with keys sharing the KSK's tag",
			q:    question{qtype: dns.TypeMX, name: "alg8.test"},
			at:   question{qtype: dns.TypeDNSKEY, name: "alg8.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				var ksk *dns.DNSKEY
				for _, rr := range m.Answer {
					if k, ok := rr.(*dns.DNSKEY); ok && k.Flags&dns.SEP != 0 {
						ksk = k
					}
				}
				if ksk == nil {
					return
				}
				for _, k := range collidingKeys(40, ksk.KeyTag(), ksk.Flags) {
					k.Hdr = ksk.Hdr
					m.Answer = append(m.Answer, k)
				}
				for range 100 {
					for _, s := range sigsOf(m.Answer) {
						c := dns.Copy(s).(*dns.RRSIG)
						c.Signature = randomSig(256)
						m.Answer = append(m.Answer, c)
						break
					}
				}
			},
			want: "bogus/SERVFAIL",
		},
		{
			name: "one forged RRSIG before the genuine one",
			q:    question{qtype: dns.TypeMX, name: "alg13.test"},
			tamper: func(_ *testing.T, _ *proxy, m *dns.Msg) {
				sigs := sigsOf(m.Answer)
				if len(sigs) == 0 {
					return
				}
				c := dns.Copy(sigs[0]).(*dns.RRSIG)
				c.Signature = randomSig(64)
				m.Answer = append([]dns.RR{c}, m.Answer...)
			},
			want: "secure/DATA",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, e.upstream)
			at := tc.at
			if at.name == "" {
				at = tc.q
			}
			if tc.tamper != nil {
				p.set(at, func(p *proxy, m *dns.Msg) { tc.tamper(t, p, m) })
			}
			v := e.validator(p.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			got, detail := ours(ctx, v, tc.q)
			took := time.Since(start)
			st := v.Stats()
			t.Logf("%s: %s (%s) in %v, %d verifications, %d queries", tc.q, got, detail, took.Round(time.Millisecond), st.Verifications, st.Queries)
			if got != tc.want {
				t.Errorf("%s through the proxy: %s (%s), want %s", tc.q, got, detail, tc.want)
			}
			if st.Verifications > keyTrapLimit {
				t.Errorf("%d signature verifications, above the limit %d", st.Verifications, keyTrapLimit)
			}
		})
	}
}

// rootNSECForTest returns the root zone's NSEC at "test." (a delegation:
// NS, DS, no SOA) with its RRSIG and the root SOA, taken from a real
// NXDOMAIN answer of the root.
func rootNSECForTest(t *testing.T, p *proxy) []dns.RR {
	m, err := p.ask("zz-nosuch.", dns.TypeA)
	if err != nil {
		t.Error(err)
		return nil
	}
	var out []dns.RR
	for _, rr := range m.Ns {
		h := rr.Header()
		if h.Name == "test." && (h.Rrtype == dns.TypeNSEC || (h.Rrtype == dns.TypeRRSIG && rr.(*dns.RRSIG).TypeCovered == dns.TypeNSEC)) {
			out = append(out, rr)
		}
		if h.Name == "." && (h.Rrtype == dns.TypeSOA || (h.Rrtype == dns.TypeRRSIG && rr.(*dns.RRSIG).TypeCovered == dns.TypeSOA)) {
			out = append(out, rr)
		}
	}
	if len(out) < 2 {
		t.Errorf("no root NSEC for test. in %v", m)
	}
	return out
}

// dropFirstValid removes the genuine RRSIGs, leaving only forged ones.
func dropFirstValid(rrs []dns.RR, genuine []*dns.RRSIG) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		keep := true
		for _, g := range genuine {
			if rr == dns.RR(g) {
				keep = false
			}
		}
		if keep {
			out = append(out, rr)
		}
	}
	return out
}

func randomSig(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// collidingKeys returns n different RSA DNSKEYs (random moduli) with the
// given key tag: the key-tag collision half of KeyTrap.
func collidingKeys(n int, tag, flags uint16) []*dns.DNSKEY {
	var out []*dns.DNSKEY
	for len(out) < n {
		mod := make([]byte, 256)
		_, _ = rand.Read(mod)
		mod[0] |= 0x80
		pub := append([]byte{3, 1, 0, 1}, mod...)
		wire := append([]byte{byte(flags >> 8), byte(flags), 3, 8}, pub...)
		wire[len(wire)-2], wire[len(wire)-1] = 0, 0
		sum := 0
		for i, v := range wire {
			if i&1 != 0 {
				sum += int(v)
			} else {
				sum += int(v) << 8
			}
		}
		for x := range 1 << 16 {
			s := sum + x
			s += s >> 16 & 0xffff
			if uint16(s) == tag {
				pub[len(pub)-2], pub[len(pub)-1] = byte(x>>8), byte(x)
				break
			}
		}
		k := &dns.DNSKEY{Hdr: dns.RR_Header{Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
			Flags: flags, Protocol: 3, Algorithm: dns.RSASHA256, PublicKey: base64.StdEncoding.EncodeToString(pub)}
		if k.KeyTag() == tag {
			out = append(out, k)
		}
	}
	return out
}
