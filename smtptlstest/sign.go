package smtptlstest

import (
	"encoding/base64"
	"time"

	"github.com/miekg/dns"
)

// Signature validity. Signatures are cached; a cached signature is
// replaced after resignAfter, long before it expires, so that a World may
// run for days (a demo) without serving expired data.
const (
	sigLifetime = 14 * 24 * time.Hour
	sigBackdate = time.Hour
	resignAfter = 24 * time.Hour
)

// sigKey identifies a cached RRSIG. The RRset content is implied by the
// zone's data, which drops the cache on every change, and by the faults
// that alter what is signed (FaultWrongDS) or how.
type sigKey struct {
	owner  string
	rrtype uint16
	faults Fault
}

type sigEntry struct {
	sig      *dns.RRSIG
	signedAt time.Time
}

// signature returns the RRSIG of zone z over rrs, an RRset owned by owner
// (a wildcard owner for synthesized answers), with the signature faults f
// applied. Callers hold w.mu.
func (z *Zone) signature(owner string, rrtype uint16, rrs []dns.RR, f Fault) (*dns.RRSIG, error) {
	if !z.signed() || len(rrs) == 0 {
		return nil, nil
	}
	key := sigKey{owner, rrtype, f & (FaultExpiredSigs | FaultFutureSigs | FaultBadSignature | FaultWrongDS)}
	now := time.Now()
	z.cacheMu.Lock()
	defer z.cacheMu.Unlock()
	if e := z.sigs[key]; e != nil && now.Sub(e.signedAt) < resignAfter {
		return e.sig, nil
	}
	k := z.zsk
	if rrtype == dns.TypeDNSKEY {
		// The KSK signs the DNSKEY RRset, the ZSK everything else
		// (RFC 6781 section 3.1).
		k = z.ksk
	}
	inception, expiration := now.Add(-sigBackdate), now.Add(sigLifetime)
	switch {
	case key.faults&FaultExpiredSigs != 0:
		inception, expiration = now.Add(-sigLifetime), now.Add(-24*time.Hour)
	case key.faults&FaultFutureSigs != 0:
		inception, expiration = now.Add(24*time.Hour), now.Add(sigLifetime)
	}
	ttl := rrs[0].Header().Ttl
	sig := &dns.RRSIG{
		Hdr:        dns.RR_Header{Ttl: ttl},
		Algorithm:  k.dnskey.Algorithm,
		OrigTtl:    ttl,
		Expiration: uint32(expiration.Unix()),
		Inception:  uint32(inception.Unix()),
		KeyTag:     k.tag,
		SignerName: z.name,
	}
	if err := sig.Sign(k.priv, rrs); err != nil {
		return nil, err
	}
	if key.faults&FaultBadSignature != 0 {
		if raw, err := base64.StdEncoding.DecodeString(sig.Signature); err == nil && len(raw) > 0 {
			raw[len(raw)-1] ^= 0x5a
			raw[len(raw)/2] ^= 0xa5
			sig.Signature = base64.StdEncoding.EncodeToString(raw)
		}
	}
	if z.sigs == nil {
		z.sigs = make(map[sigKey]*sigEntry)
	}
	z.sigs[key] = &sigEntry{sig: sig, signedAt: now}
	return sig, nil
}
