package tlsrpt

import (
	"net/mail"
	"net/url"
	"strings"

	"github.com/smtptls/smtptls/internal/quote"
)

// Record is a parsed TLS-RPT TXT record, published at
// _smtp._tls.<domain> (RFC 8460 3). Its version is always TLSRPTv1: a
// record of any other version is not a TLS-RPT record.
type Record struct {
	// RUA holds the report URIs of every rua field, in record order, as
	// written (percent-encoding kept). RFC 8460 3 admits any URI here but
	// defines delivery only for the mailto and https schemes; use Mailto
	// and HTTPS for those. URIs of other schemes (http, ftp, ...) are kept
	// so that a record can be shown as published, and are never used.
	RUA []string
	// Extensions holds the fields other than v and rua, in record order.
	// RFC 8460 3 says unknown fields SHALL be ignored: they are kept only
	// for display and String.
	Extensions []Extension
}

// Extension is a key-value field that this package does not interpret.
type Extension struct {
	// Key is the extension name.
	Key string
	// Value is the extension value, as written.
	Value string
}

// String returns the record in the RFC 8460 3 syntax with "; " between
// the fields and all URIs in one rua field. Commas, exclamation points,
// semicolons and white space inside a URI are percent-encoded, as the
// ABNF requires.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString("v=TLSRPTv1; rua=")
	for i, u := range r.RUA {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(encodeRUA(u))
	}
	for _, e := range r.Extensions {
		b.WriteString("; ")
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
	}
	return b.String()
}

func encodeRUA(u string) string {
	return strings.NewReplacer(",", "%2C", "!", "%21", ";", "%3B", " ", "%20", "\t", "%09").Replace(u)
}

// Mailto returns the addresses (addr-spec, RFC 6068) of the record's
// mailto URIs, in record order without duplicates. A mailto URI may name
// several addresses separated by an encoded comma; header fields after
// "?" are ignored. URIs without a usable address are skipped.
func (r *Record) Mailto() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range r.RUA {
		u, err := url.Parse(s)
		if err != nil || !strings.EqualFold(u.Scheme, "mailto") || u.Opaque == "" {
			continue
		}
		to, err := url.PathUnescape(u.Opaque)
		if err != nil {
			continue
		}
		for a := range strings.SplitSeq(to, ",") {
			addr, err := mail.ParseAddress(strings.TrimSpace(a))
			if err != nil || addr.Name != "" || seen[addr.Address] {
				continue
			}
			seen[addr.Address] = true
			out = append(out, addr.Address)
		}
	}
	return out
}

