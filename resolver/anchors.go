package resolver

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// RootAnchors returns the IANA root zone trust anchors in DS form: the
// key-signing keys KSK-2017 (key tag 20326) and KSK-2024 (key tag 38696),
// both algorithm 8 with SHA-256 digests, as published in
// https://data.iana.org/root-anchors/root-anchors.xml. Either validates the
// root DNSKEY RRset (RFC 6840 5.11: one valid path suffices), which carries
// a validator across the KSK rollover. KSK-2010 (19036) is retired and not
// included.
//
// Each call returns fresh records that the caller may modify.
func RootAnchors() []*dns.DS {
	mk := func(tag uint16, digest string) *dns.DS {
		return &dns.DS{
			Hdr:        dns.RR_Header{Name: ".", Rrtype: dns.TypeDS, Class: dns.ClassINET, Ttl: 172800},
			KeyTag:     tag,
			Algorithm:  dns.RSASHA256,
			DigestType: dns.SHA256,
			Digest:     digest,
		}
	}
	return []*dns.DS{
		mk(20326, "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"),
		mk(38696, "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16"),
	}
}

// MaxAnchorsSize bounds the input ParseAnchors reads: an anchor file
// holds a few records, IANA's root-anchors.xml under 2 KiB.
const MaxAnchorsSize = 1 << 20

// AnchorsError reports why ParseAnchors refused its input.
type AnchorsError struct {
	// Line is the line of the input the error is about, counting from
	// 1, or 0 when it concerns the input as a whole.
	Line int
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *AnchorsError) Error() string {
	s := "resolver: trust anchors"
	if e.Line > 0 {
		s += ": line " + strconv.Itoa(e.Line)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *AnchorsError) Unwrap() error { return e.Err }

// ParseAnchors reads trust anchors for Validating.Anchors, in either of
// two formats, told apart by the first non-blank character ('<' for
// XML):
//
//   - DS and DNSKEY records in zone-file syntax (RFC 1035 5.1), as
//     unbound's trust-anchor-file, BIND's dsset files and dig print them:
//     one record per line or spread over lines in parentheses, comments
//     after ';', $ORIGIN for relative owner names (the root otherwise)
//     and $TTL (TTLs are ignored, as unbound ignores them). A DNSKEY must
//     be a zone key (RFC 4034 2.1.1) of protocol 3 and not revoked (RFC
//     5011 2.1); it becomes the DS of its SHA-256 digest (RFC 4509).
//   - IANA's root-anchors.xml (RFC 9718 2): a TrustAnchor element with a
//     Zone and KeyDigest elements (KeyTag, Algorithm, DigestType,
//     Digest). A KeyDigest whose validFrom lies in the future or whose
//     validUntil has passed, judged by time.Now, is skipped, as RFC 9718
//     2.3 says a relying party does: the retired KSK-2010 is not loaded.
//
// A DS digest must be hexadecimal and, for the digest types validated
// (SHA-1, SHA-256, SHA-384), of the right length. Any other record type,
// class or syntax error is an error naming its line (*AnchorsError), as
// is input larger than MaxAnchorsSize and input without any usable
// anchor: an empty anchor set would make every answer Insecure.
//
// Private anchors are meant to go next to the root's:
//
//	private, err := resolver.ParseAnchors(f)
//	...
//	v := &resolver.Validating{Anchors: append(resolver.RootAnchors(), private...)}
func ParseAnchors(r io.Reader) ([]*dns.DS, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxAnchorsSize+1))
	if err != nil {
		return nil, &AnchorsError{Reason: "read", Err: err}
	}
	if len(data) > MaxAnchorsSize {
		return nil, &AnchorsError{Reason: "input larger than " + strconv.Itoa(MaxAnchorsSize) + " bytes"}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var out []*dns.DS
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '<' {
		out, err = parseAnchorsXML(data, time.Now())
	} else {
		out, err = parseAnchorsZone(data)
	}
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, &AnchorsError{Reason: "no trust anchor in force found"}
	}
	return out, nil
}

