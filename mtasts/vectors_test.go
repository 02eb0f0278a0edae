package mtasts

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/internal/sharedtest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// The peer vectors live in the shared data set (see package sharedtest)
// and are read at test time. Each source's expectation is checked as
// written, except where the vector carries a "note" saying the source
// contradicts RFC 8461: there the test follows the RFC and logs why.

func readVectors(t *testing.T, name string, v any) {
	t.Helper()
	data := sharedtest.ReadFile(t, "vectors", "mtasts", name)
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type recordVector struct {
	Name       string      `json:"name"`
	Input      *string     `json:"input"`
	Valid      bool        `json:"valid"`
	ID         *string     `json:"id"`
	Extensions [][2]string `json:"extensions"`
	TXTRecords [][]string  `json:"txt_records"`
	Rcode      string      `json:"rcode"`
	Parsed     *struct {
		V  string `json:"v"`
		ID string `json:"id"`
	} `json:"parsed"`
	Note   string `json:"note"`
	Source string `json:"source"`
}

func checkRecord(t *testing.T, input string, valid bool, id string, exts [][2]string) {
	t.Helper()
	r, err := ParseRecord(input)
	if !valid {
		if err == nil {
			t.Fatalf("ParseRecord(%q) = %+v, want an error", input, r)
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindRecordSyntax {
			t.Fatalf("ParseRecord(%q) error %v, want *Error KindRecordSyntax", input, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("ParseRecord(%q): %v", input, err)
	}
	if r.ID != id {
		t.Errorf("ParseRecord(%q).ID = %q, want %q", input, r.ID, id)
	}
	if exts != nil {
		got := [][2]string{}
		for _, e := range r.Extensions {
			got = append(got, [2]string{e.Key, e.Value})
		}
		if !slices.Equal(got, exts) {
			t.Errorf("ParseRecord(%q).Extensions = %v, want %v", input, got, exts)
		}
	}
}

func TestRecordVectors(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"mox-record-vectors.json", "gomtasts-record-vectors.json"} {
		var vs []recordVector
		readVectors(t, file, &vs)
		for _, v := range vs {
			t.Run(file+"/"+v.Source, func(t *testing.T) {
				if v.Note != "" {
					// The notes here concern WSP before the first ";",
					// which the ABNF (sts-field-delim = *WSP ";" *WSP)
					// admits; SelectRecord's discard rule keeps such
					// records too (see isSTSCandidate), so the source's
					// expectation stands.
					t.Logf("note: %s", v.Note)
				}
				id := ""
				if v.ID != nil {
					id = *v.ID
				}
				checkRecord(t, *v.Input, v.Valid, id, v.Extensions)
			})
		}
	}
}

// TestSnawootRecordTokenizer uses Snawoot's tokenizer cases, which carry
// no validity claim: a case whose tokens hold v=STSv1 and an id must parse
// with that id, other cases must fail. Where the tokenizer accepts what
// the ABNF forbids (noted), the RFC wins and the record is invalid.
func TestSnawootRecordTokenizer(t *testing.T) {
	t.Parallel()
	var vs []recordVector
	readVectors(t, "snawoot-record-parse-vectors.json", &vs)
	for _, v := range vs {
		t.Run(v.Source, func(t *testing.T) {
			valid := v.Parsed != nil && v.Parsed.V == "STSv1" && v.Parsed.ID != ""
			id := ""
			if valid {
				id = v.Parsed.ID
			}
			if v.Note != "" && valid {
				// RFC 8461 3.1 ABNF: trailing WSP needs a closing ";",
				// and ";;" is an empty field. Follow the RFC.
				t.Logf("following RFC 8461 3.1 over the tokenizer: %s", v.Note)
				valid, id = false, ""
			}
			checkRecord(t, *v.Input, valid, id, nil)
		})
	}
}

// TestTlspolRecordVectors covers the tlspol TXT RRset cases offline via
// SelectRecord; the DNS rcode cases run over real DNS in the scenario
// tests (TestLookupRecordVectors).
func TestTlspolRecordVectors(t *testing.T) {
	t.Parallel()
	var vs []recordVector
	readVectors(t, "tlspol-record-vectors.json", &vs)
	for _, v := range vs {
		if v.Rcode != "NOERROR" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			if v.Note != "" {
				// WSP before ";" is admitted by the ABNF; the record is
				// an STS record for the discard rule (isSTSCandidate).
				t.Logf("note: %s", v.Note)
			}
			var txts []string
			for _, rr := range v.TXTRecords {
				txts = append(txts, strings.Join(rr, ""))
			}
			r, err := SelectRecord(txts)
			if v.Valid != (err == nil) {
				t.Fatalf("SelectRecord(%q) = %+v, %v; want valid=%v", txts, r, err, v.Valid)
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %T is not *Error", err)
				}
			}
		})
	}
}

