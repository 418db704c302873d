package policy_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet is an observer that drops every event.
var quiet = middleware.ObserverFunc(func(_ context.Context, _ middleware.Event) {})

// mustStack returns the set's stack called name, or fails the test.
func mustStack(t *testing.T, set *policy.Set, name string) middleware.Stack {
	t.Helper()
	s, err := set.Stack(name)
	if err != nil {
		t.Fatalf("Stack(%q): %v", name, err)
	}
	return s
}

// configErrors returns every *middleware.ConfigError in err's tree.
func configErrors(err error) []*middleware.ConfigError {
	var out []*middleware.ConfigError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ce, ok := err.(*middleware.ConfigError); ok {
			out = append(out, ce)
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// hasPath reports whether err holds a *middleware.ConfigError for path.
func hasPath(err error, path string) bool {
	for _, ce := range configErrors(err) {
		if ce.Path == path {
			return true
		}
	}
	return false
}

// paths returns the Paths of every *middleware.ConfigError in err.
func paths(err error) []string {
	var out []string
	for _, ce := range configErrors(err) {
		out = append(out, ce.Path)
	}
	return out
}
