package mtasts

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smtptls/smtptls/internal/dnsname"
	"github.com/smtptls/smtptls/internal/quote"
	"github.com/smtptls/smtptls/tlsrpt"
)

// Mode is a policy's mode (RFC 8461 5), with the RFC's string values.
type Mode string

const (
	// Enforce: senders must not deliver to an MX that fails the MX
	// pattern, STARTTLS or certificate checks.
	Enforce Mode = "enforce"
	// Testing: senders deliver anyway and report failures (TLS-RPT).
	Testing Mode = "testing"
	// None: as if the domain had no policy; publishers use it to
	// withdraw a policy before its max_age ends (RFC 8461 8.3).
	None Mode = "none"
)

const (
	// MaxPolicySize is the largest policy body accepted (RFC 8461 3.3
	// suggests 64 KiB). A larger body is an error, never truncated.
	MaxPolicySize = 64 << 10
	// MaxMaxAge is the largest max_age a policy may carry (RFC 8461 3.2:
	// 31557600 seconds, about one year).
	MaxMaxAge = 31557600 * time.Second
)

// Policy is a parsed MTA-STS policy (RFC 8461 3.2).
type Policy struct {
	// Mode is Enforce, Testing or None.
	Mode Mode
	// MaxAge is how long the policy may be cached, 0 to MaxMaxAge.
	MaxAge time.Duration
	// MX holds the mx patterns in policy order, lowercase, each a host
	// name or "*." and a name. It may be empty only in mode None.
	MX []string
	// Extensions holds the fields with keys this package does not know,
	// first occurrence of each key, in policy order.
	Extensions []Extension
	// Lines holds the policy body's lines as received, without line
	// terminators: the policy-string of a TLS-RPT report (RFC 8460 4.4).
	Lines []string

	// pats holds MX as ParsePolicy compiled it, for Match. An entry
	// serves only while MX still holds the string it was made from, so
	// that a caller who edits MX is never matched against stale
	// patterns.
	pats []mxPattern
}

// mxPattern is one mx pattern in the form Match compares with: canonical
// (Pattern profile) and split into wildcard flag and name.
type mxPattern struct {
	src  string // the MX entry it was made from
	name string // the canonical name; for "*.suffix", suffix
	wild bool   // "*." pattern: matches one label left of name
	ok   bool   // valid in the Pattern profile; an invalid one never matches
}

// compilePattern returns pat in the form Match compares with.
func compilePattern(pat string) mxPattern {
	c := mxPattern{src: pat}
	// Parsed policies hold canonical patterns, which Normalize returns
	// without allocating; this also serves policies built by hand.
	n, err := dnsname.Pattern.Normalize(pat)
	if err != nil {
		return c
	}
	c.ok = true
	c.name, c.wild = strings.CutPrefix(n, "*.")
	return c
}

