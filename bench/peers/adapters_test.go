package peers

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/mjl-/adns"
	moxdane "github.com/mjl-/mox/dane"
	moxdns "github.com/mjl-/mox/dns"
	moxmtasts "github.com/mjl-/mox/mtasts"
	moxtlsrpt "github.com/mjl-/mox/tlsrpt"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/tlsrpt"
	"github.com/smtptls/smtptls/tlsverify"
)

// The adapters below reduce each implementation's result to one canonical
// outcome string, so that the two can be compared and shown side by side.
// Error texts are never part of an outcome (they differ by design and are
// never matched); an invalid input is simply "invalid".

const invalid = "invalid"

// moxPolicyLimit is the bound mox's FetchPolicy puts on a policy body
// (mtasts/mtasts.go: moxio.LimitReader with 64*1024): mox enforces it while
// reading, not in ParsePolicy, so the harness applies it before calling
// ParsePolicy to compare the same stage.
const moxPolicyLimit = 64 * 1024

// discard is the logger handed to mox: an MTA runs it with a logger, and a
// discarding one keeps log output out of the measurements.
var discard = slog.New(slog.DiscardHandler)

func pairs[T any](xs []T, kv func(T) (string, string)) string {
	var b strings.Builder
	for _, x := range xs {
		k, v := kv(x)
		fmt.Fprintf(&b, " %s=%s", k, strconv.Quote(v))
	}
	return b.String()
}

// MTA-STS TXT record (RFC 8461 3.1).

func oursRecord(txt string) string {
	r, err := mtasts.ParseRecord(txt)
	if err != nil {
		return invalid
	}
	return "id=" + r.ID + pairs(r.Extensions, func(e mtasts.Extension) (string, string) { return e.Key, e.Value })
}

func moxRecord(txt string) string {
	r, _, err := moxmtasts.ParseRecord(txt)
	if err != nil {
		return invalid
	}
	return "id=" + r.ID + pairs(r.Extensions, func(e moxmtasts.Pair) (string, string) { return e.Key, e.Value })
}

// MTA-STS policy (RFC 8461 3.2).

func oursPolicy(body []byte) string {
	p, err := mtasts.ParsePolicy(body)
	if err != nil {
		return invalid
	}
	return policyOutcome(string(p.Mode), int64(p.MaxAge.Seconds()), p.MX) +
		pairs(p.Extensions, func(e mtasts.Extension) (string, string) { return e.Key, e.Value })
}

func moxPolicy(body []byte) string {
	if len(body) > moxPolicyLimit {
		return invalid
	}
	p, err := moxmtasts.ParsePolicy(string(body))
	if err != nil {
		return invalid
	}
	mx := make([]string, len(p.MX))
	for i, m := range p.MX {
		mx[i] = moxPattern(m)
	}
	return policyOutcome(string(p.Mode), int64(p.MaxAgeSeconds), mx) +
		pairs(p.Extensions, func(e moxmtasts.Pair) (string, string) { return e.Key, e.Value })
}

func moxPattern(m moxmtasts.MX) string {
	if m.Wildcard {
		return "*." + m.Domain.ASCII
	}
	return m.Domain.ASCII
}

func policyOutcome(mode string, maxAge int64, mx []string) string {
	return fmt.Sprintf("%s max_age=%d mx=[%s]", mode, maxAge, strings.Join(mx, " "))
}

// MX matching (RFC 8461 4.1). Both sides get the patterns as a policy
// would hold them and the host as the MX RRset names it.

func oursMatch(patterns []string, host string) string {
	p := &mtasts.Policy{Mode: mtasts.Enforce, MX: patterns}
	return matchOutcome(p.Match(host))
}

// moxMatch builds the patterns the way mox's policy parser does
// (dns.ParseDomain of the name after an optional "*.", which IDNA-maps
// U-labels) and parses the host the way mox's delivery code does before
// calling Matches (smtpclient/gather.go: dns.ParseDomainLax of the MX
// target without its trailing dot). A pattern or host mox cannot parse
// cannot match.
func moxMatch(patterns []string, host string) string {
	p, h, ok := moxMatchInputs(patterns, host)
	if !ok {
		return matchOutcome(false)
	}
	return matchOutcome(p.Matches(h))
}

func moxMatchInputs(patterns []string, host string) (*moxmtasts.Policy, moxdns.Domain, bool) {
	p := &moxmtasts.Policy{Version: "STSv1", Mode: moxmtasts.ModeEnforce}
	for _, pat := range patterns {
		name, wild := strings.CutPrefix(pat, "*.")
		d, err := moxdns.ParseDomain(name)
		if err != nil {
			continue
		}
		p.MX = append(p.MX, moxmtasts.MX{Wildcard: wild, Domain: d})
	}
	h, err := moxdns.ParseDomainLax(strings.TrimSuffix(host, "."))
	if err != nil {
		return p, moxdns.Domain{}, false
	}
	return p, h, true
}