// parseAnchorsZone reads zone-file syntax. Records are cut into logical
// lines here (parentheses joined, comments dropped) so that each error
// names the line its record starts on; each is then parsed by miekg/dns.
func parseAnchorsZone(data []byte) ([]*dns.DS, error) {
	var (
		out    []*dns.DS
		origin = "."
		owner  string // the previous owner, for records that omit it
		rec    strings.Builder
		start  int // line of the record being gathered
		depth  int // open parentheses
	)
	flush := func() error {
		text := rec.String()
		rec.Reset()
		if strings.TrimSpace(text) == "" {
			return nil
		}
		if f := strings.Fields(text); strings.HasPrefix(f[0], "$") {
			switch strings.ToUpper(f[0]) {
			case "$ORIGIN":
				if len(f) != 2 {
					return &AnchorsError{Line: start, Reason: "$ORIGIN needs one name"}
				}
				o := f[1]
				if !dns.IsFqdn(o) {
					o = dns.Fqdn(o)
					if origin != "." {
						o += origin
					}
				}
				if _, ok := dns.IsDomainName(o); !ok {
					return &AnchorsError{Line: start, Reason: "$ORIGIN " + quoteBounded(f[1]) + " is not a domain name"}
				}
				origin = strings.ToLower(o)
				return nil
			case "$TTL":
				return nil
			}
			return &AnchorsError{Line: start, Reason: "directive " + quoteBounded(f[0]) + " not supported"}
		}
		if text[0] == ' ' || text[0] == '\t' {
			if owner == "" {
				return &AnchorsError{Line: start, Reason: "record without an owner name"}
			}
			text = owner + text
		}
		zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
		rr, ok := zp.Next()
		if err := zp.Err(); err != nil || !ok {
			return &AnchorsError{Line: start, Reason: "not a DS or DNSKEY record", Err: err}
		}
		if _, more := zp.Next(); more {
			return &AnchorsError{Line: start, Reason: "more than one record on a line"}
		}
		owner = rr.Header().Name
		ds, err := anchorFromRR(rr)
		if err != nil {
			return &AnchorsError{Line: start, Reason: err.Error()}
		}
		out = append(out, ds)
		return nil
	}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if k := strings.IndexByte(line, ';'); k >= 0 {
			line = line[:k] // DS and DNSKEY data hold no quoted strings
		}
		if depth == 0 {
			if err := flush(); err != nil {
				return nil, err
			}
			start = n
		}
		for _, c := range line {
			switch c {
			case '(':
				depth++
			case ')':
				if depth == 0 {
					return nil, &AnchorsError{Line: n, Reason: "unbalanced ')'"}
				}
				depth--
			}
		}
		rec.WriteString(line)
		rec.WriteByte(' ')
	}
	if depth > 0 {
		return nil, &AnchorsError{Line: start, Reason: "unbalanced '('"}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// anchorFromRR returns the DS form of a DS or DNSKEY anchor record.
func anchorFromRR(rr dns.RR) (*dns.DS, error) {
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return nil, errors.New("class " + dns.ClassToString[h.Class] + " is not IN")
	}
	var ds *dns.DS
	switch v := rr.(type) {
	case *dns.DS:
		ds = v
	case *dns.DNSKEY:
		switch {
		case v.Protocol != 3:
			return nil, errors.New("DNSKEY protocol " + strconv.Itoa(int(v.Protocol)) + " is not 3 (RFC 4034 2.1.2)")
		case v.Flags&dns.ZONE == 0:
			return nil, errors.New("DNSKEY without the Zone Key flag cannot anchor a zone (RFC 4034 2.1.1)")
		case v.Flags&dns.REVOKE != 0:
			return nil, errors.New("DNSKEY is revoked (RFC 5011 2.1)")
		}
		if ds = v.ToDS(dns.SHA256); ds == nil {
			return nil, errors.New("DNSKEY public key does not encode")
		}
	default:
		return nil, errors.New("record type " + dns.TypeToString[h.Rrtype] + " is not a trust anchor (DS or DNSKEY)")
	}
	return checkAnchorDS(h.Name, ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
}

// digestLen is the digest size of the DS digest types validated.
var digestLen = map[uint8]int{dns.SHA1: 20, dns.SHA256: 32, dns.SHA384: 48}

// checkAnchorDS builds an anchor DS, checking its owner and digest.
func checkAnchorDS(zone string, tag uint16, alg, digestType uint8, digest string) (*dns.DS, error) {
	zone = Fqdn(zone)
	if _, ok := dns.IsDomainName(zone); !ok || len(zone) > 254 {
		return nil, errors.New("zone " + quoteBounded(zone) + " is not a domain name")
	}
	b, err := hex.DecodeString(digest)
	if err != nil || len(b) == 0 {
		return nil, errors.New("digest is not hexadecimal")
	}
	if n, ok := digestLen[digestType]; ok && len(b) != n {
		return nil, errors.New("digest of type " + strconv.Itoa(int(digestType)) + " has " + strconv.Itoa(len(b)) + " octets, not " + strconv.Itoa(n))
	}
	return &dns.DS{
		Hdr:        dns.RR_Header{Name: zone, Rrtype: dns.TypeDS, Class: dns.ClassINET, Ttl: 172800},
		KeyTag:     tag,
		Algorithm:  alg,
		DigestType: digestType,
		Digest:     strings.ToUpper(hex.EncodeToString(b)),
	}, nil
}

// xmlKeyDigest is one KeyDigest element of root-anchors.xml (RFC 9718
// 2.2); elements it does not name (Flags, PublicKey) are ignored.
type xmlKeyDigest struct {
	ValidFrom  string `xml:"validFrom,attr"`
	ValidUntil string `xml:"validUntil,attr"`
	KeyTag     string `xml:"KeyTag"`
	Algorithm  string `xml:"Algorithm"`
	DigestType string `xml:"DigestType"`
	Digest     string `xml:"Digest"`
}

// parseAnchorsXML reads IANA's root-anchors.xml format.
func parseAnchorsXML(data []byte, now time.Time) ([]*dns.DS, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var (
		out     []*dns.DS
		zone    string
		inRoot  bool
		seenTA  bool
		pending []struct {
			line int
			kd   xmlKeyDigest
		}
	)
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, xmlError(line, "XML", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			if ee, ok := tok.(xml.EndElement); ok && ee.Name.Local == "TrustAnchor" {
				inRoot = false
			}
			continue
		}
		switch {
		case !inRoot && se.Name.Local == "TrustAnchor":
			if seenTA {
				return nil, &AnchorsError{Line: line, Reason: "more than one TrustAnchor element"}
			}
			inRoot, seenTA = true, true
		case !inRoot:
			return nil, &AnchorsError{Line: line, Reason: "element " + quoteBounded(se.Name.Local) + " outside TrustAnchor"}
		case se.Name.Local == "Zone":
			var z string
			if err := d.DecodeElement(&z, &se); err != nil {
				return nil, xmlError(line, "Zone", err)
			}
			zone = strings.TrimSpace(z)
		case se.Name.Local == "KeyDigest":
			var kd xmlKeyDigest
			if err := d.DecodeElement(&kd, &se); err != nil {
				return nil, xmlError(line, "KeyDigest", err)
			}
			pending = append(pending, struct {
				line int
				kd   xmlKeyDigest
			}{line, kd})
		default:
			if err := d.Skip(); err != nil {
				return nil, xmlError(line, "XML", err)
			}
		}
	}
	if !seenTA {
		return nil, &AnchorsError{Reason: "no TrustAnchor element"}
	}
	if zone == "" {
		return nil, &AnchorsError{Reason: "TrustAnchor without a Zone"}
	}
	for _, p := range pending {
		ds, inForce, err := xmlDigest(zone, p.kd, now)
		if err != nil {
			return nil, &AnchorsError{Line: p.line, Reason: "KeyDigest: " + err.Error()}
		}
		if inForce {
			out = append(out, ds)
		}
	}
	return out, nil
}

