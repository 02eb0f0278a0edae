package resolver

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/smtptls/smtptls/internal/rawserver"
)

// A small signed DNS world for the validator's own tests: zones signed
// online with real keys (RRSIG.Sign), NSEC and NSEC3 chains (with opt-out),
// served by a miekg/dns server on loopback that answers like a recursive
// resolver asked with CD=1: it follows CNAMEs and DNAMEs across zones and
// returns raw RRSIG, NSEC and NSEC3 records, wildcard and closest encloser
// proofs included. Each test server can tamper with its responses, for
// the attacks a real signer cannot express.

type twSigning int

const (
	twUnsigned twSigning = iota
	twNSEC
	twNSEC3
	twNSEC3OptOut
)

type twCfg struct {
	signing    twSigning
	alg        uint8 // 0 = 13
	bits       int   // RSA modulus size; 0 = 1024 (the smallest Go accepts)
	iterations uint16
	salt       string
	noDS       bool          // signed, but the parent publishes no DS
	forceDS    bool          // unsigned, but the parent publishes a DS
	dsMutate   func(*dns.DS) // alter the DS in the parent
	inception  time.Time     // zero: an hour ago
	expiration time.Time     // zero: in 30 days
	revoke     bool          // the key-signing key has the REVOKE bit
	fakeSig    bool          // keys and signatures of random bytes (Ed448)
	smallRSA   bool          // a 768-bit RSA key, signed without crypto/rsa
	extraKeys  []*dns.DNSKEY // published in the DNSKEY RRset
	ksks       int           // number of KSKs (0 = 1); only ksk[signWith] signs
	signWith   int           // which KSK signs the DNSKEY RRset
}

type twKey struct {
	key  *dns.DNSKEY
	priv crypto.Signer
}

type twZone struct {
	w     *twWorld
	name  string
	cfg   twCfg
	ksk   []*twKey
	zsk   *twKey
	rrs   map[string]map[uint16][]dns.RR
	sigs  map[string]map[uint16][]*dns.RRSIG
	nsec  map[string]*dns.NSEC
	order []string // NSEC owners, canonical order
	nsec3 []*dns.NSEC3
}

type twWorld struct {
	t       testing.TB
	mu      sync.RWMutex // guards zones and their contents
	zones   map[string]*twZone
	anchors []*dns.DS
}

// twNewWorld returns a world with a signed root (NSEC, algorithm 13).
func twNewWorld(t testing.TB) *twWorld {
	w := &twWorld{t: t, zones: map[string]*twZone{}}
	w.zone(".", twCfg{signing: twNSEC})
	return w
}

// zone adds a zone with the given records (zone-file lines relative to
// the apex) and delegates to it from the deepest enclosing zone.
func (w *twWorld) zone(name string, cfg twCfg, lines ...string) *twZone {
	w.t.Helper()
	name = twLower(dns.Fqdn(name))
	if cfg.alg == 0 {
		cfg.alg = dns.ECDSAP256SHA256
	}
	z := &twZone{w: w, name: name, cfg: cfg, rrs: map[string]map[uint16][]dns.RR{}}
	z.add(fmt.Sprintf("@ IN SOA ns.%s hostmaster.%s 1 3600 600 86400 300", twTrimRoot(name), twTrimRoot(name)),
		"@ IN NS ns.nic.")
	if cfg.signing != twUnsigned {
		n := max(cfg.ksks, 1)
		for i := range n {
			z.ksk = append(z.ksk, w.newKey(name, 257, cfg))
			if cfg.revoke && i == 0 {
				z.ksk[0].key.Flags |= dns.REVOKE
			}
		}
		z.zsk = w.newKey(name, 256, cfg)
		for _, k := range z.ksk {
			z.addRR(k.key)
		}
		z.addRR(z.zsk.key)
		for _, k := range cfg.extraKeys {
			c := dns.Copy(k).(*dns.DNSKEY)
			c.Hdr = dns.RR_Header{Name: name, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 300}
			z.addRR(c)
		}
		if cfg.signing == twNSEC3 || cfg.signing == twNSEC3OptOut {
			z.addRR(&dns.NSEC3PARAM{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET},
				Hash: dns.SHA1, Iterations: cfg.iterations, Salt: cfg.salt, SaltLength: uint8(len(cfg.salt) / 2)})
		}
	}
	z.add(lines...)
	w.mu.Lock()
	w.zones[name] = z
	w.mu.Unlock()
	if name != "." {
		p := w.parentZone(name)
		if p == nil {
			w.t.Fatalf("no parent zone for %s", name)
		}
		p.add(name + " IN NS ns.nic.")
	}
	return z
}

