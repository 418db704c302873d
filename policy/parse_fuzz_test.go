package policy_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
	"github.com/resiliencekit/resilience/registry"
)

// FuzzParse: Parse never panics; it returns an error matching
// ErrInvalidConfig, or a Set whose every stack (as [policy.Set.Stack] and
// as StackFor[any]) builds, named as its Names say.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../testdata/policies.yaml"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"a:\n  retry: {max_attempts: 3, delay: 1.5s}\n",
		`{"a": {"timeout": {"timeout": "2s", "abandon": true}, "budget": "5s"}}`,
		"a:\n  fallback: {value: {status: unknown}}\n  bulkhead: {max_concurrent: 4, max_wait: 10ms}\n",
		"a:\n  rate_limit: {rate: 2.5, burst: 3, wait: true}\n",
		"a:\n  circuit_breaker: {name: x, failure_ratio: 0.5, min_requests: 10, window: 1m}\n",
		"a:\n  measure: {}\n  recover: true\n",
		"a: null\n", "", "[]", "a:\n  retry: {max_atempts: 3}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		if len(file) > 4096 {
			return // policy files are small; long inputs only slow the search
		}
		set, err := policy.Parse([]byte(file))
		if err != nil {
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Fatalf("error does not match ErrInvalidConfig: %v", err)
			}
			return
		}
		reg := registry.New(registry.Config{})
		for _, name := range set.Names() {
			s, err := set.Stack(name)
			if err != nil {
				t.Fatalf("%s: Stack: %v", name, err)
			}
			if _, err := policy.StackFor[any](set, name); err != nil {
				t.Fatalf("%s: StackFor[any]: %v", name, err)
			}
			s.Observer = quiet
			s.Registry = reg
			if s.CircuitBreaker.Name != "" {
				s.CircuitBreaker.Name = name + "/" + s.CircuitBreaker.Name // one breaker per stack
			}
			if _, err := s.Build(); err != nil && !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Fatalf("%s: Build: %v", name, err)
			} else if err != nil && !strings.Contains(err.Error(), "circuit_breaker.name") {
				t.Fatalf("%s: loaded but does not build: %v", name, err)
			}
		}
	})
}