// ParsePolicy parses a policy body strictly by RFC 8461 3.2 with its
// errata, with two tolerances that never change what the policy matches
// (Lint reports both): blank lines after the last field, and one trailing
// dot on an mx pattern (removed). Otherwise: lines end in LF or CRLF (the last may lack one), whitespace may
// follow the ":" and the value, keys are case-sensitive, unknown keys are
// ignored (but must be syntactically valid extensions), a repeated key
// other than mx keeps its first value, max_age is 1 to 10 digits and at
// most 31557600, mx values are A-labels ("[*.]Domain" per RFC 5321), and
// mx is required unless the mode is none. Errors are *Error with
// KindPolicySyntax (or KindBodyTooLarge above MaxPolicySize) and
// Result tlsrpt.STSPolicyInvalid.
func ParsePolicy(body []byte) (*Policy, error) {
	if len(body) > MaxPolicySize {
		return nil, &Error{Kind: KindBodyTooLarge, Result: tlsrpt.STSPolicyInvalid,
			Reason: strconv.Itoa(len(body)) + " bytes, limit " + strconv.Itoa(MaxPolicySize)}
	}
	fail := func(line int, reason string) (*Policy, error) {
		return nil, &Error{Kind: KindPolicySyntax, Result: tlsrpt.STSPolicyInvalid, Line: line, Reason: reason}
	}
	if len(body) == 0 {
		return fail(0, "empty policy")
	}
	p := &Policy{}
	var haveVersion, haveMaxAge bool
	seen := make(map[string]bool, 8)
	rest := string(body)
	for n := 1; rest != ""; n++ {
		var line string
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
			line = strings.TrimSuffix(line, "\r")
		} else {
			line, rest = rest, ""
		}
		p.Lines = append(p.Lines, line)

		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			if trimWSP(line) == "" && isBlankTail(rest) {
				// Blank lines after the last field are outside the
				// ABNF (one optional sts-policy-term ends the record)
				// but carry nothing: rejecting them would turn an
				// enforce policy into no policy, failing open.
				// Snawoot's postfix-mta-sts-resolver skips blank lines
				// too. Lint reports them; a blank line between fields
				// stays an error, as in mox and postfix-tlspol.
				continue
			}
			if line == "" {
				return fail(n, "empty line")
			}
			return fail(n, "line without ':'")
		}
		key := line[:colon]
		// sts-policy-field-delim = ":" *WSP, then the value, then *WSP.
		value := strings.TrimRight(trimWSP(line[colon+1:]), " \t")
		if value == "" {
			return fail(n, "empty value for "+quote.String(key))
		}
		known := key == "version" || key == "mode" || key == "max_age" || key == "mx"
		if !known && !isExtName(key) {
			return fail(n, "invalid key "+quote.String(key))
		}
		if key == "mx" {
			pat, ok := parseMXPattern(value)
			if !ok {
				return fail(n, "invalid mx pattern "+quote.String(value))
			}
			p.MX = append(p.MX, pat)
			continue
		}
		if seen[key] || !known {
			// A repeated key keeps its first value (erratum); the
			// repetition, like an unknown key, must still be a
			// syntactically valid field.
			if !isPolicyExtValue(value) {
				return fail(n, "invalid value for "+quote.String(key))
			}
			if !seen[key] {
				p.Extensions = append(p.Extensions, Extension{Key: key, Value: value})
			}
			seen[key] = true
			continue
		}
		seen[key] = true
		switch key {
		case "version":
			if value != "STSv1" {
				return fail(n, "version must be STSv1")
			}
			haveVersion = true
		case "mode":
			switch Mode(value) {
			case Enforce, Testing, None:
				p.Mode = Mode(value)
			default:
				return fail(n, "mode must be enforce, testing or none")
			}
		case "max_age":
			secs, ok := parseMaxAge(value)
			if !ok {
				return fail(n, "max_age must be 1 to 10 digits, at most 31557600")
			}
			p.MaxAge = time.Duration(secs) * time.Second
			haveMaxAge = true
		}
	}
	switch {
	case !haveVersion:
		return fail(0, "missing version")
	case p.Mode == "":
		return fail(0, "missing mode")
	case !haveMaxAge:
		return fail(0, "missing max_age")
	case p.Mode != None && len(p.MX) == 0:
		return fail(0, "mode "+string(p.Mode)+" requires mx")
	}
	if len(p.MX) > 0 {
		p.pats = make([]mxPattern, len(p.MX))
		for i, pat := range p.MX {
			p.pats[i] = compilePattern(pat)
		}
	}
	return p, nil
}

// parseMaxAge: 1*10DIGIT, at most 31557600. Ten digits fit an int64, so
// the bound check cannot overflow.
func parseMaxAge(s string) (int64, bool) {
	if len(s) < 1 || len(s) > 10 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if v > int64(MaxMaxAge/time.Second) {
		return 0, false
	}
	return v, true
}

// parseMXPattern checks sts-policy-mx-value = ["*."] Domain (RFC 5321
// Domain: dot-separated labels of letters, digits and inner hyphens;
// A-labels only, RFC 8461 3.2) and lowercases it.
//
// One trailing dot ("mail.example.", the absolute form of the same name)
// is outside the RFC 5321 Domain syntax but names exactly the host the
// dotless pattern names, so it is removed rather than rejecting the whole
// policy, which would turn enforce into no policy (failing open). The
// pattern then matches exactly what the dotless one does; Lint reports
// it (WarnMXTrailingDot). Anything else around the dot ("a..", ".", "*.")
// is still an error.
func parseMXPattern(s string) (string, bool) {
	s = strings.TrimSuffix(s, ".")
	name := strings.TrimPrefix(s, "*.")
	if name == "" {
		return "", false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || !isAlnum(label[0]) || !isAlnum(label[len(label)-1]) {
			return "", false
		}
		for i := 1; i < len(label)-1; i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

// isBlankTail reports whether the rest of a policy body holds only blank
// lines (WSP, CR and LF).
func isBlankTail(rest string) bool {
	return strings.Trim(rest, " \t\r\n") == ""
}

// isPolicyExtValue checks sts-policy-ext-value =
// sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar], where
// sts-policy-vchar = %x21-7E / UTF8-2 / UTF8-3 / UTF8-4. The caller has
// already trimmed the surrounding WSP.
func isPolicyExtValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == ' ' && i > 0 && i < len(s)-1 || c >= 0x21 && c <= 0x7e {
				i++
				continue
			}
			return false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		i += size
	}
	return true
}

