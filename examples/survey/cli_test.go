package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/internal/rawserver"
	"golang.org/x/net/html"
)

// TestUsage: -h lists every flag and exits 0; each misuse exits 2 with
// a message, before anything is surveyed.
func TestUsage(t *testing.T) {
	t.Parallel()
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, nil, io.Discard, &errb, hooks{}); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	newFlags(&config{}, io.Discard).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(errb.String(), "  -"+f.Name) {
			t.Errorf("-h does not list -%s:\n%s", f.Name, errb.String())
		}
	})
	for _, n := range strings.Fields("resolver anchors trust-ad ca concurrency qps timeout starttls out resume shard merge summary json-summary html") {
		if newFlags(&config{}, io.Discard).Lookup(n) == nil {
			t.Errorf("flag -%s, named by the issue, is missing", n)
		}
	}
	for _, args := range [][]string{
		{},
		{"a", "b"},
		{"-merge"},
		{"-merge", "-resume", "x.jsonl"},
		{"-merge", "-shard", "1/2", "x.jsonl"},
		{"-resume", "list"},
		{"-shard", "0/2", "list"},
		{"-shard", "3/2", "list"},
		{"-shard", "x", "list"},
		{"-trust-ad", "-anchors", "a.zone", "list"},
		{"-concurrency", "0", "list"},
		{"-qps", "-1", "list"},
		{"-timeout", "0s", "list"},
		{"-resolver", "no-port", "list"},
		{"-no-such-flag", "list"},
	} {
		var errb bytes.Buffer
		if code := run(context.Background(), args, nil, io.Discard, &errb, hooks{}); code != 2 || errb.Len() == 0 {
			t.Errorf("%q: exit %d, want 2 with a message (%q)", args, code, errb.String())
		}
	}
}

// TestUnfitResolver: a resolver through which DANE cannot work ends the
// run before anything is written, with the start-up probe's finding.
func TestUnfitResolver(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := writeTemp(t, dir, "list", "example.test\n")
	out := filepath.Join(dir, "out.jsonl")
	var errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"-resolver", rawserver.BlockingResolver(t), "-timeout", "5s", "-out", out, list}, nil, io.Discard, &errb, hooks{})
	if code != 1 || !strings.Contains(errb.String(), "cannot support DANE") || !strings.Contains(errb.String(), "no DNSKEY") {
		t.Errorf("exit %d, want 1 with the probe's finding:\n%s", code, errb.String())
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s written by a run that could not start", out)
	}
}

// TestHTMLSelfContained: the HTML report has charts (inline SVG) and no
// script, style sheet, image or any other thing to fetch.
func TestHTMLSelfContained(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	s := sampleSummary()
	if err := s.writeHTML(&b); err != nil {
		t.Fatal(err)
	}
	z := html.NewTokenizer(bytes.NewReader(b.Bytes()))
	svgs, rects := 0, 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			break
		}
		name, hasAttr := z.TagName()
		switch string(name) {
		case "script", "link", "img", "iframe", "object", "embed", "image", "use":
			t.Errorf("<%s> in a self-contained page", name)
		case "svg":
			if tt == html.StartTagToken {
				svgs++
			}
		case "rect":
			rects++
		}
		for hasAttr {
			var k, v []byte
			k, v, hasAttr = z.TagAttr()
			if key := string(k); key == "src" || key == "href" || strings.HasPrefix(key, "on") || strings.Contains(string(v), "url(") {
				t.Errorf("attribute %s=%q in a self-contained page", k, v)
			}
		}
	}
	if svgs < 4 || rects < 12 {
		t.Errorf("%d charts with %d bars, want the MX, DANE, MTA-STS and provider charts", svgs, rects)
	}
	if strings.Contains(b.String(), "<script") || !strings.Contains(b.String(), "example.org") {
		t.Errorf("page:\n%s", b.String())
	}
}

// sampleSummary is a summary with every section filled.
func sampleSummary() Summary {
	a := newAggregator(5)
	recs := []Record{
		{Domain: "example.org", Rank: 1, MXStatus: mxOK, MXSecure: true, DANE: daneFull, MTASTS: stsEnforce, TLSRPT: true, Provider: "provider.example",
			MX: []MXHost{{Host: "mx.provider.example", Preference: 10, TLSA: tlsaUsable, STARTTLS: probeOK, Match: "verified", Rollover: "current+issuer"}}},
		{Domain: "example.net", Rank: 2, MXStatus: mxOK, MXSecure: true, DANE: danePartial, MTASTS: stsTesting, Provider: "provider.example",
			MX: []MXHost{{Host: "mx.provider.example", Preference: 10, TLSA: tlsaUsable, STARTTLS: probeOK, Match: "verified", Rollover: "none"}, {Host: "mx.other.example", Preference: 20, TLSA: tlsaNone}}},
		{Domain: "example.com", Rank: 3, MXStatus: mxImplicit, DANE: daneNone, MTASTS: stsAbsent, Provider: "example.com", MX: []MXHost{{Host: "example.com", TLSA: tlsaNone}}},
		{Domain: "null.example", MXStatus: mxNull, MXSecure: true, DANE: daneNone, MTASTS: stsInvalid, MX: []MXHost{}},
		{Domain: "gone.example", MXStatus: mxNXDomain, DANE: daneNone, MTASTS: stsAbsent, MX: []MXHost{}},
		{Domain: "broken.example", Error: "resolver: SERVFAIL", MX: []MXHost{}},
	}
	for i := range recs {
		a.add(&recs[i])
	}
	return a.summary()
}
