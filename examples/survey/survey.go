package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"
	"golang.org/x/net/publicsuffix"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/tlsrpt"
	"github.com/smtptls/smtptls/tlsverify"
)

// surveyor surveys domains with one Evaluator; safe for concurrent use.
type surveyor struct {
	res      resolver.Resolver
	ev       *smtptls.Evaluator
	sts      *mtasts.Client
	starttls bool
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	probes   *prober
}

// survey builds the Record of one normalised domain.
func (s *surveyor) survey(ctx context.Context, domain string, rank int) Record {
	rec := Record{Domain: domain, Rank: rank, MX: []MXHost{}}
	// TLS-RPT does not depend on the MX: look it up meanwhile.
	rptc := make(chan error, 1)
	go func() {
		ok, err := s.tlsRPT(ctx, domain)
		rec.TLSRPT = ok
		rptc <- err
	}()
	err := s.mxAndPolicy(ctx, domain, &rec)
	if rerr := <-rptc; err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		// A domain that could not be surveyed carries only its error:
		// a partial record would count in the summary as what it is not.
		return Record{Domain: domain, Rank: rank, MX: []MXHost{}, Error: err.Error()}
	}
	return rec
}

func (s *surveyor) mxAndPolicy(ctx context.Context, domain string, rec *Record) error {
	mxs, ans, err := resolver.LookupMX(ctx, s.res, domain)
	if err != nil {
		return err
	}
	rec.MXSecure = ans.Security == resolver.Secure
	rec.DANE = daneNone
	switch {
	case ans.NXDomain:
		// No _mta-sts or _smtp._tls name can exist below a name that
		// does not: nothing else to ask.
		rec.MXStatus, rec.MTASTS = mxNXDomain, stsAbsent
		return nil
	case len(mxs) == 1 && mxs[0].Mx == ".":
		rec.MXStatus = mxNull
		r, err := s.sts.Lookup(ctx, domain)
		if err != nil {
			return err
		}
		rec.MTASTS, err = stsStatus(r)
		return err
	}
	dec, err := s.ev.Evaluate(ctx, domain)
	if err != nil {
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
	usable := 0
	for _, h := range hosts {
		m := MXHost{Host: h.Name, Preference: h.Preference, TLSA: tlsaStatus(h)}
		if m.TLSA == tlsaUsable {
			usable++
		}
		if s.starttls {
			s.probeHost(ctx, h, &m)
		}
		rec.MX = append(rec.MX, m)
	}
	if rec.MXSecure && usable > 0 {
		rec.DANE = danePartial
		if usable == len(hosts) {
			rec.DANE = daneFull
		}
	}
	if len(hosts) > 0 {
		rec.Provider, _ = publicsuffix.EffectiveTLDPlusOne(hosts[0].Name)
	}
	return nil
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
	return "", r.RecordError
}

// tlsRPT reports whether the domain publishes one valid TLS-RPT record.
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

// bogusEDE reports whether an Extended DNS Error code (RFC 8914 4) says a
// validating upstream found the answer bogus.
func bogusEDE(code uint16) bool { return code >= 5 && code <= 12 }

// probeHost connects to the host's first address (once per run) and
// records STARTTLS, the verdict of the host's policy and the TLSA
// rollover scheme.
func (s *surveyor) probeHost(ctx context.Context, h *smtptls.Host, m *MXHost) {
	if h.Err != nil && !h.Excluded || len(h.Addrs) == 0 {
		return
	}
	p := s.probes.get(ctx, s.dial, h.Name, h.ServerName(), h.Addrs[0])
	if p == nil {
		m.STARTTLS = "unreachable" // the domain's time ran out waiting
		return
	}
	m.STARTTLS = p.starttls
	if p.starttls != "ok" {
		if h.Err == nil && !h.RequireTLS() && p.starttls == "not-offered" {
			m.Match = "cleartext"
		} else {
			m.Match = smtptls.Failed.String()
		}
		return
	}
	if h.Err != nil {
		m.Match = smtptls.Failed.String() // excluded by the MTA-STS policy
	} else {
		v, _ := h.Verify(p.cs)
		m.Match = v.String()
	}
	if h.DANE != nil && len(h.DANE.Records) > 0 {
		m.Rollover = rollover(h.DANE, h.Name, p.cs)
	}
}

// rollover names the TLSA rollover scheme (RFC 7671 8) a host's usable
// records allow, judged against the chain it presented: "current+next"
// (a DANE-EE record matches the key in use and another one does not: the
// next key is pre-published), "current+issuer" (a DANE-EE record matches
// the key in use and a DANE-TA record its issuer, which survives a key
// change), "issuer" (only DANE-TA records, which survive a change of the
// leaf key) or "none" (every record matches the key in use, or none
// matches: a key change breaks delivery).
func rollover(p *dane.Policy, host string, cs tls.ConnectionState) string {
	var eeCur, eeOther, ta bool
	for _, r := range p.Records {
		v := &tlsverify.DANE{Records: []tlsverify.TLSA{r}, Names: []string{p.Base, host}, DigestPreference: p.DigestPreference}
		_, err := v.VerifyChain(cs.PeerCertificates)
		switch {
		case r.Usage == tlsverify.DANEEE && err == nil:
			eeCur = true
		case r.Usage == tlsverify.DANEEE:
			eeOther = true
		case r.Usage == tlsverify.DANETA && err == nil:
			ta = true
		}
	}
	switch {
	case eeCur && eeOther:
		return rollNext
	case eeCur && ta:
		return rollIssuer
	case ta && !eeCur && !eeOther:
		return rollTAOnly
	}
	return rollNone
}

// probe is the outcome of one STARTTLS probe of a (host, address).
type probe struct {
	done     chan struct{}
	starttls string // "ok", "not-offered", "failed" (handshake), "unreachable"
	cs       tls.ConnectionState
}

// prober probes each (host, address) once per run, and one address at
// a time, however many domains share it.
type prober struct {
	mu     sync.Mutex // guards probes and addrs
	probes map[string]*probe
	addrs  map[netip.Addr]chan struct{} // one token per destination
}

func newProber() *prober {
	return &prober{probes: map[string]*probe{}, addrs: map[netip.Addr]chan struct{}{}}
}

// get returns the probe of host at addr, starting it if it is the
// first ask, or nil when ctx ends first.
func (pr *prober) get(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), host, sni string, addr netip.Addr) *probe {
	key := host + " " + addr.String()
	pr.mu.Lock()
	p, ok := pr.probes[key]
	if !ok {
		p = &probe{done: make(chan struct{})}
		pr.probes[key] = p
	}
	tok := pr.addrs[addr]
	if tok == nil {
		tok = make(chan struct{}, 1)
		pr.addrs[addr] = tok
	}
	pr.mu.Unlock()
	if !ok {
		// The probe runs on its own context: domains waiting for it must
		// not see it cut short by the first one's deadline.
		go func() {
			tok <- struct{}{}
			defer func() { <-tok }()
			pctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			defer cancel()
			p.starttls, p.cs = runProbe(pctx, dial, sni, addr)
			close(p.done)
		}()
	}
	select {
	case <-p.done:
		return p
	case <-ctx.Done():
		return nil
	}
}

