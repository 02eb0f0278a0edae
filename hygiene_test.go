package smtptls_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// invalidNames are names no entry point may accept or rewrite (issue 13,
// point 4): invalid UTF-8 (IDNA would turn it into U+FFFD and a different
// domain), a line break, a NUL, a name over 253 octets, an empty label.
var invalidNames = map[string]string{
	"invalid utf-8": "\xff\xfe.example",
	"crlf":          "a\r\nb.example",
	"nul":           "a\x00b.example",
	"300 bytes":     strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + "." + strings.Repeat("e", 55) + ".example",
	"empty label":   "a..example",
}

// hostileText is untrusted text as a peer or a caller could send it
// (issue 13, point 5).
var hostileText = map[string]string{
	"crlf":   "evil.example\r\n250 OK queued as 1234\r\n",
	"nul":    "evil\x00.example",
	"ansi":   "\x1b[31mevil\x1b[0m.example",
	"100 kB": strings.Repeat("a", 100<<10) + ".example",
}

// checkSafe fails unless msg is free of raw control characters and
// bounded.
func checkSafe(t *testing.T, what, msg string) {
	t.Helper()
	if strings.ContainsAny(msg, "\r\n\x00\x1b") {
		t.Errorf("%s: raw control character in %q", what, msg)
	}
	if len(msg) > 1024 {
		t.Errorf("%s: %d bytes: %.120q...", what, len(msg), msg)
	}
}

func TestInvalidNamesAtEveryEntryPoint(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ev := w.evaluator()
	ctx := context.Background()
	entry := map[string]func(name string) error{
		"Evaluate": func(n string) error { _, err := ev.Evaluate(ctx, n); return err },
		"EvaluateRelay": func(n string) error {
			_, err := ev.EvaluateRelay(ctx, n, 587)
			return err
		},
		"Recheck": func(n string) error { _, err := ev.Recheck(ctx, n); return err },
		"ParseOverride": func(n string) error {
			_, err := smtptls.ParseOverride("secure match=" + n)
			return err
		},
	}
	for ename, f := range entry {
		for nname, name := range invalidNames {
			t.Run(ename+"/"+nname, func(t *testing.T) {
				err := f(name)
				if ename == "ParseOverride" && nname == "crlf" {
					// Whitespace separates attributes (as in Postfix):
					// "b.example" is an attribute without "=".
					if err == nil {
						t.Fatal("accepted")
					}
					return
				}
				var e *smtptls.Error
				if !errors.As(err, &e) || e.Kind != smtptls.KindInvalidDomain {
					t.Fatalf("err %v, want a KindInvalidDomain *Error", err)
				}
				if e.EnhancedCode() != "5.1.2" || e.Temporary() {
					t.Errorf("code %s temporary %v, want 5.1.2, permanent", e.EnhancedCode(), e.Temporary())
				}
			})
		}
	}
}

func TestErrorsQuoteUntrustedText(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ev := w.evaluator()
	ctx := context.Background()
	for name, s := range hostileText {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ev.Evaluate(ctx, s)
			if err == nil {
				t.Fatal("accepted")
			}
			checkSafe(t, "Evaluate", err.Error())
			_, err = ev.EvaluateRelay(ctx, s, 0)
			checkSafe(t, "EvaluateRelay bad port", err.Error())
			_, err = smtptls.ParseOverride(s)
			checkSafe(t, "ParseOverride", err.Error())
			e := &smtptls.Error{Kind: smtptls.KindVerify, Domain: s, Host: s, Reason: s, Err: errors.New(s)}
			checkSafe(t, "Error", e.Error())
		})
	}
}

// TestErrorJoinedCause: the causes of an errors.Join (the resolver check
// joins ErrDANEUnavailable with what it found) read as one line, parted
// by "; ", not as one cause with an escaped line break; a line break
// inside a cause is still escaped.
func TestErrorJoinedCause(t *testing.T) {
	t.Parallel()
	e := &smtptls.Error{Kind: smtptls.KindResolver, Reason: "resolver self-check failed",
		Err: errors.Join(smtptls.ErrDANEUnavailable, errors.New("127.0.0.1:53: no AD bit\nforged"))}
	want := "smtptls: resolver unfit for DANE: resolver self-check failed: smtptls: the resolver cannot support DANE; 127.0.0.1:53: no AD bit\\nforged"
	if got := e.Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !errors.Is(e, smtptls.ErrDANEUnavailable) {
		t.Error("errors.Is(ErrDANEUnavailable) no longer holds")
	}
}

