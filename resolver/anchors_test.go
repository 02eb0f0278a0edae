package resolver_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver"
)

func dsStrings(ds []*dns.DS) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

// TestParseAnchorsRoot: the root anchors in each published form (IANA's
// XML, unbound's root.key DNSKEYs, root.ds) parse to RootAnchors; the
// XML's retired KSK-2010 (validUntil 2019) is skipped.
func TestParseAnchorsRoot(t *testing.T) {
	t.Parallel()
	want := strings.Join(dsStrings(resolver.RootAnchors()), "\n")
	for _, file := range []string{"root-anchors.xml", "root.key", "root.ds"} {
		t.Run(file, func(t *testing.T) {
			f, err := os.Open("testdata/anchors/" + file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ds, err := resolver.ParseAnchors(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(dsStrings(ds), "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestParseAnchorsZones: $ORIGIN, parentheses, comments, omitted owners,
// several zones.
func TestParseAnchorsZones(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/anchors/private.zone")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ds, err := resolver.ParseAnchors(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Hdr.Name+" "+dns.TypeToString[d.Hdr.Rrtype])
	}
	if want := "corp.example. DS,lab.corp.example. DS,lab.corp.example. DS"; strings.Join(got, ",") != want {
		t.Errorf("anchors %v, want %s", got, want)
	}
	if ds[0].KeyTag != 2371 || ds[0].DigestType != dns.SHA256 || ds[0].Algorithm != 13 {
		t.Errorf("DNSKEY converted to %v", ds[0])
	}
}

func TestParseAnchorsErrors(t *testing.T) {
	t.Parallel()
	const ds = ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
	for _, tc := range []struct {
		name, in string
		line     int
	}{
		{"empty", "", 0},
		{"comments only", "; nothing\n\n", 0},
		{"other type", ds + "\n\nexample. IN A 192.0.2.1\n", 3},
		{"syntax", ds + "\n. IN DS 20326 8 2 nothex\n", 2},
		{"short digest", ". IN DS 20326 8 2 E06D44B8\n", 1},
		{"class", ". CH DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D", 1},
		{"not a zone key", "example. IN DNSKEY 1 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==", 1},
		{"revoked", "example. IN DNSKEY 385 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==", 1},
		{"unbalanced", ds + "\nexample. IN DS 1 13 2 (\n00\n", 2},
		{"directive", "$INCLUDE /etc/passwd\n", 1},
		{"XML syntax", "<TrustAnchor>\n<Zone>.</Zone>\n<KeyDigest>\n</TrustAnchor>", 4},
		{"XML bad tag", "<TrustAnchor>\n<Zone>.</Zone>\n<KeyDigest><KeyTag>70000</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>00</Digest></KeyDigest>\n</TrustAnchor>", 3},
		{"XML all expired", "<TrustAnchor><Zone>.</Zone><KeyDigest validUntil=\"2019-01-11T00:00:00+00:00\"><KeyTag>19036</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>49AAC11D7B6F6446702E54A1607371607A1A41855200FD2CE1CDDE32F24E8FB5</Digest></KeyDigest></TrustAnchor>", 0},
		{"XML not yet valid", "<TrustAnchor><Zone>.</Zone><KeyDigest validFrom=\"2999-01-01T00:00:00Z\"><KeyTag>1</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>49AAC11D7B6F6446702E54A1607371607A1A41855200FD2CE1CDDE32F24E8FB5</Digest></KeyDigest></TrustAnchor>", 0},
		{"XML without zone", "<TrustAnchor></TrustAnchor>", 0},
		{"too large", strings.Repeat(";", resolver.MaxAnchorsSize+1), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := resolver.ParseAnchors(strings.NewReader(tc.in))
			var e *resolver.AnchorsError
			if !errors.As(err, &e) {
				t.Fatalf("ParseAnchors = %v, %v; want an *AnchorsError", got, err)
			}
			if e.Line != tc.line {
				t.Errorf("line %d, want %d: %v", e.Line, tc.line, err)
			}
		})
	}
}
