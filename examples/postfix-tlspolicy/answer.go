package main

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/tlsrpt"
)

// TestingMode says what to answer for a domain whose MTA-STS policy is in
// testing mode.
type TestingMode uint8

const (
	// TestingNotFound answers NOTFOUND: Postfix applies its own default,
	// as RFC 8461 5 says (deliver whatever happens, report failures).
	TestingNotFound TestingMode = iota
	// TestingEnforce answers as if the policy were in enforce mode (the
	// "strict_testing" of postfix-mta-sts-resolver). This breaks RFC 8461
	// 5: a policy published for testing then defers mail.
	TestingEnforce
)

// MatchMode says how an enforce policy becomes Postfix's "match=" list.
type MatchMode uint8

const (
	// MatchMX lists the MX host names that match the policy (RFC 8461
	// 4.1, "*." covering one label), in preference order: the narrowest
	// list Postfix can enforce, with every Postfix version. A domain none
	// of whose MX hosts matches gets TEMP.
	MatchMX MatchMode = iota
	// MatchPolicy lists the policy's patterns, "*.example.com" written
	// ".example.com" as the other socketmap daemons do. Postfix's
	// ".example.com" matches any number of labels (a.b.example.com too),
	// which is wider than RFC 8461 4.1.
	MatchPolicy
)

// MixedMode says what to answer when usable DANE covers only some MX
// hosts of a domain that also has an MTA-STS enforce policy.
type MixedMode uint8

const (
	// MixedDANE answers "dane": Postfix authenticates the hosts with
	// TLSA records by DANE and uses opportunistic TLS with the others;
	// the MTA-STS policy is not applied to them.
	MixedDANE MixedMode = iota
	// MixedDANEOnly answers "dane-only": hosts without usable TLSA
	// records are not used at all. Stricter than either policy asks;
	// mail waits when only those hosts are reachable.
	MixedDANEOnly
)

// Responder turns a Postfix smtp_tls_policy_maps query (a next-hop
// destination) into a TLS policy, from one smtptls.Evaluator decision:
// the precedence of DANE over MTA-STS is the library's, not re-implemented
// here (see README.md for the table of answers).
//
// Its zero value is not usable: set Evaluator. The modes' zero values are
// the RFC-faithful choices.
type Responder struct {
	// Evaluator makes the decisions. Required. Its resolver should be
	// the one Postfix uses (the system's validating resolver): a domain
	// this daemon finds DNSSEC-secure and Postfix does not would get
	// "dane" and then only opportunistic TLS from Postfix.
	Evaluator *smtptls.Evaluator
	// Testing: see TestingMode. Zero means TestingNotFound.
	Testing TestingMode
	// Match: see MatchMode. Zero means MatchMX.
	Match MatchMode
	// Mixed: see MixedMode. Zero means MixedDANE.
	Mixed MixedMode
	// NoSNI leaves "servername=hostname" out of "secure" answers, for
	// Postfix before 3.4. The zero value sends SNI, which many MX hosts
	// need to pick the right certificate.
	NoSNI bool
	// Logger receives one line per answer (NOTFOUND at debug level, TEMP
	// at warning level). Nil means slog.Default().
	Logger *slog.Logger

	flight singleflight.Group
}

func (r *Responder) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// nextHop is a parsed smtp_tls_policy_maps lookup key.
type nextHop struct {
	host  string
	relay bool // "[host]" or "[host]:port": no MX lookup
	port  int
}

// parseNextHop parses the key Postfix looks up in smtp_tls_policy_maps:
// "domain", "domain:port", "[host]" or "[host]:port"; ok is false for keys
// that have no policy of ours: Postfix's parent-domain probes
// (".example.com": RFC 8461 3.4 forbids falling back to a parent domain,
// and DANE never does), address literals (RFC 8461 3.4, RFC 7672 2.2),
// unix-domain destinations and anything else that is not a host name.
func parseNextHop(key string) (hop nextHop, ok bool) {
	host, port := key, ""
	if rest, found := strings.CutPrefix(key, "["); found {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return hop, false
		}
		host, hop.relay = rest[:end], true
		switch after := rest[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
		default:
			return hop, false
		}
	} else if i := strings.LastIndexByte(key, ':'); i >= 0 {
		host, port = key[:i], key[i+1:]
	}
	hop.host, hop.port = host, 25
	if port != "" {
		p, err := parsePort(port)
		if err != nil {
			return hop, false
		}
		hop.port = p
	}
	if host == "" || strings.HasPrefix(host, ".") || strings.ContainsAny(host, ":/[] ") ||
		strings.HasPrefix(strings.ToLower(host), "ipv6:") {
		return hop, false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return hop, false
	}
	return hop, true
}

