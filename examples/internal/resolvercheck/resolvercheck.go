// Package resolvercheck words what the resolver's start-up probe found, for the
// commands that run it first (examples/check, examples/survey).
package resolvercheck

import (
	"strings"

	"github.com/smtptls/smtptls/resolver"
)

// Finding is what the start-up probe found, in the resolver's own
// words when it tested its upstreams (every *resolver.CheckError in err),
// else err's message.
func Finding(err error) string {
	var found []string
	var walk func(error)
	walk = func(e error) {
		var ce *resolver.CheckError
		switch u := e.(type) {
		case *resolver.CheckError:
			ce = u
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
		if ce != nil {
			found = append(found, ce.Error())
		}
	}
	walk(err)
	if len(found) == 0 {
		return err.Error()
	}
	return strings.Join(found, "; ")
}
