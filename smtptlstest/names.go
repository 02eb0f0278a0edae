package smtptlstest

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/internal/dnsname"
)

// fqdn returns name as the DNS front speaks it: lowercase A-labels, fully
// qualified. It accepts what dnsname.Owner accepts (any case, with or
// without the trailing dot, U-labels, '_' labels); "" and "." are the root.
func fqdn(name string) (string, error) {
	if name == "" || name == "." {
		return ".", nil
	}
	n, err := dnsname.Owner.Normalize(name)
	if err != nil {
		return "", fmt.Errorf("smtptlstest: %w", err)
	}
	return n + ".", nil
}

// mustFQDN is fqdn for the World's configuration methods, whose callers are
// tests: a bad name is a bug in the test, reported by a panic.
func mustFQDN(name string) string {
	n, err := fqdn(name)
	if err != nil {
		panic(err)
	}
	return n
}

// hostName returns name as the rest of the project speaks it: lowercase
// A-labels without the trailing dot. It accepts what fqdn accepts, so
// that a test can build a World with names the library refuses.
func hostName(name string) (string, error) {
	n, err := fqdn(name)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(n, "."), nil
}

// parentName returns the name one label up, or "" for the root.
func parentName(name string) string {
	if name == "." {
		return ""
	}
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

// ancestorAt returns the ancestor of name (or name itself) that has n labels.
func ancestorAt(name string, n int) string {
	idx := dns.Split(name)
	if n <= 0 {
		return "."
	}
	if n >= len(idx) {
		return name
	}
	return name[idx[len(idx)-n]:]
}

// canonicalLabels returns the labels of name as raw bytes, lowercased,
// from the root down, so that names compare in the canonical order of
// RFC 4034 section 6.1.
func canonicalLabels(name string) [][]byte {
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		// Names reaching here were validated on entry; sort the odd one
		// by its text so that ordering stays total.
		return [][]byte{[]byte(name)}
	}
	buf = buf[:off]
	var labels [][]byte
	for i := 0; i < len(buf) && buf[i] != 0; {
		l := int(buf[i])
		labels = append(labels, bytes.ToLower(buf[i+1:i+1+l]))
		i += 1 + l
	}
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return labels
}

// canonicalCompare orders names as RFC 4034 section 6.1 does.
func canonicalCompare(a, b string) int {
	la, lb := canonicalLabels(a), canonicalLabels(b)
	for i := 0; i < len(la) && i < len(lb); i++ {
		if c := bytes.Compare(la[i], lb[i]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}
