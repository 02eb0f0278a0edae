package main

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/publicsuffix"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/examples/internal/rollover"
	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/tlsrpt"
)

// surveyor surveys domains with one Evaluator; safe for concurrent use.
type surveyor struct {
	res    resolver.Resolver // the Evaluator's, with its cache
	ev     *smtptls.Evaluator
	sts    *mtasts.Client
	probes *prober // nil without -starttls
}

// survey builds the Record of one normalised domain.
func (s *surveyor) survey(ctx context.Context, domain string, rank int) Record {
	rec := Record{Domain: domain, Rank: rank, MX: []MXHost{}}
	// TLS-RPT does not depend on the MX: look it up meanwhile.
	type rpt struct {
		ok  bool
		err error
	}
	rptc := make(chan rpt, 1)
	go func() {
		ok, err := s.tlsRPT(ctx, domain)
		rptc <- rpt{ok, err}
	}()
	err := s.mxAndPolicy(ctx, domain, &rec)
	r := <-rptc
	rec.TLSRPT = r.ok
	if err == nil {
		err = r.err
	}
	if err != nil {
		// A domain that could not be surveyed carries only its error:
		// a partial record would count in the summary as what it is not.
		return Record{Domain: domain, Rank: rank, MX: []MXHost{}, Error: err.Error()}
	}
	return rec
}

// mxAndPolicy fills in everything but TLSRPT. The Evaluator does the
// work an MTA would do (MX and MTA-STS concurrently, then every host's
// DANE lookups); its errors say whether the domain exists and takes mail.
func (s *surveyor) mxAndPolicy(ctx context.Context, domain string, rec *Record) error {
	rec.DANE = daneNone
	dec, err := s.ev.Evaluate(ctx, domain)
	nx, null := errors.Is(err, smtptls.ErrNoSuchDomain), errors.Is(err, smtptls.ErrNullMX)
	if err != nil && !nx && !null {
		return err
	}
	if nx || null {
		// The MX answer is in the cache the Evaluator just filled; only
		// its DNSSEC status is wanted.
		_, ans, err := resolver.LookupMX(ctx, s.res, domain)
		if err != nil {
			return err
		}
		rec.MXSecure = ans.Security == resolver.Secure
		if nx {
			// No _mta-sts name can exist below a name that does not.
			rec.MXStatus, rec.MTASTS = mxNXDomain, stsAbsent
			return nil
		}
		rec.MXStatus = mxNull
		r, err := s.sts.Lookup(ctx, domain)
		if err != nil {
			return err
		}
		rec.MTASTS, err = stsStatus(r)
		return err
	}
	rec.MXStatus, rec.MXSecure = mxOK, dec.MXSecure
	if dec.ImplicitMX {
		rec.MXStatus = mxImplicit
	}
	if rec.MTASTS, err = stsStatus(dec.STS); err != nil {
		return err
	}
	hosts := slices.Clone(dec.Hosts)
	slices.SortFunc(hosts, func(a, b *smtptls.Host) int {
		return cmp.Or(cmp.Compare(a.Preference, b.Preference), strings.Compare(a.Name, b.Name))
	})
	rec.MX = make([]MXHost, len(hosts))
	usable := 0
	for i, h := range hosts {
		rec.MX[i] = MXHost{Host: h.Name, Preference: h.Preference, TLSA: tlsaStatus(h)}
		if rec.MX[i].TLSA == tlsaUsable {
			usable++
		}
	}
	// RFC 7672 2.2.1: only a secure MX RRset lets DANE protect the
	// domain; its hosts' TLSA records alone do not.
	if rec.MXSecure && usable > 0 {
		rec.DANE = danePartial
		if usable == len(hosts) {
			rec.DANE = daneFull
		}
	}
	if len(hosts) > 0 {
		rec.Provider = provider(hosts[0].Name)
	}
	if s.probes != nil {
		if err := s.probeHosts(ctx, hosts, rec.MX); err != nil {
			return err
		}
	}
	return nil
}

// provider is the registered domain of a host name by the public suffix
// list, or "" for an MX target that is not a host name (an address such
// as "192.0.2.44", which is never a host's name) or a public suffix.
func provider(host string) string {
	if _, err := dnsname.Mail.Normalize(host); err != nil {
		return ""
	}
	p, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return ""
	}
	return p
}

