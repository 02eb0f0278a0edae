package peers

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	moxdane "github.com/mjl-/mox/dane"
	moxdns "github.com/mjl-/mox/dns"
	moxmtasts "github.com/mjl-/mox/mtasts"
	moxtlsrpt "github.com/mjl-/mox/tlsrpt"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/tlsrpt"
	"github.com/smtptls/smtptls/tlsverify"
)

// Inputs of the benchmarks. Both implementations get the same bytes;
// TestBenchInputsAgree checks that they also reach the same result, so
// that every pair of figures measures the same work.
const (
	// benchRecord is a typical _mta-sts TXT record.
	benchRecord = "v=STSv1; id=20240131T120000Z;"
	// benchPolicy is a typical policy body: three mx lines, one of them
	// a wildcard, CRLF line ends as many servers send them.
	benchPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.mx.example.net\r\nmx: backup.example.org\r\nmax_age: 604800\r\n"
	// benchHit matches benchPolicy's wildcard (its second pattern).
	benchHit = "a.mx.example.net"
	// benchMiss matches none of benchPolicy's patterns (all are tried).
	benchMiss = "mail.example.org"
	// benchTLSRPT is a typical _smtp._tls TXT record with two rua URIs.
	benchTLSRPT = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://reports.example.com/v1/tlsrpt"
)

// benchPolicyLarge is a policy with 100 mx lines (about 2.5 KB), the
// size of a large hosting provider's policy.
func benchPolicyLarge() string {
	var b strings.Builder
	b.WriteString("version: STSv1\nmode: enforce\nmax_age: 1209600\n")
	for i := range 100 {
		fmt.Fprintf(&b, "mx: mx%03d.mail.example.com\n", i)
	}
	return b.String()
}

func BenchmarkParseRecord(b *testing.B) {
	b.Run("smtptls", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := mtasts.ParseRecord(benchRecord); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mox", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := moxmtasts.ParseRecord(benchRecord); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchParsePolicy gives each side the body in the type its API takes
// (smtptls a []byte as read from the HTTP response, mox a string);
// the conversion is outside the loop.
func benchParsePolicy(b *testing.B, body string) {
	b.Run("smtptls", func(b *testing.B) {
		in := []byte(body)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := mtasts.ParsePolicy(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mox", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := moxmtasts.ParsePolicy(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParsePolicy(b *testing.B)      { benchParsePolicy(b, benchPolicy) }
func BenchmarkParsePolicyLarge(b *testing.B) { benchParsePolicy(b, benchPolicyLarge()) }

// benchMatch compares the check an MTA makes per MX host. "smtptls"
// takes the host name as a string and canonicalises it on every call
// (Match); "smtptls-preparsed" is MatchHost on a name parsed once with
// ParseHostName. mox takes a parsed dns.Domain: "mox" includes the
// dns.ParseDomainLax its delivery code runs on each MX target
// (smtpclient/gather.go), and "mox-preparsed" is Matches alone, for a
// caller that already holds the parsed name.
func benchMatch(b *testing.B, host string, want bool) {
	ours, err := mtasts.ParsePolicy([]byte(benchPolicy))
	if err != nil {
		b.Fatal(err)
	}
	theirs, err := moxmtasts.ParsePolicy(benchPolicy)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("smtptls", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ours.Match(host) != want {
				b.Fatal("wrong match result")
			}
		}
	})
	b.Run("mox", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := moxdns.ParseDomainLax(strings.TrimSuffix(host, "."))
			if err != nil || theirs.Matches(d) != want {
				b.Fatal("wrong match result", err)
			}
		}
	})
	b.Run("smtptls-preparsed", func(b *testing.B) {
		h, err := mtasts.ParseHostName(host)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if ours.MatchHost(h) != want {
				b.Fatal("wrong match result")
			}
		}
	})
	b.Run("mox-preparsed", func(b *testing.B) {
		d, err := moxdns.ParseDomainLax(host)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if theirs.Matches(d) != want {
				b.Fatal("wrong match result")
			}
		}
	})
}

func BenchmarkMatch(b *testing.B)     { benchMatch(b, benchHit, true) }
func BenchmarkMatchMiss(b *testing.B) { benchMatch(b, benchMiss, false) }

