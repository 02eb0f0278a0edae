package resolver

import (
	"context"
	"errors"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/resolver/internal/wire"
)

// exchange sends m to server through the one DNS exchange of this module
// (resolver/internal/wire: reused sockets, random IDs, ID, question and
// opcode matching, size bounds, TC -> TCP) and returns the reply, or an
// *Error.
func exchange(ctx context.Context, pool *wire.Pool, server string, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	r, err := pool.Exchange(ctx, server, m, timeout)
	if err == nil {
		return r, nil
	}
	q := m.Question[0]
	var we *wire.Error
	if !errors.As(err, &we) {
		return nil, &Error{Name: q.Name, Type: q.Qtype, Kind: KindNetwork, Reason: "exchange with " + server, Err: err}
	}
	return nil, &Error{Name: q.Name, Type: q.Qtype, Kind: wireKind(we.Kind),
		Reason: we.Reason + " (" + we.Network + " " + we.Server + ")", Err: we.Err}
}

// wireKind maps the failure of an exchange to the Kind of a lookup.
func wireKind(k wire.Kind) Kind {
	switch k {
	case wire.KindTimeout:
		return KindTimeout
	case wire.KindMalformed:
		return KindMalformed
	}
	return KindNetwork
}