func twTrimRoot(name string) string {
	if name == "." {
		return "root."
	}
	return name
}

func (w *twWorld) parentZone(name string) *twZone {
	var best *twZone
	for n, z := range w.zones {
		if n != name && twIsAncestor(n, name) && (best == nil || dns.CountLabel(n) > dns.CountLabel(best.name)) {
			best = z
		}
	}
	return best
}

func (w *twWorld) newKey(name string, flags uint16, cfg twCfg) *twKey {
	w.t.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 300},
		Flags: flags, Protocol: 3, Algorithm: cfg.alg}
	switch {
	case cfg.fakeSig:
		buf := make([]byte, 57)
		_, _ = rand.Read(buf)
		k.PublicKey = base64.StdEncoding.EncodeToString(buf)
		return &twKey{key: k}
	case cfg.smallRSA:
		priv := twRawRSAKey(768)
		k.PublicKey = twRSAPublic(priv.n, 65537)
		return &twKey{key: k, priv: priv}
	}
	bits := 256
	switch cfg.alg {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512:
		bits = cfg.bits
		if bits == 0 {
			bits = 1024
		}
	case dns.ECDSAP384SHA384:
		bits = 384
	}
	// Key tag 0 is valid, but miekg/dns refuses to sign with it (ErrKey):
	// one key in 65,536 made a test fail with "bad key". Draw again.
	for {
		priv, err := k.Generate(bits)
		if err != nil {
			w.t.Fatalf("generate key alg %d: %v", cfg.alg, err)
		}
		if k.KeyTag() != 0 {
			return &twKey{key: k, priv: priv.(crypto.Signer)}
		}
	}
}

// add parses zone-file lines relative to the apex ("@" is the apex).
func (z *twZone) add(lines ...string) {
	z.w.t.Helper()
	if len(lines) == 0 {
		return
	}
	zp := dns.NewZoneParser(strings.NewReader("$TTL 300\n"+strings.Join(lines, "\n")+"\n"), z.name, "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		z.addRR(rr)
	}
	if err := zp.Err(); err != nil {
		z.w.t.Fatalf("zone %s: %v", z.name, err)
	}
}

func (z *twZone) addRR(rr dns.RR) {
	h := rr.Header()
	h.Name = twLower(h.Name)
	if z.rrs[h.Name] == nil {
		z.rrs[h.Name] = map[uint16][]dns.RR{}
	}
	z.rrs[h.Name][h.Rrtype] = append(z.rrs[h.Name][h.Rrtype], rr)
}

// seal publishes the DS records and signs every zone. Call it once all
// zones exist, before serving.
func (w *twWorld) seal() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, z := range w.zones {
		if name == "." {
			continue
		}
		p := w.parentZone(name)
		var ds []*dns.DS
		switch {
		case z.cfg.signing != twUnsigned && !z.cfg.noDS:
			for _, k := range z.ksk {
				ds = append(ds, k.key.ToDS(dns.SHA256))
			}
		case z.cfg.forceDS:
			k := w.newKey(name, 257, twCfg{alg: dns.ECDSAP256SHA256})
			ds = append(ds, k.key.ToDS(dns.SHA256))
		}
		for _, d := range ds {
			if z.cfg.dsMutate != nil {
				z.cfg.dsMutate(d)
			}
			p.addRR(d)
		}
	}
	root := w.zones["."]
	w.anchors = nil
	for _, k := range root.ksk {
		w.anchors = append(w.anchors, k.key.ToDS(dns.SHA256))
	}
	for _, z := range w.zones {
		z.sign()
	}
}

// delegations returns the delegation points of z (NS below the apex).
func (z *twZone) isCut(name string) bool {
	return name != z.name && z.rrs[name][dns.TypeNS] != nil
}