// HTTPS returns the record's https URIs that have a host, in record order
// without duplicates (RFC 8460 3: reports are POSTed to them).
func (r *Record) HTTPS() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range r.RUA {
		u, err := url.Parse(s)
		if err != nil || !strings.EqualFold(u.Scheme, "https") || u.Host == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// ParseRecord parses the text of one TXT record (its strings joined with
// nothing between them) strictly by the RFC 8460 3 ABNF:
//
//	tlsrpt-record     = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//	field-delim       = *WSP ";" *WSP
//	tlsrpt-field      = tlsrpt-rua / tlsrpt-extension
//	tlsrpt-version    = %s"v=TLSRPTv1"
//	tlsrpt-rua        = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//	tlsrpt-uri        = URI   ; RFC 3986; "," and "!" MUST be encoded
//	tlsrpt-extension  = tlsrpt-ext-name "=" tlsrpt-ext-value
//	tlsrpt-ext-name   = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//	tlsrpt-ext-value  = 1*(%x21-3A / %x3C / %x3E-7E)
//
// At least one rua field is required; several are allowed and their URIs
// are concatenated. A URI ends at white space, ",", ";" or "!", and must
// be an absolute RFC 3986 URI (a scheme, valid characters, valid
// percent-encoding). Its scheme is not checked here: RFC 8460 3 says
// parsers MUST accept syntactically valid records, so a record whose rua
// names only, say, an http URI parses and yields no destination from
// Mailto or HTTPS. Trailing white space without a final ";" is refused,
// as the ABNF does. Errors are *Error with KindRecordSyntax.
func ParseRecord(txt string) (*Record, error) {
	fail := func(reason string) (*Record, error) {
		return nil, &Error{Kind: KindRecordSyntax, Reason: reason + " in " + quote.String(txt)}
	}
	const version = "v=TLSRPTv1"
	if !strings.HasPrefix(txt, version) {
		return fail("record does not start with v=TLSRPTv1")
	}
	s := txt[len(version):]
	r := &Record{}
	seenRUA := false
	for {
		// field-delim, required before every field.
		t := trimWSP(s)
		if t == "" {
			if s != "" {
				// WSP may only trail as part of a final delimiter.
				return fail("trailing whitespace without ';'")
			}
			if !seenRUA {
				return fail("missing rua")
			}
			return r, nil
		}
		s = t
		if s[0] != ';' {
			return fail("expected ';'")
		}
		s = trimWSP(s[1:])
		if s == "" {
			// [field-delim] at the end.
			if !seenRUA {
				return fail("missing rua")
			}
			return r, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return fail("field without '='")
		}
		key := s[:eq]
		s = s[eq+1:]
		if key == "rua" {
			uris, rest, reason := parseRUA(r.RUA, s)
			if reason != "" {
				return fail(reason)
			}
			r.RUA = uris
			seenRUA = true
			s = rest
			continue
		}
		if !isExtName(key) {
			return fail("invalid extension name")
		}
		end := 0
		for end < len(s) && isExtValueByte(s[end]) {
			end++
		}
		if end == 0 {
			return fail("empty extension value")
		}
		r.Extensions = append(r.Extensions, Extension{Key: key, Value: s[:end]})
		s = s[end:]
	}
}

// parseRUA parses tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) at the start of
// s, appends the URIs to uris and returns them with the rest of s.
func parseRUA(uris []string, s string) ([]string, string, string) {
	for {
		end := 0
		for end < len(s) && !isURIEnd(s[end]) {
			end++
		}
		u := s[:end]
		if u == "" {
			return nil, "", "empty rua URI"
		}
		if why := checkURI(u); why != "" {
			return nil, "", why
		}
		uris = append(uris, u)
		s = s[end:]
		t := trimWSP(s)
		if t == "" || t[0] != ',' {
			return uris, s, ""
		}
		s = trimWSP(t[1:])
	}
}

func isURIEnd(c byte) bool {
	return c == ' ' || c == '\t' || c == ',' || c == ';' || c == '!'
}

// checkURI checks s against the RFC 3986 URI production: a scheme, then
// only unreserved, reserved or percent-encoded characters, then lets
// net/url check the structure (brackets, ports, percent-encoding).
func checkURI(s string) string {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || !isAlpha(s[0]) {
		return "rua URI without scheme"
	}
	for i := 1; i < colon; i++ {
		c := s[i]
		if !isAlnum(c) && c != '+' && c != '-' && c != '.' {
			return "rua URI with invalid scheme"
		}
	}
	for i := colon + 1; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c), strings.IndexByte("-._~:/?#[]@$&'()*+=", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "rua URI with invalid percent-encoding"
			}
			i += 2
		default:
			return "rua URI with invalid character"
		}
	}
	if strings.Count(s, "#") > 1 {
		return "rua URI with invalid character"
	}
	// What follows the scheme, up to the query or fragment, is an opaque
	// part when it does not start with "/" (mailto:...): url.Parse then
	// only splits the string, and cannot fail on what passed the checks
	// above (no control characters, valid percent-encoding). Only a
	// hierarchical URI (https://host/...) has structure left to check.
	rest, _, _ := strings.Cut(s[colon+1:], "#")
	rest, _, _ = strings.Cut(rest, "?")
	if !strings.HasPrefix(rest, "/") {
		return ""
	}
	if _, err := url.Parse(s); err != nil {
		return "invalid rua URI"
	}
	return ""
}

// isCandidate reports whether a TXT record is a TLS-RPT record for the
// RFC 8460 3 discard rule ("records that do not begin with v=TLSRPTv1;
// MUST be discarded"). The version token must be followed by the ABNF's
// field delimiter (*WSP ";"), WSP or the end, so "v=TLSRPTv10;" is
// discarded while "v=TLSRPTv1 ;" (which the ABNF admits) is kept and then
// parsed; a kept record that fails to parse means no reporting, never a
// fallback to another record. This is the rule package mtasts applies to
// its records.
func isCandidate(txt string) bool {
	const version = "v=TLSRPTv1"
	if !strings.HasPrefix(txt, version) {
		return false
	}
	rest := txt[len(version):]
	return rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t'
}

// SelectRecord applies the RFC 8460 3 rule to a TXT RRset at
// _smtp._tls.<domain>, each record's strings already joined with nothing
// between them: records that are not TLS-RPT records are discarded, and
// exactly one must remain and parse. Errors are *Error with KindNoRecord,
// KindMultipleRecords or KindRecordSyntax; each means the domain gets no
// reports.
func SelectRecord(txts []string) (*Record, error) {
	var found string
	n := 0
	for _, t := range txts {
		if isCandidate(t) {
			found = t
			n++
		}
	}
	switch {
	case n == 0:
		return nil, &Error{Kind: KindNoRecord}
	case n > 1:
		return nil, &Error{Kind: KindMultipleRecords, Reason: "RFC 8460 3 requires exactly one"}
	}
	return ParseRecord(found)
}

func trimWSP(s string) string {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return s[i:]
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isExtName: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
func isExtName(s string) bool {
	if len(s) < 1 || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isExtValueByte: %x21-3A / %x3C / %x3E-7E (no ";", no "=", no WSP).
func isExtValueByte(c byte) bool {
	return c >= 0x21 && c <= 0x3a || c == 0x3c || c >= 0x3e && c <= 0x7e
}