type policyVector struct {
	Name           string  `json:"name"`
	Input          *string `json:"input"`
	InputHex       string  `json:"input_hex"`
	InputGenerator *struct {
		Prefix string `json:"prefix"`
		Repeat string `json:"repeat"`
		Count  int    `json:"count"`
	} `json:"input_generator"`
	Valid      bool        `json:"valid"`
	Mode       *string     `json:"mode"`
	MaxAge     *int64      `json:"max_age"`
	MX         []string    `json:"mx"`
	Extensions [][2]string `json:"extensions"`
	Expected   *struct {
		ReportContains []string `json:"report_contains"`
	} `json:"expected"`
	Note   string `json:"note"`
	Source string `json:"source"`
}

func (v *policyVector) body(t *testing.T) []byte {
	switch {
	case v.Input != nil:
		return []byte(*v.Input)
	case v.InputHex != "":
		b, err := hex.DecodeString(v.InputHex)
		if err != nil {
			t.Fatal(err)
		}
		return b
	case v.InputGenerator != nil:
		g := v.InputGenerator
		return []byte(g.Prefix + strings.Repeat(g.Repeat, g.Count))
	}
	t.Fatal("vector without input")
	return nil
}

func TestPolicyVectors(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"mox-policy-vectors.json", "gomtasts-policy-vectors.json", "tlspol-policy-vectors.json"} {
		var vs []policyVector
		readVectors(t, file, &vs)
		for i, v := range vs {
			t.Run(fmt.Sprintf("%s/%d/%s", file, i, v.Name), func(t *testing.T) {
				body := v.body(t)
				valid := v.Valid
				if v.Note != "" && strings.Contains(file, "tlspol") && !valid {
					// tlspol rejects mx values spelled like IP addresses.
					// RFC 8461 3.2: ["*."] Domain admits all-numeric
					// labels and parsers MUST accept syntactically valid
					// policies; such a pattern simply never matches (and
					// Lint warns). Follow the RFC.
					t.Logf("following RFC 8461 3.2: %s", v.Note)
					valid = true
				}
				p, err := ParsePolicy(body)
				if !valid {
					if err == nil {
						t.Fatalf("ParsePolicy(%q) = %+v, want an error", body, p)
					}
					var e *Error
					if !errors.As(err, &e) || (e.Kind != KindPolicySyntax && e.Kind != KindBodyTooLarge) ||
						e.Result != tlsrpt.STSPolicyInvalid {
						t.Fatalf("ParsePolicy error %#v, want *Error KindPolicySyntax/STSPolicyInvalid", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("ParsePolicy(%q): %v", body, err)
				}
				if v.Note != "" {
					for _, mx := range p.MX {
						if p.Match(mx) || p.Match(strings.TrimPrefix(mx, "*.")) {
							t.Errorf("address-like pattern %q matched", mx)
						}
					}
					if !slices.ContainsFunc(p.Lint("example.com"), func(w Warning) bool { return w.Kind == WarnAddressPattern }) {
						t.Errorf("Lint does not warn about address-like patterns %v", p.MX)
					}
					return
				}
				if v.Mode != nil && string(p.Mode) != *v.Mode {
					t.Errorf("Mode = %q, want %q", p.Mode, *v.Mode)
				}
				if v.MaxAge != nil && p.MaxAge != time.Duration(*v.MaxAge)*time.Second {
					t.Errorf("MaxAge = %v, want %ds", p.MaxAge, *v.MaxAge)
				}
				if v.MX != nil && !slices.Equal(p.MX, v.MX) && !(len(p.MX) == 0 && len(v.MX) == 0) {
					t.Errorf("MX = %q, want %q", p.MX, v.MX)
				}
				if v.Extensions != nil {
					var got [][2]string
					for _, e := range p.Extensions {
						got = append(got, [2]string{e.Key, e.Value})
					}
					if !slices.Equal(got, v.Extensions) && len(got)+len(v.Extensions) > 0 {
						t.Errorf("Extensions = %q, want %q", got, v.Extensions)
					}
				}
				// tlspol's report_contains lists the TLS-RPT
				// policy-string lines ("policy_string = <line>").
				if v.Expected != nil {
					for _, want := range v.Expected.ReportContains {
						line, ok := strings.CutPrefix(want, "policy_string = ")
						if ok && !slices.Contains(p.Lines, line) {
							t.Errorf("Lines %q lack %q", p.Lines, line)
						}
					}
				}
			})
		}
	}
}

type matchVector struct {
	Patterns []string `json:"patterns"`
	Host     string   `json:"host"`
	Match    bool     `json:"match"`
	Policy   string   `json:"policy"`
	Note     string   `json:"note"`
	Source   string   `json:"source"`
}

func TestMatchVectors(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"gomtasts-vectors.json", "mox-match-vectors.json"} {
		var vs []matchVector
		readVectors(t, file, &vs)
		for _, v := range vs {
			t.Run(file+"/"+v.Source, func(t *testing.T) {
				p := &Policy{Mode: Enforce, MX: v.Patterns}
				if v.Policy != "" {
					var err error
					if p, err = ParsePolicy([]byte(v.Policy)); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(p.MX, v.Patterns) {
						t.Fatalf("parsed MX %q, vector says %q", p.MX, v.Patterns)
					}
				}
				if v.Note != "" {
					// U-label patterns: Match normalises them, so the
					// source's expectation holds; but RFC 8461 3.2
					// requires A-labels in a policy, so the parser must
					// refuse such a pattern.
					t.Logf("note: %s", v.Note)
					for _, pat := range v.Patterns {
						body := "version: STSv1\nmode: enforce\nmax_age: 1\nmx: " + pat + "\n"
						if _, err := ParsePolicy([]byte(body)); err == nil {
							t.Errorf("ParsePolicy accepted the U-label pattern %q", pat)
						}
					}
				}
				if got := p.Match(v.Host); got != v.Match {
					t.Errorf("Match(%q) with %q = %v, want %v", v.Host, v.Patterns, got, v.Match)
				}
			})
		}
	}
}