// occluded reports whether name lies below a delegation point of z.
func (z *twZone) occluded(name string) bool {
	for n := twParent(name); n != z.name && twIsAncestor(z.name, n); n = twParent(n) {
		if z.isCut(n) {
			return true
		}
		if n == "." {
			break
		}
	}
	return false
}

func (z *twZone) sign() {
	z.sigs = map[string]map[uint16][]*dns.RRSIG{}
	z.nsec, z.order, z.nsec3 = nil, nil, nil
	if z.cfg.signing == twUnsigned {
		return
	}
	var owners []string
	for n := range z.rrs {
		if !z.occluded(n) {
			owners = append(owners, n)
		}
	}
	sort.Slice(owners, func(i, j int) bool { return twLess(owners[i], owners[j]) })
	for _, n := range owners {
		for t, set := range z.rrs[n] {
			if t == dns.TypeNS && z.isCut(n) {
				continue
			}
			if t == dns.TypeDNSKEY {
				k := z.ksk[z.cfg.signWith]
				z.addSig(n, t, z.sigOver(set, k))
				continue
			}
			z.addSig(n, t, z.sigOver(set, z.zsk))
		}
	}
	switch z.cfg.signing {
	case twNSEC:
		z.order = owners
		z.nsec = map[string]*dns.NSEC{}
		for i, n := range owners {
			next := owners[(i+1)%len(owners)]
			types := []uint16{dns.TypeNSEC, dns.TypeRRSIG}
			for t := range z.rrs[n] {
				types = append(types, t)
			}
			sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
			rr := &dns.NSEC{Hdr: dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300}, NextDomain: next, TypeBitMap: types}
			z.nsec[n] = rr
			z.addSig(n, dns.TypeNSEC, z.sigOver([]dns.RR{rr}, z.zsk))
		}
	default:
		optOut := z.cfg.signing == twNSEC3OptOut
		names := map[string]bool{}
		for _, n := range owners {
			insecureCut := z.isCut(n) && z.rrs[n][dns.TypeDS] == nil
			if optOut && insecureCut {
				continue
			}
			for a := n; twIsAncestor(z.name, a); a = twParent(a) {
				names[a] = true
				if a == z.name {
					break
				}
			}
		}
		type h struct {
			hash, name string
		}
		var hs []h
		for n := range names {
			hs = append(hs, h{dns.HashName(n, dns.SHA1, z.cfg.iterations, z.cfg.salt), n})
		}
		sort.Slice(hs, func(i, j int) bool { return hs[i].hash < hs[j].hash })
		for i, x := range hs {
			var types []uint16
			signed := false
			for t := range z.rrs[x.name] {
				types = append(types, t)
				if !(t == dns.TypeNS && z.isCut(x.name)) {
					signed = true
				}
			}
			if signed {
				types = append(types, dns.TypeRRSIG)
			}
			sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
			flags := uint8(0)
			if optOut {
				flags = 1
			}
			owner := strings.ToLower(x.hash) + "." + strings.TrimPrefix(z.name, ".")
			if z.name == "." {
				owner = strings.ToLower(x.hash) + "."
			}
			rr := &dns.NSEC3{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
				Hash: dns.SHA1, Flags: flags, Iterations: z.cfg.iterations, Salt: z.cfg.salt, SaltLength: uint8(len(z.cfg.salt) / 2),
				HashLength: 20, NextDomain: hs[(i+1)%len(hs)].hash, TypeBitMap: types}
			z.nsec3 = append(z.nsec3, rr)
			z.addSig(owner, dns.TypeNSEC3, z.sigOver([]dns.RR{rr}, z.zsk))
		}
	}
}

func (z *twZone) addSig(name string, t uint16, sig *dns.RRSIG) {
	if z.sigs[name] == nil {
		z.sigs[name] = map[uint16][]*dns.RRSIG{}
	}
	z.sigs[name][t] = append(z.sigs[name][t], sig)
}

func (z *twZone) sigOver(set []dns.RR, k *twKey) *dns.RRSIG {
	return z.w.signWith(set, k, z.name, z.cfg)
}

