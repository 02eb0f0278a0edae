package mtasts

import (
	"context"
	"strings"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
)

// LookupRecord looks up the TXT RRset at _mta-sts.<domain> (CNAMEs are
// followed by the resolver) and applies SelectRecord to it (RFC 8461 3.1).
// domain may be in any case, with a trailing dot or U-labels.
//
// Errors are *Error: KindNoRecord (NXDOMAIN, NODATA or no STS record),
// KindMultipleRecords, KindRecordSyntax, KindDNS (the lookup failed; Err
// holds the resolver's error), KindInvalidDomain or KindCanceled.
func LookupRecord(ctx context.Context, r resolver.Resolver, domain string) (*Record, error) {
	d, err := normalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	return lookupRecord(ctx, r, d)
}

func lookupRecord(ctx context.Context, r resolver.Resolver, d string) (*Record, error) {
	ans, err := r.Lookup(ctx, "_mta-sts."+d+".", dns.TypeTXT)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, &Error{Kind: KindCanceled, Domain: d, Err: cerr}
		}
		return nil, &Error{Kind: KindDNS, Domain: d, Err: err}
	}
	var txts []string
	for _, rr := range ans.Records {
		if t, ok := rr.(*dns.TXT); ok {
			txts = append(txts, joinTXT(t.Txt))
		}
	}
	rec, err := SelectRecord(txts)
	if err != nil {
		err.(*Error).Domain = d
		return nil, err
	}
	return rec, nil
}

// joinTXT joins a TXT record's character-strings with nothing between
// them (RFC 8461 3.1), undoing the presentation escapes miekg/dns applies
// when it unpacks them ("\"" and "\\" before '"' and '\', "\DDD" for
// bytes outside printable ASCII).
func joinTXT(parts []string) string {
	var b strings.Builder
	for _, s := range parts {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c != '\\' || i+1 >= len(s) {
				b.WriteByte(c)
				continue
			}
			if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
				v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
				if v <= 255 {
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
