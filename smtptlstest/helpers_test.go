package smtptlstest_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

// q describes one query to the World's DNS front.
type q struct {
	name  string
	qtype uint16
	do    bool // EDNS0 with DO=1
	cd    bool
	ad    bool
	udp   bool   // UDP instead of TCP
	size  uint16 // EDNS0 buffer size (with do or edns)
	edns  bool   // EDNS0 without DO
}

// exchange sends one query over the wire with a plain miekg/dns client.
func exchange(t testing.TB, w *smtptlstest.World, x q) *dns.Msg {
	t.Helper()
	r, err := tryExchange(w, x)
	if err != nil {
		t.Fatalf("%s %s: %v", x.name, dns.TypeToString[x.qtype], err)
	}
	return r
}

func tryExchange(w *smtptlstest.World, x q) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(x.name), x.qtype)
	m.CheckingDisabled = x.cd
	m.AuthenticatedData = x.ad
	if x.do || x.edns || x.size != 0 {
		size := x.size
		if size == 0 {
			size = 4096
		}
		m.SetEdns0(size, x.do)
	}
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	if x.udp {
		c.Net = "udp"
		c.UDPSize = 65535
	}
	r, _, err := c.Exchange(m, w.DNSAddr())
	return r, err
}

// rrset returns the RRs of type t owned by name in rrs.
func rrset(rrs []dns.RR, name string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == t && strings.EqualFold(h.Name, name) {
			out = append(out, rr)
		}
	}
	return out
}

func ofType(rrs []dns.RR, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			out = append(out, rr)
		}
	}
	return out
}

// sigsFor returns the RRSIGs in rrs covering (name, t).
func sigsFor(rrs []dns.RR, name string, t uint16) []*dns.RRSIG {
	var out []*dns.RRSIG
	for _, rr := range rrs {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == t && strings.EqualFold(s.Hdr.Name, name) {
			out = append(out, s)
		}
	}
	return out
}

// keys fetches the DNSKEY RRset of zone (CD=1, DO=1) and checks its
// self-signature by the KSK.
func keys(t testing.TB, w *smtptlstest.World, zone string) []*dns.DNSKEY {
	t.Helper()
	r := exchange(t, w, q{name: zone, qtype: dns.TypeDNSKEY, do: true, cd: true})
	var ks []*dns.DNSKEY
	for _, rr := range rrset(r.Answer, zone, dns.TypeDNSKEY) {
		ks = append(ks, rr.(*dns.DNSKEY))
	}
	if len(ks) == 0 {
		t.Fatalf("no DNSKEY for %s: %v", zone, r)
	}
	return ks
}

// verifyRRsets checks, as a validator would, every RRSIG in section:
// the RRset it covers, the signer's DNSKEY (fetched over the wire), the
// crypto, the validity period and the label count. It returns the number
// of RRsets verified.
func verifyRRsets(t testing.TB, w *smtptlstest.World, section []dns.RR) int {
	t.Helper()
	n := 0
	cache := make(map[string][]*dns.DNSKEY)
	for _, rr := range section {
		sig, ok := rr.(*dns.RRSIG)
		if !ok {
			continue
		}
		set := rrset(section, sig.Hdr.Name, sig.TypeCovered)
		if len(set) == 0 {
			t.Errorf("RRSIG without RRset: %v", sig)
			continue
		}
		if !dns.IsSubDomain(sig.SignerName, sig.Hdr.Name) {
			t.Errorf("signer %s is not an ancestor of %s", sig.SignerName, sig.Hdr.Name)
		}
		if int(sig.Labels) > dns.CountLabel(sig.Hdr.Name) {
			t.Errorf("RRSIG labels %d > owner labels: %v", sig.Labels, sig)
		}
		ks, ok := cache[sig.SignerName]
		if !ok {
			ks = keys(t, w, sig.SignerName)
			cache[sig.SignerName] = ks
		}
		var key *dns.DNSKEY
		for _, k := range ks {
			if k.KeyTag() == sig.KeyTag && k.Algorithm == sig.Algorithm {
				key = k
			}
		}
		if key == nil {
			t.Errorf("no DNSKEY %d for %v", sig.KeyTag, sig)
			continue
		}
		if err := sig.Verify(key, set); err != nil {
			t.Errorf("RRSIG does not verify: %v: %v", err, sig)
			continue
		}
		if !sig.ValidityPeriod(time.Now()) {
			t.Errorf("RRSIG not valid now: %v", sig)
			continue
		}
		n++
	}
	return n
}

// canonicalLess orders plain lowercase names as RFC 4034 section 6.1.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(strings.ToLower(a)), dns.SplitDomainName(strings.ToLower(b))
	slices.Reverse(la)
	slices.Reverse(lb)
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return la[i] < lb[i]
		}
	}
	return len(la) < len(lb)
}

// nsecCovers reports whether the NSEC proves that name does not exist.
func nsecCovers(n *dns.NSEC, name string) bool {
	owner, next := n.Hdr.Name, n.NextDomain
	if canonicalLess(owner, next) {
		return canonicalLess(owner, name) && canonicalLess(name, next)
	}
	// The last NSEC wraps to the apex.
	return canonicalLess(owner, name) || canonicalLess(name, next)
}

func nsecs(rrs []dns.RR) []*dns.NSEC {
	var out []*dns.NSEC
	for _, rr := range ofType(rrs, dns.TypeNSEC) {
		out = append(out, rr.(*dns.NSEC))
	}
	return out
}

func nsec3s(rrs []dns.RR) []*dns.NSEC3 {
	var out []*dns.NSEC3
	for _, rr := range ofType(rrs, dns.TypeNSEC3) {
		out = append(out, rr.(*dns.NSEC3))
	}
	return out
}

func hasType(bitmap []uint16, t uint16) bool { return slices.Contains(bitmap, t) }

// ede returns the Extended DNS Error code of r, or -1.
func ede(r *dns.Msg) int {
	if o := r.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*dns.EDNS0_EDE); ok {
				return int(e.InfoCode)
			}
		}
	}
	return -1
}
