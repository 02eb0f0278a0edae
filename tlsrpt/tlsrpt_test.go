package tlsrpt

import "testing"

// The values are wire tokens of RFC 8460; a typo here would silently
// produce reports that receivers cannot parse.
func TestResultTypeStrings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got  ResultType
		want string
	}{
		{StartTLSNotSupported, "starttls-not-supported"},
		{CertificateHostMismatch, "certificate-host-mismatch"},
		{CertificateExpired, "certificate-expired"},
		{CertificateNotTrusted, "certificate-not-trusted"},
		{ValidationFailure, "validation-failure"},
		{TLSAInvalid, "tlsa-invalid"},
		{DNSSECInvalid, "dnssec-invalid"},
		{DANERequired, "dane-required"},
		{STSPolicyFetchError, "sts-policy-fetch-error"},
		{STSPolicyInvalid, "sts-policy-invalid"},
		{STSWebPKIInvalid, "sts-webpki-invalid"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			if string(tc.got) != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestPolicyTypeStrings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got  PolicyType
		want string
	}{
		{PolicyTLSA, "tlsa"},
		{PolicySTS, "sts"},
		{PolicyNoPolicyFound, "no-policy-found"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			if string(tc.got) != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}
