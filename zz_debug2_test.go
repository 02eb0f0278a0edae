package smtptls_test

import (
	"fmt"
	"testing"
	"time"
	"runtime"

	"github.com/smtptls/smtptls/smtptlstest"
)

func TestZZAddDomainCost(t *testing.T) {
	w := smtptlstest.New(t)
	start := time.Now()
	for i := 0; i < 400; i++ {
		w.AddDomain(fmt.Sprintf("d%d.test", i), smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, STS: smtptlstest.STSEnforce, MX: 2})
		if i == 99 || i == 199 || i == 399 { t.Logf("%d domains: %v goroutines %d", i+1, time.Since(start), runtime.NumGoroutine()) }
	}
}