// runProbe connects to addr port 25 and sends EHLO; if STARTTLS is
// offered, it connects again (after the first connection is closed) and
// makes a handshake that accepts any certificate: what was presented is
// judged afterwards against each domain's policy.
func runProbe(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), sni string, addr netip.Addr) (string, tls.ConnectionState) {
	var cs tls.ConnectionState
	connect := func() (net.Conn, error) {
		conn, err := dial(ctx, "tcp", netip.AddrPortFrom(addr, 25).String())
		if err == nil {
			if d, ok := ctx.Deadline(); ok {
				conn.SetDeadline(d)
			}
		}
		return conn, err
	}
	conn, err := connect()
	if err != nil {
		return "unreachable", cs
	}
	c := smtp.NewClient(conn)
	err = c.Hello("survey.smtptls.invalid")
	offered, _ := c.Extension("STARTTLS")
	if err == nil {
		c.Quit()
	}
	c.Close()
	switch {
	case err != nil:
		return "unreachable", cs
	case !offered:
		return "not-offered", cs
	}
	if conn, err = connect(); err != nil {
		return "unreachable", cs
	}
	tc, err := smtp.NewClientStartTLS(conn, tlsverify.Config(nil, sni, captureVerifier{&cs}))
	if err != nil {
		return "failed", cs
	}
	tc.Quit()
	tc.Close()
	return "ok", cs
}

type captureVerifier struct{ cs *tls.ConnectionState }

func (c captureVerifier) Verify(cs tls.ConnectionState) error { *c.cs = cs; return nil }