// parsePort accepts a decimal port or the service names Postfix users
// write in next hops.
func parsePort(s string) (int, error) {
	switch strings.ToLower(s) {
	case "smtp":
		return 25, nil
	case "submission":
		return 587, nil
	case "submissions", "smtps":
		return 465, nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 || s[0] == '+' {
		return 0, errors.New("bad port " + quote.String(s))
	}
	return p, nil
}

// Lookup implements LookupFunc. The map name is not used: Server checks
// it. Concurrent queries for the same next hop share one evaluation.
func (r *Responder) Lookup(ctx context.Context, _, key string) Reply {
	hop, ok := parseNextHop(key)
	if !ok {
		r.log().Debug("tlspolicy: no policy for this key", "key", quote.Text(key), "answer", notFound.String())
		return notFound
	}
	flightKey := strconv.FormatBool(hop.relay) + " " + strings.ToLower(hop.host) + " " + strconv.Itoa(hop.port)
	ch := r.flight.DoChan(flightKey, func() (any, error) {
		// The evaluation outlives a caller that gives up (it is shared),
		// but never its deadline.
		fctx := context.WithoutCancel(ctx)
		if d, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			fctx, cancel = context.WithDeadline(fctx, d)
			defer cancel()
		}
		return r.answer(fctx, key, hop), nil
	})
	select {
	case res := <-ch:
		return res.Val.(Reply)
	case <-ctx.Done():
		return temp("policy lookup timed out")
	}
}

// answer evaluates hop and logs the reply.
func (r *Responder) answer(ctx context.Context, key string, hop nextHop) Reply {
	start := time.Now()
	var (
		dec *smtptls.Decision
		err error
	)
	if hop.relay {
		dec, err = r.Evaluator.EvaluateRelay(ctx, hop.host, hop.port)
	} else {
		// A "domain:port" next hop still means an MX lookup; the
		// decision is made for port 25, where MTA-STS and DANE for SMTP
		// are defined, and Postfix looks up TLSA records at the real port.
		dec, err = r.Evaluator.Evaluate(ctx, hop.host)
	}
	var reply Reply
	why := ""
	switch {
	case ctx.Err() != nil:
		// Part of the decision may be missing (a policy fetch cut short
		// reads as "no policy"): no answer is safe but a deferral.
		reply, why = temp("policy lookup timed out"), "deadline"
	case err != nil:
		reply, why = replyForError(err)
	default:
		reply, why = r.Decide(dec)
	}
	attrs := []any{"key", quote.Text(key), "answer", reply.String(), "why", why, "took", time.Since(start).Round(time.Millisecond)}
	if dec != nil {
		attrs = append(attrs, "mx_secure", dec.MXSecure)
		if dec.STS != nil {
			attrs = append(attrs, "sts_mode", string(dec.STS.Mode), "sts_record", dec.STS.RecordStatus.String())
		}
	}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	switch reply.Status {
	case "NOTFOUND":
		r.log().Debug("tlspolicy: answer", attrs...)
	case "TEMP", "PERM":
		r.log().Warn("tlspolicy: answer", attrs...)
	default:
		r.log().Info("tlspolicy: answer", attrs...)
	}
	return reply
}

// replyForError maps an Evaluate error to a reply.
func replyForError(err error) (Reply, string) {
	if errors.Is(err, smtptls.ErrNullMX) || errors.Is(err, smtptls.ErrNoSuchDomain) {
		// Postfix finds the same and bounces; no TLS policy matters.
		return notFound, "no mail host"
	}
	var e *smtptls.Error
	if errors.As(err, &e) && e.Kind == smtptls.KindInvalidDomain {
		return notFound, "not a domain name"
	}
	// The MX lookup failed: whether DANE applies (secure MX RRset with
	// TLSA records) cannot be known, and guessing MTA-STS could override
	// DANE. Postfix defers on TEMP (RFC 7672 2.1.2).
	return temp("MX lookup failed"), "mx lookup failed"
}

