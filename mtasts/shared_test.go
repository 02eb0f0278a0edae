package mtasts_test

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
)

// Two MTAs share one Cache (a fleet store). When one MTA's decoded copy
// has expired and the TXT lookup fails, it must look in the shared Cache,
// where the other MTA stored a refreshed policy, before concluding that no
// policy applies (RFC 8461 5: a cached policy applies when the record
// cannot be had).
func TestLookupSharedCacheRefreshedByAnotherMTA(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setID("s", "1")
	e.w.SetPolicy("s.example", smtptlstest.Policy{Body: policy(mtasts.Enforce, time.Hour, "mx.s.example")})
	shared := mtasts.NewMemoryCache(100)
	a, b := e.client(shared), e.client(shared)

	want(t, lookup(t, b, "s.example"), mtasts.SourceFetch, mtasts.Enforce, "1")
	// B's copy expires; meanwhile A fetches the new policy (id 2).
	e.clk.Advance(2 * time.Hour)
	e.setID("s", "2")
	want(t, lookup(t, a, "s.example"), mtasts.SourceFetch, mtasts.Enforce, "2")
	// Now the TXT lookup fails for B.
	e.w.SetFault("_mta-sts.s.example", dns.TypeTXT, smtptlstest.FaultServFail)
	res := lookup(t, b, "s.example")
	want(t, res, mtasts.SourceCache, mtasts.Enforce, "2")
	if res.RecordStatus != mtasts.RecordLookupFailed {
		t.Errorf("record status %v", res.RecordStatus)
	}
}
