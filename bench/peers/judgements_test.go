package peers

// A verdict explains one kind of disagreement: the RFC text that settles
// it, the side it favours, and what it means for an MTA operator.
type verdict struct {
	ref     string // short reference shown in the table, e.g. "R1"
	rfc     string // the RFC section (and rule) that settles it
	favours string // "smtptls", "mox" or "neither"
	why     string // one paragraph: what each side does, and the consequence
}

// A judgement attaches a verdict to disagreements, identified by area and
// exact input (so that the same input in several vector files shares one
// judgement). A disagreement without a judgement fails the test, and so
// does a judgement that no longer matches any disagreement: both mean the
// table is out of date.
type judgement struct {
	area    string
	inputs  []string
	verdict verdict
}

var judgements = []judgement{
	{
		area: areaPolicy,
		inputs: []string{
			"version: STSv1\nmode: enforce\nmx: 127.0.0.1\nmax_age: 86400\n",
			"version: STSv1\nmode: enforce\nmx: 1.2.3.4\nmax_age: 86400\n",
			"version: STSv1\nmode: enforce\nmx: *.1.2.3.4\nmax_age: 86400\n",
		},
		verdict: verdict{
			ref:     "R1",
			rfc:     "RFC 8461 3.2 (sts-policy-mx-value = [\"*.\"] Domain, and an RFC 5321 Domain admits all-digit labels; parsers MUST accept syntactically valid policies) and 4.1",
			favours: "smtptls",
			why: "mox rejects the whole policy because dns.ParseDomain refuses a name that parses as an IP address; smtptls accepts it " +
				"and its Match never matches an IP or an all-numeric TLD. For an operator this is a fail-open difference: for a domain " +
				"whose enforce policy carries such a line next to its real MX names, mox delivers as if the domain had no policy, " +
				"smtptls keeps enforcing it (and fails delivery to hosts that match nothing, as RFC 8461 4.1 and 5 require).",
		},
	},
	{
		area: areaPolicy,
		inputs: []string{
			"version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n-comment: ok\n",
			"version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n.comment: ok\n",
		},
		verdict: verdict{
			ref:     "R2",
			rfc:     "RFC 8461 3.2 (sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / \"_\" / \"-\" / \".\"))",
			favours: "smtptls",
			why: "An extension name must start with a letter or digit. mox's key scanner (mtasts/parse.go xkey) reads " +
				"`i > 0 && b == '_' || b == '-' || b == '.'`, so the i > 0 guard covers only \"_\" and a leading \"-\" or \".\" " +
				"passes (the same scanner reads TXT record keys). Low impact: mox applies a policy the RFC calls invalid, " +
				"so it protects more than required, never less.",
		},
	},
	{
		area: areaPolicy,
		inputs: []string{
			"version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\ncomment: ok\xffbad\n",
		},
		verdict: verdict{
			ref:     "R3",
			rfc:     "RFC 8461 3.2 (sts-policy-vchar = %x21-7E / UTF8-2 / UTF8-3 / UTF8-4, i.e. well-formed UTF-8 only)",
			favours: "smtptls",
			why: "The extension value holds a 0xFF byte, which is not UTF-8. mox ranges over the string as runes, sees U+FFFD " +
				"(>= 0x80) and accepts it; smtptls rejects the policy. Low impact: a malformed policy that mox still applies.",
		},
	},
	{
		area: areaPolicy,
		inputs: []string{
			"version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: 31557601",
		},
		verdict: verdict{
			ref:     "R4",
			rfc:     "RFC 8461 3.2 (max_age: \"maximum value of 31557600\")",
			favours: "smtptls",
			why: "mox checks only the 1*10DIGIT syntax (and int32 range) and caches the policy for max_age as given; smtptls " +
				"rejects a max_age above one year, as Snawoot's resolver does. A publisher with an over-long max_age gets no " +
				"MTA-STS protection from smtptls senders until the value is fixed; mox keeps such a policy longer than the RFC allows.",
		},
	},
	{
		area: areaTLSRPT,
		inputs: []string{
			"v=TLSRPTv1; rua=mailto:tlsrpt@mox.example , \t\t https://mox.example/tlsrpt  ",
		},
		verdict: verdict{
			ref:     "R5",
			rfc:     "RFC 8460 3 (tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]; field-delim = *WSP \";\" *WSP)",
			favours: "smtptls",
			why: "Trailing white space after the last URI without a closing \";\" is outside the ABNF; mox accepts it (its own " +
				"test asserts so), smtptls refuses the record. Reporting only, never delivery: a domain publishing such a record " +
				"gets TLS reports from mox senders and none from smtptls senders.",
		},
	},
	{
		area: areaDANE,
		inputs: []string{
			"danetest.in#49",
			"danetest.in#50",
		},
		verdict: verdict{
			ref: "R6",
			rfc: "RFC 7671 5.2.3 (a DANE-TA(2) SPKI(1) Full(0) key that signed the top certificate: clients are RECOMMENDED to accept); " +
				"RFC 7672 3.1.2 (the server MUST send the TA certificate)",
			favours: "smtptls",
			why: "The TLSA record is a bare trust-anchor public key that signed the chain's top certificate but is not in the chain. " +
				"smtptls verifies the signature with the key from DNS and accepts (as OpenSSL does, depth as OpenSSL reports); mox " +
				"only looks for the anchor among the certificates the server sent and finds no match. RFC 7671 recommends " +
				"the smtptls behaviour without requiring it, and RFC 7672 obliges the server to send the anchor anyway, so mox " +
				"is not non-conformant. It fails closed: such a server gets mail from smtptls senders, mox defers it.",
		},
	},
}
