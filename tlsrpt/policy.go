package tlsrpt

import (
	"bytes"
	"encoding/json"
)

// Policy describes the policy a sending MTA applied to a domain: the
// "policy" object of a report (RFC 8460 4.4).
//
// The package renders MXHosts as a JSON array ("mx-host": ["a", "b"]).
// RFC 8460 4.4 describes mx-host as a pattern "provided as a string", but
// a policy has several MX patterns, erratum EID 6241 corrects the
// Appendix B example to an array, and that is what Google and most
// reporters send and what report processors expect. A received report may
// carry either form (Microsoft sends a string or omits the field); both
// parse.
type Policy struct {
	// Type is the kind of policy: PolicyTLSA, PolicySTS or
	// PolicyNoPolicyFound.
	Type PolicyType `json:"policy-type"`
	// Strings is the policy as applied: for "sts" the lines of the
	// MTA-STS policy file, for "tlsa" the TLSA records in presentation
	// format, one per string. Empty (and omitted) for "no-policy-found".
	Strings []string `json:"policy-string,omitempty"`
	// Domain is the policy domain, lowercase A-labels without the
	// trailing dot (RFC 8460 4.4 requires A-labels).
	Domain string `json:"policy-domain"`
	// MXHosts holds, for "sts", the mx patterns of the policy ("*." for
	// a wildcard); for "tlsa", the MX host whose TLSA records applied.
	// Omitted when empty.
	MXHosts []string `json:"mx-host,omitempty"`
}

// UnmarshalJSON decodes a policy object, accepting "policy-string" and
// "mx-host" either as an array of strings or as a single string.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var v struct {
		Type    PolicyType   `json:"policy-type"`
		Strings stringOrList `json:"policy-string"`
		Domain  string       `json:"policy-domain"`
		MXHosts stringOrList `json:"mx-host"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Policy{Type: v.Type, Strings: v.Strings, Domain: v.Domain, MXHosts: v.MXHosts}
	return nil
}

// stringOrList is a JSON value that is a string, an array of strings or
// null. A string decodes as a list of one (an empty string as none).
type stringOrList []string

func (l *stringOrList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*l = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*l = nil
		} else {
			*l = stringOrList{s}
		}
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*l = a
	return nil
}