// xmlError reports an XML error at the line of its syntax error, or at
// line, where the element began.
func xmlError(line int, what string, err error) *AnchorsError {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		line = se.Line
	}
	return &AnchorsError{Line: line, Reason: what, Err: err}
}

// xmlDigest converts one KeyDigest; inForce is false outside its
// validFrom..validUntil period (RFC 9718 2.3).
func xmlDigest(zone string, kd xmlKeyDigest, now time.Time) (ds *dns.DS, inForce bool, err error) {
	num := func(what, s string, bits int) (uint64, error) {
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, bits)
		if err != nil {
			return 0, errors.New(what + " " + quoteBounded(s) + " is not a number below 2^" + strconv.Itoa(bits))
		}
		return v, nil
	}
	tag, err := num("KeyTag", kd.KeyTag, 16)
	if err != nil {
		return nil, false, err
	}
	alg, err := num("Algorithm", kd.Algorithm, 8)
	if err != nil {
		return nil, false, err
	}
	dt, err := num("DigestType", kd.DigestType, 8)
	if err != nil {
		return nil, false, err
	}
	if ds, err = checkAnchorDS(zone, uint16(tag), uint8(alg), uint8(dt), strings.TrimSpace(kd.Digest)); err != nil {
		return nil, false, err
	}
	inForce = true
	for _, t := range []struct {
		name, v string
		after   bool
	}{{"validFrom", kd.ValidFrom, false}, {"validUntil", kd.ValidUntil, true}} {
		if t.v == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339, strings.TrimSpace(t.v))
		if err != nil {
			return nil, false, errors.New(t.name + " " + quoteBounded(t.v) + " is not an RFC 3339 time")
		}
		if (!t.after && now.Before(at)) || (t.after && !now.Before(at)) {
			inForce = false
		}
	}
	return ds, inForce, nil
}