// Decide maps an Evaluator decision to a Postfix policy, with the reason
// for the logs. The rules, in order:
//
//  1. Secure MX RRset and some host with usable TLSA records, or whose
//     TLSA lookup failed: "dane" (or "dane-only", see MixedMode). Postfix
//     then applies DANE host by host, and MTA-STS can never override a
//     DANE failure (RFC 8461 2); a TLSA lookup failure makes Postfix
//     skip the host (RFC 7672 2.1.2).
//  2. MTA-STS enforce (or testing with TestingEnforce): "secure
//     match=... servername=hostname". This includes an insecure MX RRset
//     whose hosts have TLSA records: there MTA-STS MX matching is the
//     only thing that authenticates the MX names (RFC 7672 2.2.1), so it
//     wins over DANE's certificate check, which Postfix cannot combine
//     with it.
//  3. Secure TLSA records that are all unusable, or DANE under an
//     insecure MX RRset, without MTA-STS enforce: "dane" (Postfix:
//     mandatory unauthenticated TLS, resp. its insecure-MX rules).
//  4. Otherwise (MTA-STS testing or none, no policy, a failed policy
//     fetch without a cached policy, which RFC 8461 5 treats as no
//     policy): NOTFOUND, so that Postfix's own settings apply.
//
// Hosts whose address lookup failed are left out: Postfix's own lookup
// fails the same way.
func (r *Responder) Decide(dec *smtptls.Decision) (Reply, string) {
	var sts *mtasts.Policy
	if p := dec.STSPolicy(); p != nil && p.Mode != mtasts.None {
		sts = p
	}
	enforce := sts != nil && (sts.Mode == mtasts.Enforce || sts.Mode == mtasts.Testing && r.Testing == TestingEnforce)

	var auth, unusable, tlsaFailed, someNotDANE bool
	for _, h := range dec.Hosts {
		if h.DANE != nil {
			switch h.DANE.Level {
			case dane.Authenticate:
				auth = true
			case dane.Encrypt:
				unusable = true
			}
		}
		if h.Err != nil {
			tlsaFailed = tlsaFailed || isTLSAFailure(h.Err)
			continue
		}
		if h.Level != smtptls.DANE {
			someNotDANE = true
		}
	}
	switch {
	case dec.MXSecure && (auth || tlsaFailed):
		if enforce && someNotDANE && r.Mixed == MixedDANEOnly {
			return ok("dane-only"), "DANE on some MX hosts, MTA-STS enforce on the others: DANE required"
		}
		return ok("dane"), "secure MX RRset with TLSA records: DANE wins (RFC 8461 2)"
	case enforce:
		return r.secure(dec, sts)
	case auth || unusable || tlsaFailed:
		return ok("dane"), "TLSA records without MTA-STS enforce"
	case sts != nil:
		return notFound, "MTA-STS testing: deliver and report (RFC 8461 5)"
	}
	return notFound, "no DANE, no MTA-STS policy in effect"
}

// isTLSAFailure reports whether a host's error is a failed TLSA (or
// TLSA base domain CNAME) lookup, which the Evaluator marks with the
// dnssec-invalid result type.
func isTLSAFailure(err error) bool {
	var e *smtptls.Error
	return errors.As(err, &e) && e.Kind == smtptls.KindHostLookup && e.Result == tlsrpt.DNSSECInvalid
}

// secure builds the answer for an MTA-STS policy in effect.
func (r *Responder) secure(dec *smtptls.Decision, sts *mtasts.Policy) (Reply, string) {
	var names []string
	add := func(n string) {
		if postfixSafeName(n) && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	why := "MTA-STS " + string(sts.Mode)
	switch r.Match {
	case MatchPolicy:
		for _, p := range sts.MX {
			// Postfix's ".suffix" matches any depth below suffix: wider
			// than RFC 8461 4.1 (one label).
			add(strings.TrimPrefix(p, "*"))
		}
		why += ": policy patterns"
	default:
		for _, h := range dec.Hosts {
			if sts.Match(h.Name) {
				add(h.Name)
			}
		}
		if len(names) == 0 {
			return temp("no MX host of " + dec.Domain + " matches its MTA-STS policy"),
				why + ": no MX host matches the policy (RFC 8461 4.1): defer"
		}
		why += ": MX hosts matching the policy"
	}
	if len(names) == 0 {
		return temp("MTA-STS policy of " + dec.Domain + " lists no usable mx"), why
	}
	data := "secure match=" + strings.Join(names, ":")
	if !r.NoSNI {
		data += " servername=hostname"
	}
	return ok(data), why
}

// postfixSafeName reports whether n can go into a policy attribute as
// is: lowercase LDH labels and dots, with an optional leading dot. A name
// with anything else would change how Postfix splits the policy.
func postfixSafeName(n string) bool {
	if n == "" || n == "." || len(n) > 254 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
