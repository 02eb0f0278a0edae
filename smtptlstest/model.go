package smtptlstest

import (
	"strings"

	"github.com/miekg/dns"
)

// The front's CD=0 path models a validating resolver. It does not
// validate what it serves: it knows how each zone is configured and which
// faults are set, and computes from that what a correct validator (RFC
// 4033-4035, 5155, 6840, 9276) concludes. The real validators are the
// project's in-process one, which checks the CD=1 data cryptographically,
// and the real resolvers of the interop suite.

type secState int

const (
	stBogus secState = iota
	stInsecure
	stSecure
)

type verdict struct {
	st  secState
	ede uint16 // RFC 8914 info-code for a bogus verdict
	why string
}

var secure = verdict{st: stSecure}

func insecure(why string) verdict { return verdict{st: stInsecure, why: why} }

func bogus(ede uint16, why string) verdict { return verdict{st: stBogus, ede: ede, why: why} }

// worse returns the weaker verdict: a chain is only as secure as its
// weakest link (RFC 7672 section 2.1.3).
func worse(a, b verdict) verdict {
	if b.st < a.st {
		return b
	}
	return a
}

// Validation capabilities the model grants a validator: the algorithms
// RFC 8624 says to validate (and which miekg/dns verifies) and the DS
// digest types of RFC 4034, 4509 and 6605.
func algSupported(a uint8) bool {
	switch a {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512,
		dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519:
		return true
	}
	return false
}

func digestSupported(d uint8) bool {
	return d == dns.SHA1 || d == dns.SHA256 || d == dns.SHA384
}

// maxNSEC3Iterations is where validators stop trusting NSEC3 denials
// (RFC 9276 section 3.2; unbound and BIND use 150).
const maxNSEC3Iterations = 150

// edeFor maps signature faults to the Extended DNS Error a validator
// reports (RFC 8914 section 4).
func edeFor(f Fault) (uint16, string) {
	switch {
	case f&FaultExpiredSigs != 0:
		return dns.ExtendedErrorCodeSignatureExpired, "signature expired"
	case f&FaultFutureSigs != 0:
		return dns.ExtendedErrorCodeSignatureNotYetValid, "signature not yet valid"
	case f&FaultStripRRSIGs != 0:
		return dns.ExtendedErrorCodeRRSIGsMissing, "RRSIGs missing"
	default:
		return dns.ExtendedErrorCodeDNSBogus, "signature does not verify"
	}
}

// judge returns the security of a resolution: the worst of its parts and
// of the zones they come from. Callers hold w.mu.
func (w *World) judge(res *resolution) verdict {
	memo := make(map[*Zone]verdict)
	v := secure
	for _, parts := range [][]*part{res.answer, res.auth} {
		for _, p := range parts {
			v = worse(v, w.partStatus(p, memo))
		}
	}
	for _, zr := range res.results {
		if v.st == stBogus || len(zr.auth) == 0 {
			continue
		}
		z := zr.auth[0].zone
		if w.zoneStatus(z, memo).st != stSecure {
			continue
		}
		if zr.optOut {
			v = worse(v, insecure("denial by an opt-out NSEC3 span"))
		}
		if zr.nsec3 && z.cfg.NSEC3Iterations > maxNSEC3Iterations {
			v = worse(v, insecure("NSEC3 iterations above 150"))
		}
	}
	return v
}

func (w *World) partStatus(p *part, memo map[*Zone]verdict) verdict {
	zv := w.zoneStatus(p.zone, memo)
	if zv.st != stSecure {
		return zv
	}
	if f := w.rrsetFaults(p.zone, p) & sigFaults; f != 0 {
		ede, why := edeFor(f)
		return bogus(ede, why+" for "+p.owner+" "+dns.TypeToString[p.rrtype])
	}
	return secure
}

// zoneStatus returns the security of zone z as a validator starting at
// the World's root anchor sees it (RFC 4035 section 5).
func (w *World) zoneStatus(z *Zone, memo map[*Zone]verdict) verdict {
	if v, ok := memo[z]; ok {
		return v
	}
	v := w.computeZoneStatus(z, memo)
	memo[z] = v
	return v
}

func (w *World) computeZoneStatus(z *Zone, memo map[*Zone]verdict) verdict {
	if z.name == "." {
		if !z.signed() {
			return insecure("unsigned root")
		}
		return w.keysetStatus(z)
	}
	p := w.route(z.name, dns.TypeDS)
	if pv := w.zoneStatus(p, memo); pv.st != stSecure {
		return pv
	}
	dsFaults := (p.fault | w.nameFaults(z.name, dns.TypeDS)) & sigFaults
	if dsFaults != 0 {
		// The DS RRset, or its denial, does not validate.
		ede, why := edeFor(dsFaults)
		return bogus(ede, why+" for "+z.name+" DS")
	}
	dsSet := p.nodes[z.name][dns.TypeDS]
	if len(dsSet) == 0 {
		// A secure proof that no DS exists: an insecure delegation.
		return insecure("no DS for " + z.name)
	}
	wrong := (z.fault|w.nameFaults(z.name, dns.TypeDS))&FaultWrongDS != 0
	usable, match := false, false
	for _, rr := range dsSet {
		ds, ok := rr.(*dns.DS)
		if !ok || !algSupported(ds.Algorithm) || !digestSupported(ds.DigestType) {
			continue
		}
		usable = true
		if wrong || !z.signed() {
			continue
		}
		if ds.KeyTag == z.ksk.tag && ds.Algorithm == z.ksk.dnskey.Algorithm {
			if want := z.ksk.digest(ds.DigestType); want != "" && strings.EqualFold(want, ds.Digest) {
				match = true
			}
		}
	}
	switch {
	case !usable:
		// RFC 4035 section 5.2, RFC 6840 section 5.2: no DS a
		// validator can use makes the zone insecure.
		return insecure("no usable DS for " + z.name)
	case !z.signed():
		return bogus(dns.ExtendedErrorCodeDNSKEYMissing, "DS for unsigned zone "+z.name)
	case !match:
		return bogus(dns.ExtendedErrorCodeDNSKEYMissing, "no DNSKEY of "+z.name+" matches its DS")
	}
	return w.keysetStatus(z)
}

// keysetStatus judges a zone's DNSKEY RRset, signed by its KSK.
func (w *World) keysetStatus(z *Zone) verdict {
	if f := (z.fault | w.nameFaults(z.name, dns.TypeDNSKEY)) & sigFaults; f != 0 {
		ede, why := edeFor(f)
		return bogus(ede, why+" for "+z.name+" DNSKEY")
	}
	return secure
}
