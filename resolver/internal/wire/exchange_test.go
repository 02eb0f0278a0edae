package wire

import (
	"testing"

	"github.com/miekg/dns"
)

// TestMatches: RFC 5452 9.1, a reply must match the query's ID and
// question; QR must be set and the opcode the query's.
func TestMatches(t *testing.T) {
	t.Parallel()
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeA)
	for _, tc := range []struct {
		name string
		edit func(r *dns.Msg)
		want bool
	}{
		{"reply", func(*dns.Msg) {}, true},
		{"0x20 case", func(r *dns.Msg) { r.Question[0].Name = "A.TeSt." }, true},
		{"wrong id", func(r *dns.Msg) { r.Id++ }, false},
		{"not a response", func(r *dns.Msg) { r.Response = false }, false},
		{"other opcode", func(r *dns.Msg) { r.Opcode = dns.OpcodeUpdate }, false},
		{"other name", func(r *dns.Msg) { r.Question[0].Name = "b.test." }, false},
		{"other type", func(r *dns.Msg) { r.Question[0].Qtype = dns.TypeAAAA }, false},
		{"other class", func(r *dns.Msg) { r.Question[0].Qclass = dns.ClassCHAOS }, false},
		{"no question", func(r *dns.Msg) { r.Question = nil }, false},
		{"two questions", func(r *dns.Msg) { r.Question = append(r.Question, r.Question[0]) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := new(dns.Msg)
			r.SetReply(q)
			tc.edit(r)
			if got := Matches(r, q); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}