func matchOutcome(m bool) string {
	if m {
		return "match"
	}
	return "no match"
}

// TLS-RPT TXT record (RFC 8460 3).

func oursTLSRPT(txt string) string {
	r, err := tlsrpt.ParseRecord(txt)
	if err != nil {
		return invalid
	}
	return "rua=[" + strings.Join(r.RUA, " ") + "]" +
		pairs(r.Extensions, func(e tlsrpt.Extension) (string, string) { return e.Key, e.Value })
}

func moxTLSRPT(txt string) string {
	r, _, err := moxtlsrpt.ParseRecord(txt)
	if err != nil {
		return invalid
	}
	var rua []string
	for _, l := range r.RUAs {
		for _, u := range l {
			rua = append(rua, string(u))
		}
	}
	return "rua=[" + strings.Join(rua, " ") + "]" +
		pairs(r.Extensions, func(e moxtlsrpt.Extension) (string, string) { return e.Key, e.Value })
}

// DANE (RFC 7672 3, RFC 7671 5). Outcomes: "accept", "reject", or
// "no usable records" (RFC 7672 2.2: TLS without authentication, which is
// neither an accept nor a reject of the certificate).

const noUsable = "no usable records"

// oursDANE verifies chain against records for the reference name, with
// the real clock (mox's Verify has no clock parameter). detail names the
// matched record or the failure, for logs only.
func oursDANE(records []tlsverify.TLSA, chain []*x509.Certificate, name string) (outcome, detail string) {
	d := &tlsverify.DANE{Records: records, Names: []string{name}}
	m, err := d.VerifyChain(chain)
	if err == nil {
		return "accept", fmt.Sprintf("%d %d %d at depth %d", m.Record.Usage, m.Record.Selector, m.Record.MatchingType, m.Depth)
	}
	var e *tlsverify.Error
	if errors.As(err, &e) && e.Kind == tlsverify.KindNoUsableRecords {
		return noUsable, ""
	}
	return "reject", err.Error()
}

// moxDANE runs mox's dane.Verify as mox's SMTP client does: first the
// record filter of smtpclient.GatherTLSA (filterUsableTLSARecords, which is
// unexported and transcribed in moxUsable), then Verify with the TLSA base
// domain as the allowed host and no PKIX roots.
func moxDANE(records []tlsverify.TLSA, chain []*x509.Certificate, name string) (outcome, detail string) {
	recs := moxUsable(moxRecords(records))
	if len(recs) == 0 {
		return noUsable, ""
	}
	cs := tls.ConnectionState{PeerCertificates: chain}
	ok, r, err := moxdane.Verify(discard, recs, cs, moxdns.Domain{ASCII: name}, nil, nil)
	if ok {
		return "accept", fmt.Sprintf("%d %d %d", r.Usage, r.Selector, r.MatchType)
	}
	if err != nil {
		return "reject", err.Error()
	}
	return "reject", "no match"
}

func moxRecords(records []tlsverify.TLSA) []adns.TLSA {
	out := make([]adns.TLSA, len(records))
	for i, r := range records {
		out[i] = adns.TLSA{
			Usage:     adns.TLSAUsage(r.Usage),
			Selector:  adns.TLSASelector(r.Selector),
			MatchType: adns.TLSAMatchType(r.MatchingType),
			CertAssoc: r.Data,
		}
	}
	return out
}

// moxUsable is mox v0.0.15 smtpclient/gather.go filterUsableTLSARecords,
// without its debug logging: only DANE-TA(2) and DANE-EE(3), known
// selectors and matching types, parseable Full(0) data and digests of the
// right length.
func moxUsable(l []adns.TLSA) []adns.TLSA {
	var out []adns.TLSA
	for _, r := range l {
		switch r.Usage {
		case adns.TLSAUsageDANETA, adns.TLSAUsageDANEEE:
		default:
			continue
		}
		switch r.Selector {
		case adns.TLSASelectorCert, adns.TLSASelectorSPKI:
		default:
			continue
		}
		switch r.MatchType {
		case adns.TLSAMatchTypeFull:
			if r.Selector == adns.TLSASelectorCert {
				if _, err := x509.ParseCertificate(r.CertAssoc); err != nil {
					continue
				}
			} else if _, err := x509.ParsePKIXPublicKey(r.CertAssoc); err != nil {
				continue
			}
		case adns.TLSAMatchTypeSHA256:
			if len(r.CertAssoc) != sha256.Size {
				continue
			}
		case adns.TLSAMatchTypeSHA512:
			if len(r.CertAssoc) != sha512.Size {
				continue
			}
		default:
			continue
		}
		out = append(out, r)
	}
	return out
}
