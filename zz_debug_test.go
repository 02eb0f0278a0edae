package smtptls_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"
	"sync"
	"fmt"
	"net"
	"net/http"

	"github.com/miekg/dns"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

type logRes struct{ r resolver.Resolver; start time.Time; mu sync.Mutex; log []string }

func (l *logRes) add(s string) { l.mu.Lock(); l.log = append(l.log, s); l.mu.Unlock() }

func (l *logRes) Lookup(ctx context.Context, name string, qt uint16) (*resolver.Answer, error) {
	t0 := time.Since(l.start)
	a, err := l.r.Lookup(ctx, name, qt)
	l.add(fmt.Sprintf("%6.0fms -> %6.0fms %s %s %v", float64(t0)/1e6, float64(time.Since(l.start))/1e6, name, dns.TypeToString[qt], err))
	return a, err
}

func TestZZDebug(t *testing.T) {
	pc := pathCases[2]
	rc := resolverCases[1]
	w := smtptlstest.New(t)
	d := "critical.test"
	w.AddDomain(d, pc.scen)
	ctx := context.Background()
	rtt := 50 * time.Millisecond
	for i := 0; i < 6; i++ {
		w.SetDelay(0); w.SetNetDelay(0)
		coldEvaluator(w, rc.new(w), w.HTTPClientWith(nil)).Evaluate(ctx, d)
		w.SetDelay(rtt)
		w.SetNetDelay(rtt)
		inner := &resolver.Validating{Servers: []string{w.DNSAddr()}, Anchors: w.Anchors()}
		l := &logRes{r: inner, start: time.Now()}
		dial := w.DialContextWith(nil)
		hc := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: w.CA().Pool()},
			DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
				t0 := time.Since(l.start)
				c, err := dial(ctx, n, a)
				l.add(fmt.Sprintf("%6.0fms -> %6.0fms dial %s", float64(t0)/1e6, float64(time.Since(l.start))/1e6, a))
				return c, err
			}}}
		ev := coldEvaluator(w, &resolver.Cache{Resolver: l}, hc)
		q0 := w.QueryCount()
		dec, err := ev.Evaluate(ctx, d)
		checkCold(t, pc, dec, err)
		t.Logf("%s/%s total %v queries %d", rc.name, pc.name, time.Since(l.start), w.QueryCount()-q0)
		for _, s := range l.log { t.Log(s) }
	}
}