// stsStatus maps an MTA-STS lookup to Record.MTASTS; a TXT lookup that
// could not be completed is an error (the status is unknown).
func stsStatus(r *mtasts.Result) (string, error) {
	if r == nil {
		return "", errors.New("MTA-STS was not consulted")
	}
	switch r.RecordStatus {
	case mtasts.RecordAbsent:
		return stsAbsent, nil
	case mtasts.RecordInvalid:
		return stsInvalid, nil
	case mtasts.RecordFound:
		switch r.Mode {
		case mtasts.Enforce:
			return stsEnforce, nil
		case mtasts.Testing:
			return stsTesting, nil
		case mtasts.None:
			return stsNone, nil
		}
		return stsInvalid, nil // a record, but no policy could be had
	}
	if r.RecordError == nil {
		return "", errors.New("MTA-STS lookup without an outcome")
	}
	return "", r.RecordError
}

// tlsRPT reports whether the domain publishes exactly one valid TLS-RPT
// record (RFC 8460 3).
func (s *surveyor) tlsRPT(ctx context.Context, domain string) (bool, error) {
	txts, _, err := resolver.LookupTXT(ctx, s.res, "_smtp._tls."+domain+".")
	if err != nil {
		return false, err
	}
	_, err = tlsrpt.SelectRecord(txts)
	return err == nil, nil
}

// tlsaStatus classifies a host's DANE lookup.
func tlsaStatus(h *smtptls.Host) string {
	if h.DANE != nil {
		switch h.DANE.Level {
		case dane.Authenticate:
			return tlsaUsable
		case dane.Encrypt:
			return tlsaUnusable
		}
		return tlsaNone
	}
	var re *resolver.Error
	if !errors.As(h.Err, &re) {
		return tlsaNone // no address, or an MX target that is not a host name
	}
	if re.Kind == resolver.KindBogus || re.Kind == resolver.KindIndeterminate || bogusEDE(re.EDE) {
		return tlsaBogus
	}
	return tlsaServFail
}

// bogusEDE reports whether an Extended DNS Error code (RFC 8914 4.6-4.13:
// DNSSEC Bogus, Signature Expired, Signature Not Yet Valid, DNSKEY
// Missing, RRSIGs Missing, No Zone Key Bit Set, NSEC Missing, and DNSSEC
// Indeterminate at 5) says a validating upstream found the answer bogus.
func bogusEDE(code uint16) bool { return code >= 5 && code <= 12 }

// probeHosts probes the usable and the excluded hosts concurrently (each
// (host, address) once per run, see prober) and records STARTTLS, the
// verdict of each host's policy and, with usable TLSA records, the
// rollover scheme. A domain whose time runs out while it waits for a
// probe is an error: its record would otherwise lack what -starttls
// promises.
func (s *surveyor) probeHosts(ctx context.Context, hosts []*smtptls.Host, out []MXHost) error {
	var wg sync.WaitGroup
	for i, h := range hosts {
		if h.Err != nil && !h.Excluded || len(h.Addrs) == 0 {
			continue
		}
		wg.Go(func() { s.probeHost(ctx, h, &out[i]) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return errors.New("time limit reached waiting for STARTTLS probes")
	}
	return nil
}

// probeHost probes the host's addresses in order until one is reachable,
// as an MTA tries them.
func (s *surveyor) probeHost(ctx context.Context, h *smtptls.Host, m *MXHost) {
	var p *probe
	var addr netip.Addr
	for _, a := range h.Addrs {
		q := s.probes.get(ctx, h.Name, h.ServerName(), a)
		if q == nil {
			return // the domain's time ran out
		}
		if p == nil || q.status != probeUnreachable {
			p, addr = q, a
		}
		if q.status != probeUnreachable {
			break
		}
	}
	m.Addr, m.STARTTLS = addr.String(), p.status
	switch {
	case p.status == probeUnreachable:
		// Nothing was met for the policy to judge.
	case p.status == probeNotOffered && h.Err == nil && !h.RequireTLS():
		m.Match = "cleartext"
	case p.status != probeOK || h.Err != nil:
		// No TLS where the policy requires it, or a host MTA-STS
		// enforce excludes (RFC 8461 4.1).
		m.Match = smtptls.Failed.String()
	default:
		v, _ := h.Verify(p.cs)
		m.Match = v.String()
	}
	if p.status == probeOK && h.DANE != nil && len(h.DANE.Records) > 0 {
		m.Rollover = rollover.Of(h.DANE.Records, []string{h.DANE.Base, h.Name}, h.DANE.DigestPreference, p.cs.PeerCertificates)
	}
}
