package postfixlab

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Settings are main.cf parameters, by name. Configure writes them sorted
// by name; Postfix does not care about the order.
type Settings map[string]string

// fixedSettings are the names only the lab sets: its directories, who
// owns them, and where Postfix logs. A test that sets one is refused.
var fixedSettings = []string{
	"queue_directory", "data_directory", "mail_owner", "setgid_group",
	"maillog_file", "maillog_file_prefixes",
}

// defaultSettings are what both kinds of lab want unless a test says
// otherwise: no local delivery, no aliases, no relay host, IPv4 only
// (the namespaces have only 127.0.0.0/8), no delay warnings.
var defaultSettings = Settings{
	"compatibility_level": "3.6",
	"mydestination":       "",
	"relayhost":           "",
	"inet_protocols":      "ipv4",
	"alias_maps":          "",
	"alias_database":      "",
	"delay_warning_time":  "0",
}

// baseServices are the master.cf lines of Postfix's internal services
// that every lab runs, with chroot "n" everywhere: smtp(8) must read a
// resolv.conf bind-mounted inside the namespace and reach sockets in the
// lab's directory, and nothing in a lab is set up for a chroot.
var baseServices = []string{
	"pickup    unix  n       -       n       60      1       pickup",
	"cleanup   unix  n       -       n       -       0       cleanup",
	"qmgr      unix  n       -       n       300     1       qmgr",
	"tlsmgr    unix  -       -       n       1000?   1       tlsmgr",
	"rewrite   unix  -       -       n       -       -       trivial-rewrite",
	"bounce    unix  -       -       n       -       0       bounce",
	"defer     unix  -       -       n       -       0       bounce",
	"trace     unix  -       -       n       -       0       bounce",
	"verify    unix  -       -       n       -       1       verify",
	"flush     unix  n       -       n       1000?   0       flush",
	"proxymap  unix  -       -       n       -       -       proxymap",
	"smtp      unix  -       -       n       -       -       smtp",
	"relay     unix  -       -       n       -       -       smtp",
	"showq     unix  n       -       n       -       -       showq",
	"error     unix  -       -       n       -       -       error",
	"retry     unix  -       -       n       -       -       error",
	"discard   unix  -       -       n       -       -       discard",
	"anvil     unix  -       -       n       -       1       anvil",
	"scache    unix  -       -       n       -       1       scache",
	"postlog   unix-dgram n  -       n       -       1       postlogd",
}

// mainCF renders main.cf: the defaults, the test's settings over them,
// and the fixed settings, which the test may not set. A name must be a
// Postfix parameter name and a value one line, so that no setting can
// smuggle in another.
func mainCF(fixed, s Settings) (string, error) {
	all := maps.Clone(defaultSettings)
	for name, v := range s {
		if slices.Contains(fixedSettings, name) {
			return "", fmt.Errorf("postfixlab: %s is the lab's own setting", name)
		}
		if !validName(name) {
			return "", fmt.Errorf("postfixlab: %q is not a main.cf parameter name", name)
		}
		if strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("postfixlab: the value of %s is more than one line", name)
		}
		all[name] = v
	}
	maps.Copy(all, fixed)
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(all)) {
		fmt.Fprintf(&b, "%s = %s\n", name, all[name])
	}
	return b.String(), nil
}

// masterCF renders master.cf: the test's services, then baseServices.
// Each service is one non-blank line that starts a new entry (a line
// starting with white space would continue the one before).
func masterCF(services []string) (string, error) {
	var b strings.Builder
	for _, s := range services {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, "\r\n") || s[0] == ' ' || s[0] == '\t' {
			return "", fmt.Errorf("postfixlab: %q is not one master.cf entry", s)
		}
		b.WriteString(s + "\n")
	}
	for _, s := range baseServices {
		b.WriteString(s + "\n")
	}
	return b.String(), nil
}

func validName(name string) bool {
	if name == "" || len(name) > 100 {
		return false
	}
	for _, c := range name {
		// Letters of either case (smtp_tls_CAfile), digits, '_'.
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
