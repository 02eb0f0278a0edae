package smtptlstest

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Fault is a set of misbehaviours of the World's DNS front, set per name
// and type with World.SetFault or per zone with Zone.SetFault. Faults
// combine with |; setting 0 clears.
//
// Server faults act on a question whose name (and type, unless the fault
// was set for type 0) matches, or whose answer comes from a faulted zone.
// Signature faults act on the RRsets the front signs: those owned by a
// faulted name (and type), the denial records answering a faulted
// question, and with a zone fault every RRset the zone signs. They matter
// only in signed zones, and only through a secure chain to the root do
// they make the validating front (CD=0) answer SERVFAIL; with CD=1 and
// DO=1 the tampered data is returned as is, for a validator to reject.
type Fault uint32

const (
	// FaultServFail makes the front answer SERVFAIL, as a resolver does
	// when it cannot reach the zone's servers. It also applies when the
	// faulted name or zone is reached through a CNAME.
	FaultServFail Fault = 1 << iota
	// FaultTimeout makes the front send no answer at all (UDP and TCP).
	FaultTimeout
	// FaultTruncate makes UDP answers carry TC=1 and no records, so the
	// client must retry over TCP, where answers are complete.
	FaultTruncate
	// FaultWrongID makes the front send, over UDP, first a reply with
	// another message ID, then a reply with the right ID for another
	// question, and only then the right reply. A client that accepts the
	// first datagram it gets is fooled (RFC 5452 section 4.3).
	FaultWrongID
	// FaultExpiredSigs signs with RRSIGs that expired a day ago.
	FaultExpiredSigs
	// FaultFutureSigs signs with RRSIGs whose inception is a day ahead.
	FaultFutureSigs
	// FaultBadSignature serves RRSIGs whose signature does not verify
	// (the signature bytes are altered after signing).
	FaultBadSignature
	// FaultStripRRSIGs serves the RRsets without their RRSIGs.
	FaultStripRRSIGs
	// FaultWrongDS alters the digest of the DS records the parent
	// publishes for the faulted zone (set it on the child zone, or on the
	// child's apex name with type DS or 0). The parent signs the altered
	// DS: the DS RRset itself is secure, the child is bogus.
	FaultWrongDS
	// FaultPartialChain makes the front return only the first CNAME of a
	// chain instead of chasing it, as some forwarders do.
	FaultPartialChain
	// FaultDelay delays the answer by the fault delay (SetFaultDelay; one
	// second by default), on top of the World's delay (SetDelay).
	FaultDelay
)

// Signature faults and server faults, for the front's bookkeeping.
const (
	sigFaults    = FaultExpiredSigs | FaultFutureSigs | FaultBadSignature | FaultStripRRSIGs
	serverFaults = FaultServFail | FaultTimeout | FaultTruncate | FaultWrongID | FaultPartialChain | FaultDelay
)

var faultNames = []struct {
	f    Fault
	name string
}{
	{FaultServFail, "servfail"},
	{FaultTimeout, "timeout"},
	{FaultTruncate, "truncate"},
	{FaultWrongID, "wrong-id"},
	{FaultExpiredSigs, "expired-sigs"},
	{FaultFutureSigs, "future-sigs"},
	{FaultBadSignature, "bad-signature"},
	{FaultStripRRSIGs, "strip-rrsigs"},
	{FaultWrongDS, "wrong-ds"},
	{FaultPartialChain, "partial-chain"},
	{FaultDelay, "delay"},
}

// String returns the faults' names joined by "|", or "none".
func (f Fault) String() string {
	if f == 0 {
		return "none"
	}
	var parts []string
	for _, n := range faultNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		parts = append(parts, "unknown")
	}
	return strings.Join(parts, "|")
}

type faultKey struct {
	name  string
	qtype uint16
}

// SetFault sets the faults of the question (name, qtype); qtype 0 means
// every type at name. f = 0 clears them. name is absolute (any case, with
// or without the trailing dot, U-labels accepted); it panics on an invalid
// name. See Fault for what each fault does.
func (w *World) SetFault(name string, qtype uint16, f Fault) {
	k := faultKey{mustFQDN(name), qtype}
	w.mu.Lock()
	defer w.mu.Unlock()
	if f == 0 {
		delete(w.faults, k)
		return
	}
	w.faults[k] = f
}

// ClearFaults clears every fault of every name and zone. Delays set with
// SetDelay and SetFaultDelay stay.
func (w *World) ClearFaults() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.faults)
	for _, z := range w.zones {
		z.fault = 0
	}
}

// SetDelay delays every answer of the DNS front by d (a simulated round
// trip time). Zero, the default, answers at once.
func (w *World) SetDelay(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.delay = d
}

// SetFaultDelay sets the extra delay of answers with FaultDelay. Zero
// restores the default of one second.
func (w *World) SetFaultDelay(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.faultDelay = d
}

// nameFaults returns the faults set for (name, qtype) and (name, 0).
// Callers hold w.mu.
func (w *World) nameFaults(name string, qtype uint16) Fault {
	f := w.faults[faultKey{name, 0}]
	if qtype != 0 {
		f |= w.faults[faultKey{name, qtype}]
	}
	return f
}

// rrsetFaults returns the signature faults (and FaultWrongDS for a DS
// RRset) that apply to one RRset of zone z. Callers hold w.mu.
func (w *World) rrsetFaults(z *Zone, p *part) Fault {
	f := (z.fault | w.nameFaults(p.owner, p.rrtype)) & sigFaults
	if p.wildcard != "" {
		f |= w.nameFaults(p.wildcard, p.rrtype) & sigFaults
	}
	if p.proofFor != "" {
		f |= w.nameFaults(p.proofFor, p.proofType) & sigFaults
	}
	if p.rrtype == dns.TypeDS {
		f |= w.nameFaults(p.owner, dns.TypeDS) & FaultWrongDS
		if c := w.zones[p.owner]; c != nil {
			f |= c.fault & FaultWrongDS
		}
	}
	return f
}