func TestErrorWithEmptyFields(t *testing.T) {
	t.Parallel()
	for k := smtptls.Kind(0); k < 32; k++ {
		if k != 0 && strings.HasPrefix(k.String(), "kind(") {
			continue
		}
		for _, e := range []*smtptls.Error{
			{Kind: k},
			{Kind: k, Host: "mx.example"},
			{Kind: k, Domain: "example", Err: errors.New("boom")},
			{Kind: k, Domain: "example", Host: "example"},
		} {
			msg := e.Error()
			if strings.Contains(msg, ": :") || strings.Contains(msg, "  ") || strings.Contains(msg, " via :") ||
				strings.HasSuffix(msg, ": ") || strings.Count(msg, "example") > 1 {
				t.Errorf("%+v: %q", *e, msg)
			}
		}
	}
}

func TestPermanentOutcomesNameTheDomain(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.zone("nullmx.test", true).MustAdd("@ MX 0 .")
	w.zone("exists.test", true)
	ev := w.evaluator()
	for _, tc := range []struct {
		domain   string
		sentinel error
		code     string
	}{
		{"nosuch.exists.test", smtptls.ErrNoSuchDomain, "5.1.2"},
		{"NullMX.Test.", smtptls.ErrNullMX, "5.1.10"},
	} {
		_, err := ev.Evaluate(context.Background(), tc.domain)
		if !errors.Is(err, tc.sentinel) {
			t.Errorf("%s: err %v, want %v", tc.domain, err, tc.sentinel)
		}
		var e *smtptls.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %T is not a *smtptls.Error", tc.domain, err)
		}
		want := strings.ToLower(strings.TrimSuffix(tc.domain, "."))
		if e.Domain != want || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: domain %q, message %q", tc.domain, e.Domain, err)
		}
		if e.EnhancedCode() != tc.code || e.Temporary() {
			t.Errorf("%s: code %s temporary %v, want %s, permanent", tc.domain, e.EnhancedCode(), e.Temporary(), tc.code)
		}
	}
}

func TestSTARTTLSNotOffered(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	z := w.zone("nostarttls.test", true)
	z.MustAdd("@ MX 10 mx.nostarttls.test.")
	cert, err := w.CA().Issue(smtptlstest.CertOptions{}, "mx.nostarttls.test")
	if err != nil {
		t.Fatal(err)
	}
	w.AddMX("mx.nostarttls.test", smtptlstest.SMTPConfig{Certificate: cert, NoSTARTTLS: true})
	z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx.nostarttls.test.", cert.Leaf, 3, 1, 1))
	ctx := context.Background()
	d, err := w.evaluator().Evaluate(ctx, "nostarttls.test")
	if err != nil {
		t.Fatal(err)
	}
	h := d.Hosts[0]
	if h.Level != smtptls.DANE {
		t.Fatalf("level %v, want dane", h.Level)
	}
	o := smtptlstest.Send(ctx, w.DialContext, h, 0, smtptls.Attempt{}, smtptlstest.Message{From: "a@b.test", To: []string{"c@nostarttls.test"}, Data: []byte("hi\r\n")})
	for what, err := range map[string]error{"Send": o.Err, "Host.STARTTLSNotOffered": h.STARTTLSNotOffered()} {
		if !errors.Is(err, smtptls.ErrSTARTTLSNotOffered) {
			t.Errorf("%s: %v does not match ErrSTARTTLSNotOffered", what, err)
		}
		var e *smtptls.Error
		if !errors.As(err, &e) || e.Kind != smtptls.KindSTARTTLS {
			t.Fatalf("%s: %v is not a KindSTARTTLS *Error", what, err)
		}
		if e.Domain != "nostarttls.test" || e.Host != "mx.nostarttls.test" || e.EnhancedCode() != "4.7.4" || !e.Temporary() {
			t.Errorf("%s: %+v code %s", what, *e, e.EnhancedCode())
		}
		if want := "smtptls: nostarttls.test via mx.nostarttls.test: TLS is required, but STARTTLS was not offered"; err.Error() != want {
			t.Errorf("%s: message\n%s\nwant\n%s", what, err, want)
		}
		if got := h.FailureResult(err); got != tlsrpt.StartTLSNotSupported {
			t.Errorf("%s: FailureResult %q", what, got)
		}
	}
	if got := h.FailureResult(smtptls.ErrSTARTTLSNotOffered); got != tlsrpt.StartTLSNotSupported {
		t.Errorf("FailureResult(sentinel) = %q", got)
	}
}