func TestSerializeVectors(t *testing.T) {
	t.Parallel()
	var vs []struct {
		Kind   string `json:"kind"`
		Fields struct {
			ID         string      `json:"id"`
			Mode       string      `json:"mode"`
			MaxAge     int64       `json:"max_age"`
			MX         []string    `json:"mx"`
			Extensions [][2]string `json:"extensions"`
		} `json:"fields"`
		Expected string `json:"expected"`
		Source   string `json:"source"`
	}
	readVectors(t, "mox-serialize-vectors.json", &vs)
	n := 0
	for _, v := range vs {
		var got string
		switch v.Kind {
		case "mtasts-record":
			r := &Record{ID: v.Fields.ID}
			for _, e := range v.Fields.Extensions {
				r.Extensions = append(r.Extensions, Extension{Key: e[0], Value: e[1]})
			}
			got = r.String()
			back, err := ParseRecord(got)
			if err != nil || back.String() != got {
				t.Errorf("%s: round trip of %q: %v", v.Source, got, err)
			}
		case "mtasts-policy":
			p := &Policy{Mode: Mode(v.Fields.Mode), MaxAge: time.Duration(v.Fields.MaxAge) * time.Second, MX: v.Fields.MX}
			got = p.String()
			back, err := ParsePolicy([]byte(got))
			if err != nil || back.String() != got {
				t.Errorf("%s: round trip of %q: %v", v.Source, got, err)
			}
		default:
			// tlsrpt-record belongs to package tlsrpt.
			continue
		}
		n++
		if got != v.Expected {
			t.Errorf("%s: got %q, want %q", v.Source, got, v.Expected)
		}
	}
	if n != 2 {
		t.Errorf("checked %d MTA-STS serialisation vectors, want 2", n)
	}
}

func TestContentTypeVectors(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"snawoot-contenttype-vectors.json", "tlspol-mediatype-vectors.json"} {
		var vs []struct {
			Input  string `json:"input"`
			Valid  bool   `json:"valid"`
			Note   string `json:"note"`
			Source string `json:"source"`
		}
		readVectors(t, file, &vs)
		for _, v := range vs {
			t.Run(file+"/"+v.Source, func(t *testing.T) {
				if v.Note != "" {
					t.Logf("note: %s", v.Note)
				}
				if got := acceptableMediaType(v.Input, nil); got != v.Valid {
					t.Errorf("acceptableMediaType(%q) = %v, want %v", v.Input, got, v.Valid)
				}
			})
		}
	}
	// The Client's ExtraMediaTypes widen the check, and only by the
	// types listed.
	if !acceptableMediaType("application/octet-stream", []string{"application/octet-stream"}) {
		t.Error("extra media type not accepted")
	}
	if acceptableMediaType("text/html", []string{"application/octet-stream"}) {
		t.Error("text/html accepted")
	}
}

// The Snawoot refdata TSVs are Postfix socketmap answers: they belong to
// the Postfix integration, not to this package, and are not read here.
