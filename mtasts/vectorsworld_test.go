package mtasts_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/sharedtest"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// The peer vectors that need DNS or a policy host run here, in a real
// world: every TXT record is served by the kit's DNS front over loopback
// and every policy over HTTPS.

func readVectors(t *testing.T, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(sharedtest.ReadFile(t, "vectors", "mtasts", name), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// relative returns name (absolute, "_mta-sts.a.example.") relative to the
// zone "example.".
func relative(name string) string {
	return strings.TrimSuffix(strings.TrimSuffix(name, "."), ".example")
}

func TestMoxLookupVectors(t *testing.T) {
	t.Parallel()
	var vf struct {
		Resolver struct {
			TXT   map[string][]string `json:"txt"`
			CNAME map[string]string   `json:"cname"`
			Fail  []string            `json:"fail"`
		} `json:"resolver"`
		Cases []struct {
			Domain string `json:"domain"`
			Valid  bool   `json:"valid"`
			Record *struct {
				ID string `json:"id"`
			} `json:"record"`
			Error  string `json:"error"`
			Source string `json:"source"`
		} `json:"cases"`
	}
	readVectors(t, "mox-lookup-vectors.json", &vf)
	e := newEnv(t)
	for name, txts := range vf.Resolver.TXT {
		for _, txt := range txts {
			e.z.MustAdd(txtLine(relative(name), txt))
		}
	}
	for name, target := range vf.Resolver.CNAME {
		e.z.MustAdd(relative(name) + " CNAME " + target)
	}
	for _, f := range vf.Resolver.Fail {
		typ, name, _ := strings.Cut(f, " ")
		if typ != "txt" {
			t.Fatalf("unknown failure %q", f)
		}
		e.w.SetFault(name, dns.TypeTXT, smtptlstest.FaultServFail)
	}
	kinds := map[string]mtasts.Kind{
		"ErrNoRecord":        mtasts.KindNoRecord,
		"ErrRecordSyntax":    mtasts.KindRecordSyntax,
		"ErrMultipleRecords": mtasts.KindMultipleRecords,
		"ErrDNS":             mtasts.KindDNS,
	}
	for _, v := range vf.Cases {
		t.Run(v.Domain, func(t *testing.T) {
			t.Parallel()
			r, err := mtasts.LookupRecord(bg, e.w.Resolver(), v.Domain)
			if v.Valid {
				if err != nil || r.ID != v.Record.ID {
					t.Fatalf("LookupRecord = %+v, %v; want id %q", r, err, v.Record.ID)
				}
				return
			}
			var me *mtasts.Error
			if !errors.As(err, &me) || me.Kind != kinds[v.Error] {
				t.Fatalf("LookupRecord = %+v, %v; want %s (%v)", r, err, v.Error, kinds[v.Error])
			}
		})
	}
}

func TestTlspolRecordVectorsOverDNS(t *testing.T) {
	t.Parallel()
	var vs []struct {
		Name       string     `json:"name"`
		Rcode      string     `json:"rcode"`
		TXTRecords [][]string `json:"txt_records"`
		Valid      bool       `json:"valid"`
		Temporary  bool       `json:"temporary_error"`
		Note       string     `json:"note"`
	}
	readVectors(t, "tlspol-record-vectors.json", &vs)
	e := newEnv(t)
	for i, v := range vs {
		label := "d" + string(rune('a'+i))
		switch v.Rcode {
		case "NOERROR":
			e.setTXT(label, v.TXTRecords...)
		case "SERVFAIL":
			e.w.SetFault("_mta-sts."+label+".example", dns.TypeTXT, smtptlstest.FaultServFail)
		case "NXDOMAIN":
		default:
			t.Fatalf("rcode %s", v.Rcode)
		}
		t.Run(v.Name, func(t *testing.T) {
			if v.Note != "" {
				// WSP before ";" is within the ABNF; the record is kept
				// by the discard rule (see SelectRecord).
				t.Logf("note: %s", v.Note)
			}
			r, err := mtasts.LookupRecord(bg, e.w.Resolver(), label+".example")
			if v.Valid {
				if err != nil {
					t.Fatalf("LookupRecord: %v", err)
				}
				if r.ID != "policy1" {
					t.Errorf("id %q", r.ID)
				}
				return
			}
			var me *mtasts.Error
			if !errors.As(err, &me) {
				t.Fatalf("LookupRecord = %+v, %v; want an *Error", r, err)
			}
			if temporary := me.Kind == mtasts.KindDNS; temporary != v.Temporary {
				t.Errorf("error %v: temporary=%v, want %v", err, temporary, v.Temporary)
			}
		})
	}
}

// TestMoxGetVectors runs mox's Get expectations (TXT record, then fetch)
// through Client.Lookup. mox's errors become outcomes in the Result.
func TestMoxGetVectors(t *testing.T) {
	t.Parallel()
	var vf struct {
		DNSTXT map[string][]string `json:"dns_txt"`
		Cases  []struct {
			Cert          string `json:"cert"`
			Domain        string `json:"domain"`
			HTTPStatus    int    `json:"http_status"`
			Body          *string
			BodyGenerator *struct {
				Count int `json:"count"`
			} `json:"body_generator"`
			Valid    bool   `json:"valid"`
			GetError string `json:"expected_get_error"`
			Source   string `json:"source"`
		} `json:"cases"`
	}
	readVectors(t, "mox-fetch-vectors.json", &vf)
	for _, v := range vf.Cases {
		t.Run(v.Source, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for name, txts := range vf.DNSTXT {
				for _, txt := range txts {
					e.z.MustAdd(txtLine(relative(name), txt))
				}
			}
			p := smtptlstest.Policy{Status: v.HTTPStatus}
			if v.Body != nil {
				p.Body = *v.Body
			}
			if v.BodyGenerator != nil {
				// The kit pads with newlines rather than NUL bytes; either
				// way the body is over the limit.
				p.BodySize = int64(v.BodyGenerator.Count)
			}
			if v.HTTPStatus == 301 {
				p.Location = "/other"
			}
			switch {
			case v.Cert == "certbad":
				p.Cert = smtptlstest.CertExpired
			case v.Domain == "other.example":
				// mox serves mta-sts.mox.example's certificate for every
				// host: a wrong name for other.example.
				p.Cert = smtptlstest.CertWrongName
			}
			if v.Domain != "doesnotexist.example" {
				e.w.SetPolicy(v.Domain, p)
			}
			res := lookup(t, e.client(nil), v.Domain)
			if v.Valid {
				want(t, res, mtasts.SourceFetch, mtasts.None, "1")
				return
			}
			want(t, res, mtasts.SourceNone, "", "")
			switch v.GetError {
			case "ErrNoRecord":
				if res.RecordStatus != mtasts.RecordAbsent {
					t.Errorf("record status %v", res.RecordStatus)
				}
			case "ErrPolicySyntax":
				wantFetchError(t, res, tlsrpt.STSPolicyInvalid)
			case "ErrPolicyFetch", "ErrNoPolicy":
				rt := tlsrpt.STSPolicyFetchError
				if p.Cert != smtptlstest.CertValid {
					rt = tlsrpt.STSWebPKIInvalid
				}
				wantFetchError(t, res, rt)
			default:
				t.Fatalf("unknown expectation %q", v.GetError)
			}
		})
	}
}

// TestSnawootScenarios runs the resolver-level expectations of
// Snawoot's fixture (zone "loc"). VALID means a policy was fetched (for
// mode none: known, applied as none); NONE means no policy and no fetch;
// FETCH_ERROR means no policy and a recorded failure: a fetch error, or
// for blackhole.loc a failed TXT lookup. The socketmap columns are Postfix
// answers and belong to the Postfix integration.
func TestSnawootScenarios(t *testing.T) {
	t.Parallel()
	var vs []struct {
		Domain        string  `json:"domain"`
		TXT           *string `json:"txt"`
		HTTPStatus    *int    `json:"http_status"`
		ContentType   *string `json:"content_type"`
		Body          *string `json:"body"`
		Cert          *string `json:"cert"`
		BodyGenerator *struct {
			Prefix string `json:"prefix"`
			Repeat string `json:"repeat"`
			Count  int    `json:"count"`
		} `json:"body_generator"`
		Expected struct {
			Resolver *string `json:"resolver"`
		} `json:"expected"`
	}
	readVectors(t, "snawoot-scenarios.json", &vs)
	w := smtptlstest.New(t)
	z := w.AddZone("loc", smtptlstest.ZoneConfig{})
	clk := newClock()
	for _, v := range vs {
		d := strings.TrimSuffix(v.Domain, ".")
		if strings.HasPrefix(d, ".") {
			continue
		}
		switch {
		case v.TXT != nil:
			z.Remove("_mta-sts."+strings.TrimSuffix(d, ".loc"), dns.TypeTXT)
			z.MustAdd(txtLine("_mta-sts."+strings.TrimSuffix(d, ".loc"), *v.TXT))
		case d == "no-data.loc":
			z.MustAdd("_mta-sts.no-data A 127.0.0.1")
		case d == "blackhole.loc":
			z.MustAdd(txtLine("_mta-sts.blackhole", "v=STSv1; id=1"))
			w.SetFault("_mta-sts.blackhole.loc", dns.TypeTXT, smtptlstest.FaultTimeout)
		}
		if v.HTTPStatus == nil {
			continue
		}
		p := smtptlstest.Policy{Status: *v.HTTPStatus, ContentType: *v.ContentType}
		if v.Body != nil {
			p.Body = *v.Body
		}
		if g := v.BodyGenerator; g != nil {
			p.Body = g.Prefix
			p.BodySize = int64(len(g.Repeat) * g.Count)
		}
		switch {
		case strings.HasPrefix(*v.Cert, "UNTRUSTED"):
			p.Cert = smtptlstest.CertSelfSigned
		case strings.HasPrefix(*v.Cert, "NAME MISMATCH"):
			p.Cert = smtptlstest.CertWrongName
		}
		w.SetPolicy(d, p)
	}
	c := &mtasts.Client{
		Resolver:   &resolverWithTimeout{w},
		HTTPClient: w.HTTPClient(),
		Now:        clk.Now,
		Logger:     (&env{logs: &logBuf{}}).logger(),
	}
	for _, v := range vs {
		t.Run(v.Domain, func(t *testing.T) {
			res, err := c.Lookup(bg, v.Domain)
			if strings.HasPrefix(v.Domain, ".") {
				// Postfix's parent-domain form: Snawoot answers NONE; here
				// it is not a domain name at all (RFC 8461 3.4: never
				// fall back to a parent domain).
				var me *mtasts.Error
				if !errors.As(err, &me) || me.Kind != mtasts.KindInvalidDomain {
					t.Fatalf("Lookup(%q): %v; want KindInvalidDomain", v.Domain, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Expected.Resolver == nil {
				// fast-expire.loc: the same answer twice, 2 s apart,
				// with max_age 1 (the second is a new fetch).
				want(t, res, mtasts.SourceFetch, mtasts.Enforce, "20180907T090909")
				clk.Advance(2 * time.Second)
				res, _ = c.Lookup(bg, v.Domain)
				want(t, res, mtasts.SourceFetch, mtasts.Enforce, "20180907T090909")
				return
			}
			switch *v.Expected.Resolver {
			case "VALID":
				// good.loc. repeats good.loc: the second is a cache hit.
				if res.Source == mtasts.SourceNone || res.FetchError != nil || res.Mode == "" {
					t.Errorf("want a fetched policy: %+v", res)
				}
			case "NONE":
				if res.Source != mtasts.SourceNone || res.FetchError != nil || res.RecordStatus == mtasts.RecordFound {
					t.Errorf("want no policy and no fetch: %+v", res)
				}
			case "FETCH_ERROR":
				if res.Source != mtasts.SourceNone || (res.FetchError == nil && res.RecordStatus != mtasts.RecordLookupFailed) {
					t.Errorf("want a failure: %+v", res)
				}
				if res.FetchError != nil && strings.Contains(v.Domain, "cert") {
					wantFetchError(t, res, tlsrpt.STSWebPKIInvalid)
				}
			default:
				t.Fatalf("unknown expectation %q", *v.Expected.Resolver)
			}
		})
	}
}