// signWith signs set as signer with key k.
func (w *twWorld) signWith(set []dns.RR, k *twKey, signer string, cfg twCfg) *dns.RRSIG {
	w.t.Helper()
	inc, exp := cfg.inception, cfg.expiration
	if inc.IsZero() {
		inc = time.Now().Add(-time.Hour)
	}
	if exp.IsZero() {
		exp = time.Now().Add(30 * 24 * time.Hour)
	}
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: set[0].Header().Ttl}, Algorithm: k.key.Algorithm, SignerName: signer,
		KeyTag: k.key.KeyTag(), Inception: uint32(inc.Unix()), Expiration: uint32(exp.Unix())}
	if k.priv == nil {
		h := set[0].Header()
		sig.Hdr = dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl}
		sig.TypeCovered, sig.OrigTtl, sig.Labels = h.Rrtype, h.Ttl, uint8(twSigLabels(h.Name))
		buf := make([]byte, 114)
		_, _ = rand.Read(buf)
		sig.Signature = base64.StdEncoding.EncodeToString(buf)
		return sig
	}
	if err := sig.Sign(k.priv, set); err != nil {
		w.t.Fatalf("sign %s: %v", set[0].Header().Name, err)
	}
	return sig
}

// twRawRSA is an RSA key Go's crypto/rsa refuses (fewer than 1024 bits),
// signing PKCS #1 v1.5 with plain big-number arithmetic.
type twRawRSA struct {
	n, d *big.Int
}

func twRawRSAKey(bits int) *twRawRSA {
	e := big.NewInt(65537)
	for {
		p, _ := rand.Prime(rand.Reader, bits/2)
		q, _ := rand.Prime(rand.Reader, bits/2)
		n := new(big.Int).Mul(p, q)
		phi := new(big.Int).Mul(new(big.Int).Sub(p, big.NewInt(1)), new(big.Int).Sub(q, big.NewInt(1)))
		d := new(big.Int).ModInverse(e, phi)
		if d != nil && n.BitLen() == bits {
			return &twRawRSA{n: n, d: d}
		}
	}
}

func (k *twRawRSA) Public() crypto.PublicKey { return &rsa.PublicKey{N: k.n, E: 65537} }

func (k *twRawRSA) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	size := (k.n.BitLen() + 7) / 8
	em := make([]byte, size)
	em[1] = 1
	t := append(prefix, digest...)
	for i := 2; i < size-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[size-len(t):], t)
	s := new(big.Int).Exp(new(big.Int).SetBytes(em), k.d, k.n)
	return s.FillBytes(make([]byte, size)), nil
}

// twRSAPublic encodes an RSA public key as DNSKEY data (RFC 3110 2).
func twRSAPublic(n *big.Int, e int) string {
	eb := big.NewInt(int64(e)).Bytes()
	buf := append([]byte{byte(len(eb))}, eb...)
	buf = append(buf, n.Bytes()...)
	return base64.StdEncoding.EncodeToString(buf)
}

// twCollidingKeys returns n distinct RSA DNSKEYs (algorithm 8, random
// 2048-bit moduli, not real key pairs) whose key tag is tag: a KeyTrap
// zone's payload.
func twCollidingKeys(n int, tag uint16) []*dns.DNSKEY {
	var out []*dns.DNSKEY
	for len(out) < n {
		mod := make([]byte, 256)
		_, _ = rand.Read(mod)
		mod[0] |= 0x80
		pub := append([]byte{3, 1, 0, 1}, mod...)
		wire := append([]byte{1, 0, 3, 8}, pub...) // flags 256, protocol 3, algorithm 8
		// The last two octets form one 16-bit word when the length is
		// even; search the value that makes the checksum come out right.
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
			if uint16(s&0xffff) == tag {
				pub[len(pub)-2], pub[len(pub)-1] = byte(x>>8), byte(x)
				break
			}
		}
		k := &dns.DNSKEY{Hdr: dns.RR_Header{Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 300},
			Flags: 256, Protocol: 3, Algorithm: dns.RSASHA256, PublicKey: base64.StdEncoding.EncodeToString(pub)}
		if k.KeyTag() == tag {
			out = append(out, k)
		}
	}
	return out
}

// --- answering -------------------------------------------------------------