func BenchmarkTLSRPTParseRecord(b *testing.B) {
	b.Run("smtptls", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tlsrpt.ParseRecord(benchTLSRPT); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mox", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := moxtlsrpt.ParseRecord(benchTLSRPT); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchDANE verifies the same 3-certificate chain against the same
// one-record TLSA RRset on both sides:
//
//   - "smtptls": a new tlsverify.DANE per verification, as an MTA builds
//     one per TLSA lookup and handshake. This is the like-for-like figure:
//     mox's dane.Verify keeps no state between calls either.
//   - "smtptls-reused": one DANE value for all verifications (its derived
//     state is computed on the first), as when a value is reused across
//     connections to the same host.
//   - "mox": dane.Verify with the chain in a tls.ConnectionState, the base
//     domain as allowed host, no PKIX roots and a discarding logger.
//     The usability filter mox's SMTP client runs once per TLSA lookup
//     (smtpclient.GatherTLSA) is outside the loop; for digest records it
//     is a length check.
func benchDANE(b *testing.B, record func(chain []*x509.Certificate) tlsverify.TLSA) {
	chain := newChain(b)
	recs := []tlsverify.TLSA{record(chain)}
	names := []string{benchHost}
	moxRecs := moxUsable(moxRecords(recs))
	if len(moxRecs) != 1 {
		b.Fatal("mox finds the record unusable")
	}
	cs := tls.ConnectionState{PeerCertificates: chain}
	host := moxdns.Domain{ASCII: benchHost}
	b.Run("smtptls", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := &tlsverify.DANE{Records: recs, Names: names}
			if _, err := d.VerifyChain(chain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("smtptls-reused", func(b *testing.B) {
		d := &tlsverify.DANE{Records: recs, Names: names}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.VerifyChain(chain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mox", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, _, err := moxdane.Verify(discard, moxRecs, cs, host, nil, nil); !ok {
				b.Fatal("not verified", err)
			}
		}
	})
}

// BenchmarkDANE311 is DANE-EE(3) SPKI(1) SHA-256 on the leaf: one hash.
func BenchmarkDANE311(b *testing.B) {
	benchDANE(b, func(c []*x509.Certificate) tlsverify.TLSA { return spkiSHA256(tlsverify.DANEEE, c[0]) })
}

// BenchmarkDANE211 is DANE-TA(2) SPKI(1) SHA-256 on the intermediate:
// path building, the leaf's signature, validity and name checks.
func BenchmarkDANE211(b *testing.B) {
	benchDANE(b, func(c []*x509.Certificate) tlsverify.TLSA { return spkiSHA256(tlsverify.DANETA, c[1]) })
}

// BenchmarkDANE211Root is DANE-TA(2) SPKI(1) SHA-256 on the root: two
// signatures (the intermediate's is RSA-2048).
func BenchmarkDANE211Root(b *testing.B) {
	benchDANE(b, func(c []*x509.Certificate) tlsverify.TLSA { return spkiSHA256(tlsverify.DANETA, c[2]) })
}

// TestBenchInputsAgree runs every benchmark input through both adapters:
// a pair of figures is only comparable when both sides accept the input
// and reach the same result. It needs no shared data.
func TestBenchInputsAgree(t *testing.T) {
	t.Parallel()
	type tc struct {
		name, ours, mox, want string
	}
	cases := []tc{
		{"record", oursRecord(benchRecord), moxRecord(benchRecord), "id=20240131T120000Z"},
		{"policy", oursPolicy([]byte(benchPolicy)), moxPolicy([]byte(benchPolicy)),
			"enforce max_age=604800 mx=[mail.example.com *.mx.example.net backup.example.org]"},
		{"policy-large", oursPolicy([]byte(benchPolicyLarge())), moxPolicy([]byte(benchPolicyLarge())), ""},
		{"tlsrpt", oursTLSRPT(benchTLSRPT), moxTLSRPT(benchTLSRPT),
			"rua=[mailto:tlsrpt@example.com https://reports.example.com/v1/tlsrpt]"},
	}
	ours, err := mtasts.ParsePolicy([]byte(benchPolicy))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct{ host, want string }{{benchHit, "match"}, {benchMiss, "no match"}} {
		cases = append(cases, tc{"match " + h.host, oursMatch(ours.MX, h.host), moxMatch(ours.MX, h.host), h.want})
	}
	chain := newChain(t)
	for _, r := range []struct {
		name string
		rec  tlsverify.TLSA
	}{
		{"dane 3 1 1 leaf", spkiSHA256(tlsverify.DANEEE, chain[0])},
		{"dane 2 1 1 intermediate", spkiSHA256(tlsverify.DANETA, chain[1])},
		{"dane 2 1 1 root", spkiSHA256(tlsverify.DANETA, chain[2])},
	} {
		o, od := oursDANE([]tlsverify.TLSA{r.rec}, chain, benchHost)
		m, md := moxDANE([]tlsverify.TLSA{r.rec}, chain, benchHost)
		cases = append(cases, tc{r.name, o, m, "accept"})
		t.Logf("%s: smtptls %s; mox %s", r.name, od, md)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.ours != c.mox {
				t.Errorf("smtptls %q, mox %q: the benchmark would compare different work", c.ours, c.mox)
			}
			if c.ours == invalid || (c.want != "" && c.ours != c.want) {
				t.Errorf("outcome %q, want %q", c.ours, c.want)
			}
		})
	}
}
