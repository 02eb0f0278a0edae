package smtptls_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/smtptlstest"
)

// TestParseOverride: every level with and without match=, Postfix's
// keywords kept as keywords (canonical), names canonical, and every
// invalid policy refused with the offending text quoted.
func TestParseOverride(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in    string
		mode  smtptls.OverrideMode
		match []string
	}{
		{"none", smtptls.OverrideNone, nil},
		{"may", smtptls.OverrideMay, nil},
		{"encrypt", smtptls.OverrideEncrypt, nil},
		{"dane", smtptls.OverrideDANE, nil},
		{"dane-only", smtptls.OverrideDANEOnly, nil},
		{"verify", smtptls.OverrideVerify, nil},
		{"secure", smtptls.OverrideSecure, nil},
		{"  Secure  ", smtptls.OverrideSecure, nil},
		{"verify match=hostname", smtptls.OverrideVerify, []string{"hostname"}},
		{"verify match=nexthop", smtptls.OverrideVerify, []string{"nexthop"}},
		{"secure match=nexthop:dot-nexthop", smtptls.OverrideSecure, []string{"nexthop", "dot-nexthop"}},
		{"secure MATCH=NextHop:DOT-NEXTHOP:HostName", smtptls.OverrideSecure, []string{"nexthop", "dot-nexthop", "hostname"}},
		{"secure match=.Example.COM:mx.example.com.", smtptls.OverrideSecure, []string{".example.com", "mx.example.com"}},
		{"verify match=bücher.example", smtptls.OverrideVerify, []string{"xn--bcher-kva.example"}},
		// Postfix skips empty elements (argv_split) and adds up
		// repeated match attributes.
		{"secure match=:a.example::b.example:", smtptls.OverrideSecure, []string{"a.example", "b.example"}},
		{"secure match=nexthop match=.example.net", smtptls.OverrideSecure, []string{"nexthop", ".example.net"}},
	} {
		o, err := smtptls.ParseOverride(c.in)
		if err != nil {
			t.Errorf("ParseOverride(%q): %v", c.in, err)
			continue
		}
		if o.Mode != c.mode || !slices.Equal(o.Match, c.match) {
			t.Errorf("ParseOverride(%q) = %v %q, want %v %q", c.in, o.Mode, o.Match, c.mode, c.match)
		}
	}

	for _, c := range []struct {
		in, quoted string // quoted is the text the error must quote
	}{
		{"", ""},
		{"   ", ""},
		{"fingerprint", "fingerprint"},
		{"none match=example.com", "match=example.com"},
		{"may match=example.com", "match=example.com"},
		{"encrypt match=nexthop", "match=nexthop"},
		{"dane match=nexthop", "match=nexthop"},
		{"dane-only match=hostname", "match=hostname"},
		{"secure match=", "match="},
		{"verify match", "match"},
		{"secure match=:", "match=:"},
		{"secure match=nexthop:bad_name!", "bad_name!"},
		{"secure match=.", "."},
		{"secure match=..example.com", "..example.com"},
		{"secure match=*.example.com", "*.example.com"},
		{"secure match=192.0.2.1", "192.0.2.1"},
		{"secure match=a.example,b.example", "a.example,b.example"}, // ':' is the only separator
		{"secure match=nexthop servername=hostname", "servername=hostname"},
		{"verify tafile=/etc/ta.pem", "tafile=/etc/ta.pem"},
		{"secure match=\xff\xfe.example", "\xff\xfe.example"},
		{"secure match=mx.example\x1b[31m", "mx.example\x1b[31m"},
	} {
		o, err := smtptls.ParseOverride(c.in)
		if err == nil {
			t.Errorf("ParseOverride(%q) = %+v, want an error", c.in, o)
			continue
		}
		if c.quoted != "" && !strings.Contains(err.Error(), strconv.Quote(c.quoted)) {
			t.Errorf("ParseOverride(%q): %q does not quote %q", c.in, err, c.quoted)
		}
		if strings.Contains(err.Error(), "\x1b") || strings.Contains(err.Error(), "\xff") {
			t.Errorf("ParseOverride(%q): raw control or invalid bytes in %q", c.in, err)
		}
	}
	long := "secure match=" + strings.Repeat("a", 100<<10)
	if _, err := smtptls.ParseOverride(long); err == nil {
		t.Error("100 kB match name accepted")
	} else if len(err.Error()) > 1000 {
		t.Errorf("100 kB match name: error of %d bytes: %.200s", len(err.Error()), err)
	}
}