func (w *twWorld) zoneFor(name string, qtype uint16) *twZone {
	var best *twZone
	for n, z := range w.zones {
		if twIsAncestor(n, name) && (best == nil || dns.CountLabel(n) > dns.CountLabel(best.name)) {
			best = z
		}
	}
	if best != nil && qtype == dns.TypeDS && best.name == name && name != "." {
		best = w.parentZone(name)
	}
	return best
}

func (z *twZone) withSigs(name string, t uint16, owner string) []dns.RR {
	var out []dns.RR
	for _, rr := range z.rrs[name][t] {
		c := dns.Copy(rr)
		c.Header().Name = owner
		out = append(out, c)
	}
	for _, s := range z.sigs[name][t] {
		c := dns.Copy(s)
		c.Header().Name = owner
		out = append(out, c)
	}
	return out
}

func (z *twZone) exists(name string) bool {
	if z.occluded(name) {
		return false
	}
	if len(z.rrs[name]) > 0 {
		return true
	}
	for n := range z.rrs {
		if n != name && twIsAncestor(name, n) && !z.occluded(n) {
			return true
		}
	}
	return false
}

func (z *twZone) soa() []dns.RR { return z.withSigs(z.name, dns.TypeSOA, z.name) }

func (z *twZone) nsecFor(owner string) []dns.RR {
	if n := z.nsec[owner]; n != nil {
		return append([]dns.RR{dns.Copy(n)}, z.sigRRs(owner, dns.TypeNSEC)...)
	}
	return nil
}

func (z *twZone) sigRRs(owner string, t uint16) []dns.RR {
	var out []dns.RR
	for _, s := range z.sigs[owner][t] {
		out = append(out, dns.Copy(s))
	}
	return out
}

// nsecCovering returns the NSEC whose span holds name.
func (z *twZone) nsecCovering(name string) []dns.RR {
	for i := len(z.order) - 1; i >= 0; i-- {
		if twLess(z.order[i], name) {
			return z.nsecFor(z.order[i])
		}
	}
	return z.nsecFor(z.order[len(z.order)-1])
}

func (z *twZone) nsec3Match(name string) []dns.RR {
	h := dns.HashName(name, dns.SHA1, z.cfg.iterations, z.cfg.salt)
	for _, rr := range z.nsec3 {
		if strings.EqualFold(strings.SplitN(rr.Hdr.Name, ".", 2)[0], h) {
			return append([]dns.RR{dns.Copy(rr)}, z.sigRRs(rr.Hdr.Name, dns.TypeNSEC3)...)
		}
	}
	return nil
}

func (z *twZone) nsec3Cover(name string) []dns.RR {
	h := dns.HashName(name, dns.SHA1, z.cfg.iterations, z.cfg.salt)
	for i := len(z.nsec3) - 1; i >= 0; i-- {
		o := strings.ToUpper(strings.SplitN(z.nsec3[i].Hdr.Name, ".", 2)[0])
		if o < h {
			return append([]dns.RR{dns.Copy(z.nsec3[i])}, z.sigRRs(z.nsec3[i].Hdr.Name, dns.TypeNSEC3)...)
		}
	}
	last := z.nsec3[len(z.nsec3)-1]
	return append([]dns.RR{dns.Copy(last)}, z.sigRRs(last.Hdr.Name, dns.TypeNSEC3)...)
}

// closestEncloser returns the closest provable encloser of name and the
// next closer name, in NSEC3 terms (names with NSEC3 records).
func (z *twZone) closestEncloser3(name string) (ce, nc string) {
	nc = name
	for a := twParent(name); ; a = twParent(a) {
		if z.nsec3Match(a) != nil {
			return a, nc
		}
		nc = a
		if a == z.name || a == "." {
			return a, nc
		}
	}
}

func (z *twZone) closestEncloser(name string) string {
	for a := twParent(name); ; a = twParent(a) {
		if a == z.name || z.exists(a) {
			return a
		}
	}
}

func twDedupe(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	seen := map[string]bool{}
	for _, rr := range rrs {
		if s := rr.String(); !seen[s] {
			seen[s] = true
			out = append(out, rr)
		}
	}
	return out
}

