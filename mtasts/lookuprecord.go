package mtasts

import (
	"context"

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
	return lookupRecordAt(ctx, r, d, recordName(d))
}

// recordName is the owner of d's TXT record (RFC 8461 3.1).
func recordName(d string) string { return "_mta-sts." + d + "." }

// lookupRecordAt is lookupRecord with the owner name already built.
func lookupRecordAt(ctx context.Context, r resolver.Resolver, d, name string) (*Record, error) {
	ans, err := r.Lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, &Error{Kind: KindCanceled, Domain: d, Err: cerr}
		}
		return nil, &Error{Kind: KindDNS, Domain: d, Err: err}
	}
	var txts []string
	for _, rr := range ans.Records {
		if t, ok := rr.(*dns.TXT); ok {
			txts = append(txts, resolver.JoinTXT(t.Txt))
		}
	}
	rec, err := SelectRecord(txts)
	if err != nil {
		err.(*Error).Domain = d
		return nil, err
	}
	return rec, nil
}
