package interop_test

import "testing"

// TestParseDelv reads delv's verdicts, including a signed negative answer
// it could not validate (seen with keys sharing a key tag), which counts
// as bogus, not as "no verdict".
func TestParseDelv(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"; fully validated\nmail.test. 300 IN MX 10 mx.mail.test.\n", "secure/DATA"},
		{";; resolution failed: ncache nxdomain\n; negative response, fully validated\n", "secure/NXDOMAIN"},
		{";;   validating tagclash.test/SOA: no valid signature found\n;; resolution failed: ncache nxdomain\n" +
			"; negative response, signed answer, pending validation\n; nosuch.tagclash.test.\t300\tIN\t\\-ANY\t;-$NXDOMAIN\n", "bogus/SERVFAIL"},
		{";; resolution failed: broken trust chain\n", "bogus/SERVFAIL"},
		{"", "?"},
	} {
		if got, _ := parseDelv(tc.out); got != tc.want {
			t.Errorf("parseDelv(%q) = %s, want %s", tc.out, got, tc.want)
		}
	}
}