// answer answers name/qtype from z: records, the name to chase next, the
// authority section and the rcode.
func (z *twZone) answer(name string, qtype uint16) (ans, ns []dns.RR, next string, rcode int) {
	signed := z.cfg.signing != twUnsigned
	nsec3 := z.cfg.signing == twNSEC3 || z.cfg.signing == twNSEC3OptOut
	// DNAME above name (RFC 6672).
	for a := twParent(name); twIsAncestor(z.name, a) && name != z.name; a = twParent(a) {
		if d := z.rrs[a][dns.TypeDNAME]; d != nil {
			target := strings.TrimSuffix(name, a) + d[0].(*dns.DNAME).Target
			ans = append(ans, z.withSigs(a, dns.TypeDNAME, a)...)
			ans = append(ans, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d[0].Header().Ttl}, Target: target})
			return ans, nil, target, dns.RcodeSuccess
		}
		if a == z.name || a == "." {
			break
		}
	}
	if z.exists(name) {
		if qtype != dns.TypeDS || name == z.name || z.isCut(name) {
			if z.rrs[name][qtype] != nil {
				return z.withSigs(name, qtype, name), nil, "", dns.RcodeSuccess
			}
		}
		if c := z.rrs[name][dns.TypeCNAME]; c != nil && qtype != dns.TypeCNAME {
			return z.withSigs(name, dns.TypeCNAME, name), nil, c[0].(*dns.CNAME).Target, dns.RcodeSuccess
		}
		ns = z.soa()
		if signed {
			switch {
			case !nsec3 && z.nsec[name] != nil:
				ns = append(ns, z.nsecFor(name)...)
			case !nsec3:
				ns = append(ns, z.nsecCovering(name)...) // empty non-terminal
			case z.nsec3Match(name) != nil:
				ns = append(ns, z.nsec3Match(name)...)
			default: // opt-out: no NSEC3 for an unsigned delegation
				ce, nc := z.closestEncloser3(name)
				ns = append(ns, z.nsec3Match(ce)...)
				ns = append(ns, z.nsec3Cover(nc)...)
			}
		}
		return nil, twDedupe(ns), "", dns.RcodeSuccess
	}
	ce := z.closestEncloser(name)
	wild := twWildcard(ce)
	nc := twSuffix(name, dns.CountLabel(ce)+1)
	var proof []dns.RR
	if signed {
		if nsec3 {
			proof = append(proof, z.nsec3Cover(nc)...)
		} else {
			proof = append(proof, z.nsecCovering(name)...)
		}
	}
	if z.rrs[wild] != nil {
		if z.rrs[wild][qtype] != nil {
			return z.withSigs(wild, qtype, name), twDedupe(proof), "", dns.RcodeSuccess
		}
		if c := z.rrs[wild][dns.TypeCNAME]; c != nil {
			return z.withSigs(wild, dns.TypeCNAME, name), twDedupe(proof), c[0].(*dns.CNAME).Target, dns.RcodeSuccess
		}
		ns = z.soa()
		if signed {
			if nsec3 {
				ns = append(ns, z.nsec3Match(ce)...)
				ns = append(ns, proof...)
				ns = append(ns, z.nsec3Match(wild)...)
			} else {
				ns = append(ns, proof...)
				ns = append(ns, z.nsecFor(wild)...)
			}
		}
		return nil, twDedupe(ns), "", dns.RcodeSuccess
	}
	ns = z.soa()
	if signed {
		if nsec3 {
			ce3, nc3 := z.closestEncloser3(name)
			ns = append(ns, z.nsec3Match(ce3)...)
			ns = append(ns, z.nsec3Cover(nc3)...)
			ns = append(ns, z.nsec3Cover(twWildcard(ce3))...)
		} else {
			ns = append(ns, proof...)
			ns = append(ns, z.nsecCovering(wild)...)
		}
	}
	return nil, twDedupe(ns), "", dns.RcodeNameError
}