// String returns the policy in the RFC 8461 3.2 syntax with LF line
// endings: version, mode, max_age, the mx lines, then the extensions.
func (p *Policy) String() string {
	var b strings.Builder
	b.WriteString("version: STSv1\nmode: ")
	b.WriteString(string(p.Mode))
	b.WriteString("\nmax_age: ")
	b.WriteString(strconv.FormatInt(int64(p.MaxAge/time.Second), 10))
	b.WriteByte('\n')
	for _, mx := range p.MX {
		b.WriteString("mx: ")
		b.WriteString(mx)
		b.WriteByte('\n')
	}
	for _, e := range p.Extensions {
		b.WriteString(e.Key)
		b.WriteString(": ")
		b.WriteString(e.Value)
		b.WriteByte('\n')
	}
	return b.String()
}

// Match reports whether host (an MX host name) matches one of the
// policy's mx patterns (RFC 8461 4.1). A pattern "*.suffix" covers exactly
// one left-most label: "*.example.com" matches "mail.example.com", not
// "example.com" and not "a.b.example.com". Names compare in canonical form:
// any case, a trailing dot and U-labels are accepted (U-labels become
// A-labels with IDNA2008 lookup). Host names and patterns follow the mail
// profile of internal/dnsname: '_' is allowed, and an IP address, an
// address literal or a name with an all-numeric top-level label never
// matches, even a pattern spelled like it. Match looks only at the patterns: the caller
// decides what the mode means.
//
// Match canonicalises host on every call; a caller that matches one host
// against several policies, or keeps its MX hosts parsed, uses
// ParseHostName once and MatchHost.
func (p *Policy) Match(host string) bool {
	h, err := ParseHostName(host)
	if err != nil {
		return false
	}
	return p.MatchHost(h)
}

// HostName is an MX host name in canonical form (lowercase A-labels
// without the trailing dot, mail profile of internal/dnsname), parsed
// once by ParseHostName for Policy.MatchHost. The zero value is no name
// and matches no pattern.
type HostName struct {
	name string
	dot  int // index of the first '.', -1 without one
}

// ParseHostName parses host as Match does: any case, a trailing dot and
// U-labels are accepted and canonicalised. An IP address, an address
// literal, a name with an all-numeric top-level label or anything that
// is not a host name is an *Error of KindInvalidDomain. A name already
// in canonical form (such as smtptls.Host.Name) is parsed without
// allocating.
func ParseHostName(host string) (HostName, error) {
	h, err := dnsname.Mail.Normalize(host)
	if err != nil {
		return HostName{}, &Error{Kind: KindInvalidDomain, Reason: "not a host name", Err: err}
	}
	return HostName{name: h, dot: strings.IndexByte(h, '.')}, nil
}

// String returns the name in canonical form, "" for the zero value.
func (h HostName) String() string { return h.name }

// MatchHost is Match for a host name parsed by ParseHostName: the same
// rules (RFC 8461 4.1), without canonicalising the name again. It does
// not allocate.
func (p *Policy) MatchHost(h HostName) bool {
	if h.name == "" {
		return false
	}
	for i, src := range p.MX {
		var pat mxPattern
		if i < len(p.pats) && p.pats[i].src == src {
			pat = p.pats[i]
		} else {
			pat = compilePattern(src)
		}
		switch {
		case !pat.ok:
		case pat.wild:
			// "*.suffix" is one whole label, then suffix.
			if h.dot > 0 && h.name[h.dot+1:] == pat.name {
				return true
			}
		case h.name == pat.name:
			return true
		}
	}
	return false
}
