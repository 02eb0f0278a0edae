package tlsverify

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vector is one case of testdata/vectors (format in testdata/gen.go).
type vector struct {
	name   string
	expect string // "match" or "error"
	depth  int
	record int    // index of the matching record (match)
	kind   string // Kind token (error)
	result string // TLS-RPT result type (error)
	dane   *DANE
	chain  []*x509.Certificate
	ders   [][]byte
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "vectors", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in testdata/vectors (%v)", err)
	}
	var vs []vector
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseVector(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		v.name = strings.TrimSuffix(filepath.Base(f), ".txt")
		vs = append(vs, v)
	}
	return vs
}

func parseVector(b []byte) (vector, error) {
	v := vector{dane: &DANE{Names: []string{}}, depth: -2, record: -1}
	head, body, _ := bytes.Cut(b, []byte("\n\n"))
	for l := range strings.SplitSeq(string(head), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		key, val, ok := strings.Cut(l, ": ")
		if !ok {
			return v, fmt.Errorf("bad header line %q", l)
		}
		switch key {
		case "expect":
			f := strings.Fields(val)
			v.expect = f[0]
			for _, kv := range f[1:] {
				k, x, _ := strings.Cut(kv, "=")
				switch k {
				case "depth":
					v.depth, _ = strconv.Atoi(x)
				case "record":
					v.record, _ = strconv.Atoi(x)
				case "kind":
					v.kind = x
				case "result":
					v.result = x
				default:
					return v, fmt.Errorf("unknown expect field %q", kv)
				}
			}
		case "name":
			v.dane.Names = append(v.dane.Names, val)
		case "now":
			now, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return v, err
			}
			v.dane.Now = func() time.Time { return now }
		case "digest-preference":
			for _, x := range strings.Fields(val) {
				n, err := strconv.ParseUint(x, 10, 8)
				if err != nil {
					return v, err
				}
				v.dane.DigestPreference = append(v.dane.DigestPreference, uint8(n))
			}
		case "tlsa":
			r, err := parseTLSALine(val)
			if err != nil {
				return v, err
			}
			v.dane.Records = append(v.dane.Records, r)
		default:
			return v, fmt.Errorf("unknown header %q", key)
		}
	}
	for {
		var blk *pem.Block
		blk, body = pem.Decode(body)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return v, err
		}
		v.chain = append(v.chain, c)
		v.ders = append(v.ders, blk.Bytes)
	}
	switch {
	case v.expect != "match" && v.expect != "error":
		return v, fmt.Errorf("bad expect %q", v.expect)
	case v.depth == -2:
		return v, errors.New("expect without depth")
	case v.expect == "match" && (v.record < 0 || v.record >= len(v.dane.Records)):
		return v, errors.New("match without a valid record index")
	case v.expect == "error" && (v.kind == "" || v.result == ""):
		return v, errors.New("error without kind and result")
	case len(v.chain) == 0:
		return v, errors.New("no certificates")
	}
	return v, nil
}

func sameRecord(a, b TLSA) bool {
	return a.Usage == b.Usage && a.Selector == b.Selector && a.MatchingType == b.MatchingType && bytes.Equal(a.Data, b.Data)
}

func TestVectors(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			m, err := v.dane.VerifyChain(v.chain)
			if m.Depth != v.depth {
				t.Errorf("depth %d, want %d (err %v)", m.Depth, v.depth, err)
			}
			switch v.expect {
			case "match":
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if want := v.dane.Records[v.record]; !sameRecord(m.Record, want) {
					t.Errorf("matched %v, want record %d (%v)", m.Record.short(), v.record, want.short())
				}
			case "error":
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("got %v, want a *Error of kind %s", err, v.kind)
				}
				if e.Kind.String() != v.kind || string(e.Result) != v.result {
					t.Errorf("got kind %s result %s (%v), want kind %s result %s", e.Kind, e.Result, err, v.kind, v.result)
				}
				if e.Result != e.Kind.Result() {
					t.Errorf("Result %s disagrees with Kind.Result %s", e.Result, e.Kind.Result())
				}
			}
		})
	}
}