// resolve answers like a recursive resolver asked with CD=1.
func (w *twWorld) resolve(qname string, qtype uint16) *dns.Msg {
	w.mu.RLock()
	defer w.mu.RUnlock()
	m := new(dns.Msg)
	name := twLower(qname)
	for range 12 {
		z := w.zoneFor(name, qtype)
		if z == nil {
			m.Rcode = dns.RcodeRefused
			return m
		}
		ans, ns, next, rcode := z.answer(name, qtype)
		m.Answer = append(m.Answer, ans...)
		if next == "" {
			m.Ns, m.Rcode = ns, rcode
			return m
		}
		name = twLower(next)
	}
	return m
}

// twServer is one loopback front of a world, with its own tampering.
type twServer struct {
	addr    string
	queries atomic.Int64
	mu      sync.Mutex // guards tamper
	tamper  func(q, r *dns.Msg)
}

// serve starts a UDP and TCP front on loopback; it stops when t ends.
func (w *twWorld) serve(t testing.TB, tamper func(q, r *dns.Msg)) *twServer {
	t.Helper()
	s := &twServer{tamper: tamper}
	// UDP and TCP on one port: a kernel-chosen UDP port may be taken for
	// TCP (by some client's ephemeral port), so try a few.
	pc, ln := rawserver.ListenPair(t)
	s.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(func(rw dns.ResponseWriter, q *dns.Msg) {
		s.queries.Add(1)
		if len(q.Question) != 1 {
			return
		}
		r := w.resolve(q.Question[0].Name, q.Question[0].Qtype)
		r.SetRcode(q, r.Rcode)
		r.Authoritative, r.RecursionAvailable = false, true
		s.mu.Lock()
		tf := s.tamper
		s.mu.Unlock()
		if tf != nil {
			tf(q, r)
		}
		size := dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
			r.SetEdns0(opt.UDPSize(), opt.Do())
		}
		if _, udp := rw.RemoteAddr().(*net.UDPAddr); udp && r.Len() > size {
			r.Truncated = true
			r.Answer, r.Ns = nil, nil
			var opt []dns.RR
			for _, rr := range r.Extra {
				if rr.Header().Rrtype == dns.TypeOPT {
					opt = append(opt, rr)
				}
			}
			r.Extra = opt
		}
		if err := rw.WriteMsg(r); err != nil {
			t.Errorf("test server: %v", err)
		}
	})
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return s
}

// validator returns a Validating for the world behind s.
func (w *twWorld) validator(s *twServer) *Validating {
	return &Validating{Servers: []string{s.addr}, Anchors: w.anchors, Timeout: 2 * time.Second}
}

// Name helpers of the world. They are the test's own, not the validator's
// (resolver/internal/dnssec), so that a bug in one is not hidden by the
// same bug in the other.

func twLower(name string) string { return dns.CanonicalName(name) }

func twIsAncestor(anc, name string) bool { return dns.IsSubDomain(anc, name) }

func twParent(name string) string {
	idx := dns.Split(name)
	if len(idx) <= 1 {
		return "."
	}
	return name[idx[1]:]
}

// twSuffix returns the rightmost n labels of name.
func twSuffix(name string, n int) string {
	idx := dns.Split(name)
	switch {
	case n <= 0:
		return "."
	case n >= len(idx):
		return name
	}
	return name[idx[len(idx)-n]:]
}

// twSigLabels counts labels as RRSIG Labels does (RFC 4034 3.1.3).
func twSigLabels(owner string) int {
	n := dns.CountLabel(owner)
	if strings.HasPrefix(owner, "*.") {
		n--
	}
	return n
}

func twWildcard(name string) string {
	if name == "." {
		return "*."
	}
	return "*." + name
}

// twLess orders names canonically (RFC 4034 6.1): label by label from
// the right, each as lowercase wire octets, a shorter name first.
func twLess(a, b string) bool {
	labels := func(name string) (out [][]byte, ok bool) {
		var buf [256]byte
		off, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
		if err != nil {
			return nil, false
		}
		for i := 0; buf[i] != 0 && i < off; i += 1 + int(buf[i]) {
			out = append(out, bytes.ToLower(buf[i+1:i+1+int(buf[i])]))
		}
		return out, true
	}
	la, oka := labels(a)
	lb, okb := labels(b)
	if !oka || !okb {
		return false
	}
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		if c := bytes.Compare(la[len(la)-i], lb[len(lb)-i]); c != 0 {
			return c < 0
		}
	}
	return len(la) < len(lb)
}
