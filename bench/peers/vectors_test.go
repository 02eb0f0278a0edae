package peers

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/smtptls/smtptls/tlsverify"
)

// A vcase is one shared vector run through both implementations.
type vcase struct {
	area  string // one of the area constants
	id    string // file#n (1-based position in the file)
	input string // the input as text: a record, a policy body, "patterns <- host", a DANE case summary
	says  string // what the vector's source asserts
	ours  string // smtptls outcome
	mox   string // mox outcome
	notes string // details for the log (matched record, errors)
}

const (
	areaRecord = "MTA-STS record"
	areaPolicy = "MTA-STS policy"
	areaMatch  = "MTA-STS match"
	areaTLSRPT = "TLS-RPT record"
	areaDANE   = "DANE"
)

func readJSON(t *testing.T, file string, v any) {
	t.Helper()
	if err := json.Unmarshal(sharedFile(t, "vectors", "mtasts", file), v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func validSays(valid *bool, extra string) string {
	switch {
	case valid == nil:
		return "no claim" + extra
	case *valid:
		return "valid" + extra
	}
	return "invalid"
}

// recordCases runs every single-record MTA-STS TXT input of the shared
// vectors. tlspol entries with several TXT records (or none) test record
// selection, which mox only does inside LookupRecord behind a resolver;
// they are left out (listed as not compared in the README).
func recordCases(t *testing.T) []vcase {
	type vec struct {
		Input  *string `json:"input"`
		Valid  *bool   `json:"valid"`
		ID     *string `json:"id"`
		Parsed *struct {
			ID string `json:"id"`
		} `json:"parsed"`
	}
	var cs []vcase
	for _, file := range []string{"mox-record-vectors.json", "gomtasts-record-vectors.json", "tlspol-record-vectors.json", "snawoot-record-parse-vectors.json"} {
		var vs []vec
		readJSON(t, file, &vs)
		for i, v := range vs {
			if v.Input == nil {
				continue
			}
			extra := ""
			if v.ID != nil {
				extra = " id=" + *v.ID
			}
			says := validSays(v.Valid, extra)
			if v.Parsed != nil {
				says = "tokenized as id=" + strconv.Quote(v.Parsed.ID)
			}
			cs = append(cs, vcase{area: areaRecord, id: fmt.Sprintf("%s#%d", file, i+1), input: *v.Input,
				says: says, ours: oursRecord(*v.Input), mox: moxRecord(*v.Input)})
		}
	}
	for i, s := range scenarios(t) {
		if s.TXT != nil {
			cs = append(cs, vcase{area: areaRecord, id: fmt.Sprintf("snawoot-scenarios.json#%d txt", i+1), input: *s.TXT,
				says: "resolver " + s.Expected.Resolver, ours: oursRecord(*s.TXT), mox: moxRecord(*s.TXT)})
		}
	}
	return cs
}

// scenario is the part of a Snawoot end-to-end scenario used here: its
// TXT record and policy body, and what Snawoot's resolver concluded for
// the whole scenario (VALID, NONE, FETCH_ERROR).
type scenario struct {
	TXT      *string `json:"txt"`
	Body     *string `json:"body"`
	Expected struct {
		Resolver string `json:"resolver"`
	} `json:"expected"`
}

func scenarios(t *testing.T) []scenario {
	var sc []scenario
	readJSON(t, "snawoot-scenarios.json", &sc)
	return sc
}

func policyCases(t *testing.T) []vcase {
	type gen struct {
		Prefix string `json:"prefix"`
		Repeat string `json:"repeat"`
		Count  int    `json:"count"`
	}
	type vec struct {
		Input    *string `json:"input"`
		InputHex string  `json:"input_hex"`
		Gen      *gen    `json:"input_generator"`
		BodyGen  *gen    `json:"body_generator"`
		Valid    *bool   `json:"valid"`
	}
	var cs []vcase
	add := func(id string, body []byte, shown, says string) {
		cs = append(cs, vcase{area: areaPolicy, id: id, input: shown, says: says, ours: oursPolicy(body), mox: moxPolicy(body)})
	}
	for _, file := range []string{"mox-policy-vectors.json", "gomtasts-policy-vectors.json", "tlspol-policy-vectors.json"} {
		var vs []vec
		readJSON(t, file, &vs)
		for i, v := range vs {
			id := fmt.Sprintf("%s#%d", file, i+1)
			var body []byte
			var shown string
			switch g := v.Gen; {
			case v.Input != nil:
				body, shown = []byte(*v.Input), *v.Input
			case v.InputHex != "":
				b, err := hex.DecodeString(v.InputHex)
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				body, shown = b, string(b)
			case g != nil || v.BodyGen != nil:
				if g == nil {
					g = v.BodyGen
				}
				body = []byte(g.Prefix + strings.Repeat(g.Repeat, g.Count))
				shown = fmt.Sprintf("%s + %q x %d (%d bytes)", strconv.Quote(g.Prefix), g.Repeat, g.Count, len(body))
			default:
				t.Fatalf("%s: no input", id)
			}
			add(id, body, shown, validSays(v.Valid, ""))
		}
	}
	var mv []struct {
		Policy string `json:"policy"`
	}
	readJSON(t, "mox-match-vectors.json", &mv)
	seen := map[string]bool{}
	for i, v := range mv {
		if v.Policy != "" && !seen[v.Policy] {
			seen[v.Policy] = true
			add(fmt.Sprintf("mox-match-vectors.json#%d policy", i+1), []byte(v.Policy), v.Policy, "valid")
		}
	}
	for i, s := range scenarios(t) {
		if s.Body != nil {
			add(fmt.Sprintf("snawoot-scenarios.json#%d body", i+1), []byte(*s.Body), *s.Body, "resolver "+s.Expected.Resolver)
		}
	}
	return cs
}

func matchCases(t *testing.T) []vcase {
	type vec struct {
		Patterns []string `json:"patterns"`
		Host     string   `json:"host"`
		Match    bool     `json:"match"`
	}
	var cs []vcase
	for _, file := range []string{"mox-match-vectors.json", "gomtasts-vectors.json"} {
		var vs []vec
		readJSON(t, file, &vs)
		for i, v := range vs {
			cs = append(cs, vcase{area: areaMatch, id: fmt.Sprintf("%s#%d", file, i+1),
				input: fmt.Sprintf("[%s] <- %s", strings.Join(v.Patterns, " "), v.Host),
				says:  matchOutcome(v.Match), ours: oursMatch(v.Patterns, v.Host), mox: moxMatch(v.Patterns, v.Host)})
		}
	}
	return cs
}

func tlsrptCases(t *testing.T) []vcase {
	var vs []struct {
		Input string `json:"input"`
		Valid *bool  `json:"valid"`
	}
	readJSON(t, "mox-tlsrpt-record-vectors.json", &vs)
	var cs []vcase
	for i, v := range vs {
		cs = append(cs, vcase{area: areaTLSRPT, id: fmt.Sprintf("mox-tlsrpt-record-vectors.json#%d", i+1), input: v.Input,
			says: validSays(v.Valid, ""), ours: oursTLSRPT(v.Input), mox: moxTLSRPT(v.Input)})
	}
	return cs
}

// daneCases runs OpenSSL's DANE vectors (harness parameters of its
// test/recipes/80-test_dane.t: reference name example.com for
// danetest.in, server.example for dane-cross.in). The reference name is
// the TLSA base domain, which both sides use for DANE-TA name checks.
func daneCases(t *testing.T) []vcase {
	var cs []vcase
	for _, f := range []struct{ file, name string }{{"danetest.in", "example.com"}, {"dane-cross.in", "server.example"}} {
		for _, c := range parseDANETest(t, sharedFile(t, "vectors", "openssl-dane", f.file)) {
			recs := make([]string, len(c.records))
			for i, r := range c.records {
				recs[i] = fmt.Sprintf("%d %d %d", r.Usage, r.Selector, r.MatchingType)
			}
			ours, od := oursDANE(c.records, c.chain, f.name)
			mox, md := moxDANE(c.records, c.chain, f.name)
			cs = append(cs, vcase{area: areaDANE, id: fmt.Sprintf("%s#%d", f.file, c.num),
				input: fmt.Sprintf("%s; %d-cert chain; name %s", strings.Join(recs, ", "), len(c.chain), f.name),
				says:  fmt.Sprintf("openssl %d/%d", c.wantResult, c.wantDepth),
				ours:  ours, mox: mox, notes: fmt.Sprintf("smtptls: %s | mox: %s", od, md)})
		}
	}
	return cs
}

type osslCase struct {
	num                   int
	wantResult, wantDepth int
	records               []tlsverify.TLSA
	chain                 []*x509.Certificate
}

// parseDANETest reads OpenSSL's danetest.in format: blank and '#' lines
// are skipped between blocks; a block is a header of five integers,
// exactly <TLSA-count> record lines, then <cert-count> PEM certificates,
// each found the way PEM_read_bio finds it (text before -----BEGIN is
// skipped). That last rule makes cases 43-46, which declare one record
// and list two, load only the first, as OpenSSL's own harness does.
func parseDANETest(t *testing.T, data []byte) []osslCase {
	t.Helper()
	var cases []osslCase
	pos := 0
	nextLine := func() (string, bool) {
		if pos >= len(data) {
			return "", false
		}
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data) - pos
		}
		l := string(data[pos : pos+end])
		pos += end + 1
		return strings.TrimRight(l, "\r"), true
	}
	for {
		l, ok := nextLine()
		if !ok {
			return cases
		}
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("header %q does not hold five integers", l)
		}
		var n [5]int
		for i, s := range f {
			v, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("header %q: %v", l, err)
			}
			n[i] = v
		}
		c := osslCase{num: len(cases) + 1, wantResult: n[3], wantDepth: n[4]}
		for range n[0] {
			l, ok := nextLine()
			if !ok {
				t.Fatalf("case %d: truncated before its TLSA records", c.num)
			}
			r, err := parseTLSALine(l)
			if err != nil {
				t.Fatalf("case %d: %v", c.num, err)
			}
			c.records = append(c.records, r)
		}
		for range n[1] {
			blk, rest := pem.Decode(data[pos:])
			if blk == nil {
				t.Fatalf("case %d: missing certificate", c.num)
			}
			pos = len(data) - len(rest)
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatalf("case %d: %v", c.num, err)
			}
			c.chain = append(c.chain, cert)
		}
		cases = append(cases, c)
	}
}

// parseTLSALine parses "<usage> <selector> <mtype> <hex>", the hex in
// either case and possibly split by whitespace (RFC 6698 2.2).
func parseTLSALine(s string) (tlsverify.TLSA, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return tlsverify.TLSA{}, fmt.Errorf("TLSA record %q: too few fields", s)
	}
	var n [3]uint8
	for i := range n {
		v, err := strconv.ParseUint(f[i], 10, 8)
		if err != nil {
			return tlsverify.TLSA{}, fmt.Errorf("TLSA record %q: %v", s, err)
		}
		n[i] = uint8(v)
	}
	data, err := hex.DecodeString(strings.Join(f[3:], ""))
	if err != nil {
		return tlsverify.TLSA{}, fmt.Errorf("TLSA record %q: %v", s, err)
	}
	return tlsverify.TLSA{Usage: n[0], Selector: n[1], MatchingType: n[2], Data: data}, nil
}
