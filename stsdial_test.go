package smtptls_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// TestDefaultSTSClientUsesEvaluatorResolver: with only Resolver, Roots
// and DialContext set, the default MTA-STS client resolves the policy
// host with the Evaluator's resolver and dials addresses through
// DialContext, so enforce applies (issue 13 point 8). Before, it resolved
// and dialled mta-sts.<domain> with the system's resolver, which knows
// nothing of a private world: the enforce domain became opportunistic.
func TestDefaultSTSClientUsesEvaluatorResolver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := smtptlstest.New(t)
	w.AddDomain("enforce.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
	w.AddDomain("excluded.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true, Misconfig: smtptlstest.MisSTSMXMismatch})
	w.AddDomain("servfail.test", smtptlstest.Scenario{STS: smtptlstest.STSEnforce, Unsigned: true})
	// The Evaluator's resolver cannot resolve this policy host; the
	// World's own DialContext still could, from its zone data.
	w.SetFault("mta-sts.servfail.test.", dns.TypeA, smtptlstest.FaultServFail)
	w.SetFault("mta-sts.servfail.test.", dns.TypeAAAA, smtptlstest.FaultServFail)

	var mu sync.Mutex
	var dialled []string
	ev := &smtptls.Evaluator{
		Resolver: w.Resolver(),
		Roots:    w.CA().Pool(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialled = append(dialled, addr)
			mu.Unlock()
			return w.DialContext(ctx, network, addr)
		},
		Logger: discard,
	}

	d, err := ev.Evaluate(ctx, "enforce.test")
	if err != nil {
		t.Fatal(err)
	}
	if p := d.STSPolicy(); p == nil || p.Mode != "enforce" || d.STS.FetchError != nil {
		t.Fatalf("no enforce policy: %+v", d.STS)
	}
	if hs := d.Deliverable(); len(hs) != 1 || hs[0].Level != smtptls.STSEnforce {
		t.Errorf("hosts %+v, want one at STSEnforce", d.Hosts)
	}
	if w.QueryCountFor("mta-sts.enforce.test.", dns.TypeA) == 0 {
		t.Error("the policy host was not resolved through the Evaluator's resolver")
	}

	d, err = ev.Evaluate(ctx, "excluded.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Deliverable()) != 0 || !d.Hosts[0].Excluded {
		t.Errorf("enforce did not exclude the unlisted MX: %+v", d.Hosts[0])
	}

	d, err = ev.Evaluate(ctx, "servfail.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := fetchResult(d); got != tlsrpt.STSPolicyFetchError || w.PolicyFetches("servfail.test") != 0 {
		t.Errorf("policy host unresolvable by the Evaluator's resolver: fetch error %q, %d fetches", got, w.PolicyFetches("servfail.test"))
	}

	mu.Lock()
	defer mu.Unlock()
	if len(dialled) == 0 {
		t.Fatal("DialContext was never called")
	}
	for _, a := range dialled {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || ap.Port() != 443 {
			t.Errorf("DialContext got %q, want an address and port 443", a)
		}
	}
}

// fetchResult is the TLS-RPT result type of the decision's MTA-STS fetch
// failure, or "".
func fetchResult(d *smtptls.Decision) tlsrpt.ResultType {
	if d.STS == nil || d.STS.FetchError == nil {
		return ""
	}
	me, ok := errors.AsType[*mtasts.Error](d.STS.FetchError)
	if !ok {
		return "not an *mtasts.Error"
	}
	return me.Result
}