// TestOverrideMatchHandshake runs real STARTTLS handshakes where the match
// decides: three domains of one provider, each served by its own MX host
// whose certificate names the MX host, the domain, or a subdomain of it.
// Postfix's keywords stand for those names (tls_client.c
// match_servername); without match= Postfix's defaults apply (verify:
// hostname; secure: nexthop, dot-nexthop).
func TestOverrideMatchHandshake(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.zone("provider.test", false)
	for _, c := range []struct{ domain, mx, certName string }{
		{"byhost.test", "mx1.provider.test", "mx1.provider.test"},
		{"bydomain.test", "mx2.provider.test", "bydomain.test"},
		{"bysub.test", "mx3.provider.test", "mail.bysub.test"},
	} {
		w.zone(c.domain, false).MustAdd("@ MX 10 " + c.mx + ".")
		cert, err := w.CA().Issue(smtptlstest.CertOptions{}, c.certName)
		if err != nil {
			t.Fatal(err)
		}
		w.AddMX(c.mx, smtptlstest.SMTPConfig{Certificate: cert})
	}
	domains := []string{"byhost.test", "bydomain.test", "bysub.test"}

	for _, c := range []struct {
		policy   string
		verified []string // the domains whose handshake must verify
	}{
		{"verify", []string{"byhost.test"}},
		{"secure", []string{"bydomain.test", "bysub.test"}},
		{"verify match=hostname", []string{"byhost.test"}},
		{"secure match=hostname", []string{"byhost.test"}},
		{"secure match=nexthop:dot-nexthop", []string{"bydomain.test", "bysub.test"}},
		{"verify match=nexthop", []string{"bydomain.test"}},
		{"secure match=NEXTHOP", []string{"bydomain.test"}},
		{"verify match=dot-nexthop", []string{"bysub.test"}},
		{"secure match=nexthop match=hostname", []string{"byhost.test", "bydomain.test"}},
		{"secure match=.bysub.test", []string{"bysub.test"}},
		{"verify match=bydomain.test:mx1.provider.test", []string{"byhost.test", "bydomain.test"}},
		{"secure match=.provider.test", []string{"byhost.test"}},
		{"secure match=other.test", nil},
	} {
		t.Run(c.policy, func(t *testing.T) {
			t.Parallel()
			ov, err := smtptls.ParseOverride(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			ev := w.evaluator()
			ev.Logger = discard
			ev.Overrides = map[string]smtptls.Override{}
			for _, d := range domains {
				ev.Overrides[d] = ov
			}
			for _, d := range domains {
				dec, err := ev.Evaluate(context.Background(), d)
				if err != nil {
					t.Fatal(err)
				}
				h := dec.Hosts[0]
				if h.Err != nil || h.Level != smtptls.PKIX {
					t.Fatalf("%s: level %v, err %v", d, h.Level, h.Err)
				}
				o := smtptlstest.Send(context.Background(), w.DialContext, h, 25, smtptls.Attempt{},
					smtptlstest.Message{From: "a@s.test", To: []string{"b@" + d}, Data: []byte("\r\n")})
				if slices.Contains(c.verified, d) {
					if !o.Delivered || !o.TLS || o.Verdict != smtptls.Verified {
						t.Errorf("%s via %s: delivered %v, tls %v, verdict %v (%v); want verified", d, h.Name, o.Delivered, o.TLS, o.Verdict, o.Err)
					}
				} else if o.Delivered || o.Err == nil {
					t.Errorf("%s via %s: delivered %v, verdict %v; want the handshake refused", d, h.Name, o.Delivered, o.Verdict)
				}
			}
		})
	}
}

// TestOverrideModes: the level each mode gives a host with and without
// usable DANE, what a delivery through it does, and an Override built by
// hand with match names where they mean nothing or are invalid: the host
// is unusable (a temporary error naming the invalid name), never
// accepted with the names dropped.
func TestOverrideModes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	z := w.zone("dane.test", true)
	z.MustAdd("@ MX 10 mx.dane.test.")
	_, cert := w.mx("mx.dane.test")
	z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx.dane.test.", cert.Leaf, 3, 1, 1))
	w.zone("plain.test", false).MustAdd("@ MX 10 mx.plain.test.")
	w.mx("mx.plain.test")

	type want struct {
		level   smtptls.Level
		kind    smtptls.Kind // a host error of this kind instead of a level
		tls     bool         // a delivery runs TLS
		verdict smtptls.Verdict
	}
	for _, c := range []struct {
		policy      string
		dane, plain want
	}{
		{"none", want{level: smtptls.NoTLS}, want{level: smtptls.NoTLS}},
		{"may", want{level: smtptls.Opportunistic, tls: true, verdict: smtptls.Encrypted}, want{level: smtptls.Opportunistic, tls: true, verdict: smtptls.Encrypted}},
		{"encrypt", want{level: smtptls.Encrypt, tls: true, verdict: smtptls.Encrypted}, want{level: smtptls.Encrypt, tls: true, verdict: smtptls.Encrypted}},
		{"dane", want{level: smtptls.DANE, tls: true, verdict: smtptls.Verified}, want{level: smtptls.Opportunistic, tls: true, verdict: smtptls.Encrypted}},
		{"dane-only", want{level: smtptls.DANE, tls: true, verdict: smtptls.Verified}, want{kind: smtptls.KindDANERequired}},
		{"verify", want{level: smtptls.PKIX, tls: true, verdict: smtptls.Verified}, want{level: smtptls.PKIX, tls: true, verdict: smtptls.Verified}},
		{"secure match=hostname", want{level: smtptls.PKIX, tls: true, verdict: smtptls.Verified}, want{level: smtptls.PKIX, tls: true, verdict: smtptls.Verified}},
	} {
		t.Run(c.policy, func(t *testing.T) {
			t.Parallel()
			ov, err := smtptls.ParseOverride(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			ev := w.evaluator()
			ev.Logger = discard
			ev.Overrides = map[string]smtptls.Override{"dane.test": ov, "plain.test": ov}
			for d, want := range map[string]want{"dane.test": c.dane, "plain.test": c.plain} {
				dec, err := ev.Evaluate(context.Background(), d)
				if err != nil {
					t.Fatal(err)
				}
				h := dec.Hosts[0]
				if want.kind != 0 {
					var e *smtptls.Error
					if !errors.As(h.Err, &e) || e.Kind != want.kind {
						t.Errorf("%s: err %v, want kind %v", d, h.Err, want.kind)
					}
					continue
				}
				if h.Err != nil || h.Level != want.level {
					t.Fatalf("%s: level %v err %v, want level %v", d, h.Level, h.Err, want.level)
				}
				o := smtptlstest.Send(context.Background(), w.DialContext, h, 25, smtptls.Attempt{},
					smtptlstest.Message{From: "a@s.test", To: []string{"b@" + d}, Data: []byte("\r\n")})
				if !o.Delivered || o.TLS != want.tls || o.Verdict != want.verdict {
					t.Errorf("%s: delivered %v, tls %v, verdict %v (%v); want tls %v, verdict %v", d, o.Delivered, o.TLS, o.Verdict, o.Err, want.tls, want.verdict)
				}
			}
		})
	}

	for _, ov := range []smtptls.Override{
		{Mode: smtptls.OverrideDANE, Match: []string{"mx.dane.test"}},
		{Mode: smtptls.OverrideNone, Match: []string{smtptls.MatchHostname}},
		{Mode: smtptls.OverrideSecure, Match: []string{smtptls.MatchNexthop, "bad name\r\n"}},
		{Mode: smtptls.OverrideVerify, Match: []string{"."}},
	} {
		ev := w.evaluator()
		ev.Logger = discard
		ev.Overrides = map[string]smtptls.Override{"dane.test": ov}
		dec, err := ev.Evaluate(context.Background(), "dane.test")
		if err != nil {
			t.Fatal(err)
		}
		var e *smtptls.Error
		h := dec.Hosts[0]
		if !errors.As(h.Err, &e) || e.Kind != smtptls.KindVerify || !e.Temporary() || e.Result != "" || len(dec.Deliverable()) != 0 {
			t.Errorf("%v %q: level %v, err %v; want the host unusable", ov.Mode, ov.Match, h.Level, h.Err)
			continue
		}
		if strings.ContainsAny(h.Err.Error(), "\r\n") {
			t.Errorf("%v %q: raw CR or LF in %q", ov.Mode, ov.Match, h.Err)
		}
	}
}
