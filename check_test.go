package smtptls_test

import (
	"context"
	"errors"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls"
	"github.com/smtptls/smtptls/resolver"
	"github.com/smtptls/smtptls/smtptlstest"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	ctx := context.Background()

	ok := &smtptls.Evaluator{Resolver: w.Resolver(), DisableSTS: true}
	if err := ok.Check(ctx); err != nil {
		t.Errorf("validating loopback resolver: %v", err)
	}

	// A loopback server is trusted by default; a stub told about a remote
	// one is not, and Check must say so without sending anything.
	remote := &smtptls.Evaluator{Resolver: &resolver.Cache{Resolver: &resolver.Stub{Servers: []string{"192.0.2.53:53"}}}, DisableSTS: true}
	if err := remote.Check(ctx); !errors.Is(err, smtptls.ErrDANEUnavailable) {
		t.Errorf("remote stub: %v, want ErrDANEUnavailable", err)
	}

	// An upstream that fails the root DNSKEY lookup.
	w.SetFault(".", dns.TypeDNSKEY, smtptlstest.FaultServFail)
	if err := ok.Check(ctx); !errors.Is(err, smtptls.ErrDANEUnavailable) {
		t.Errorf("failing upstream: %v, want ErrDANEUnavailable", err)
	}
	w.ClearFaults()

	// Stripped signatures: a validating upstream cannot validate the root.
	w.SetFault(".", dns.TypeDNSKEY, smtptlstest.FaultStripRRSIGs)
	if err := (&smtptls.Evaluator{Resolver: w.Resolver(), DisableSTS: true}).Check(ctx); !errors.Is(err, smtptls.ErrDANEUnavailable) {
		t.Errorf("non-validating upstream: %v, want ErrDANEUnavailable", err)
	}

	if err := (&smtptls.Evaluator{Resolver: remote.Resolver, DisableDANE: true}).Check(ctx); err != nil {
		t.Errorf("DANE disabled: %v", err)
	}
}