// TestTLSALookupFailureMessage is the full message of a TLSA SERVFAIL
// through the kit: each layer says only what the layer below did not.
func TestTLSALookupFailureMessage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	z := w.zone("x.test", true)
	z.MustAdd("@ MX 10 mx1.x.test.")
	_, c := w.mx("mx1.x.test")
	z.MustAdd(smtptlstest.TLSARecord("_25._tcp.mx1.x.test.", c.Leaf, 3, 1, 1))
	w.SetFault("_25._tcp.mx1.x.test", dns.TypeTLSA, smtptlstest.FaultServFail)
	d, err := w.evaluator().Evaluate(context.Background(), "x.test")
	if err != nil {
		t.Fatal(err)
	}
	herr := d.Hosts[0].Err
	var de *dane.Error
	if !errors.As(herr, &de) || de.Kind != dane.KindTLSA {
		t.Fatalf("host error %v, want a dane KindTLSA error inside", herr)
	}
	got := strings.ReplaceAll(herr.Error(), w.DNSAddr(), "DNS")
	const want = "smtptls: x.test: host lookup failed: the host must not be used (RFC 7672 2.1.2): " +
		"dane: mx1.x.test: tlsa lookup failed: resolver: _25._tcp.mx1.x.test. TLSA: servfail: SERVFAIL from DNS"
	if got != want {
		t.Errorf("message\n%s\nwant\n%s", got, want)
	}
}

// TestEnhancedCodeDoc checks that EnhancedCode's doc comment names every
// Kind with the code it returns.
func TestEnhancedCodeDoc(t *testing.T) {
	t.Parallel()
	kinds := map[string]smtptls.Kind{
		"KindMXLookup": smtptls.KindMXLookup, "KindHostLookup": smtptls.KindHostLookup,
		"KindNotInPolicy": smtptls.KindNotInPolicy, "KindDANERequired": smtptls.KindDANERequired,
		"KindRequireTLS": smtptls.KindRequireTLS, "KindVerify": smtptls.KindVerify,
		"KindInvalidDomain": smtptls.KindInvalidDomain, "KindResolver": smtptls.KindResolver,
		"KindCanceled": smtptls.KindCanceled, "KindNoSuchDomain": smtptls.KindNoSuchDomain,
		"KindNullMX": smtptls.KindNullMX, "KindSTARTTLS": smtptls.KindSTARTTLS,
	}
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "EnhancedCode" && fd.Recv != nil {
			doc = fd.Doc.Text()
		}
	}
	codeRE, kindRE := regexp.MustCompile(`\b[245]\.\d+\.\d+\b`), regexp.MustCompile(`\bKind[A-Za-z]+\b`)
	documented := map[string]bool{}
	for _, item := range strings.Split(doc, "\n  - ")[1:] {
		codes := codeRE.FindAllString(item, -1)
		if len(codes) != 1 {
			t.Errorf("doc item %q names %d codes, want 1", item, len(codes))
			continue
		}
		for _, name := range kindRE.FindAllString(item, -1) {
			k, ok := kinds[name]
			if !ok {
				t.Errorf("doc names unknown %s", name)
				continue
			}
			documented[name] = true
			if got := (&smtptls.Error{Kind: k}).EnhancedCode(); got != codes[0] {
				t.Errorf("%s: EnhancedCode %s, documented %s", name, got, codes[0])
			}
		}
	}
	for name, k := range kinds {
		if !documented[name] {
			t.Errorf("%s (code %s) is not documented", name, (&smtptls.Error{Kind: k}).EnhancedCode())
		}
	}
}
