package policy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// FuzzLoadStacks: LoadStacks never panics; it either returns an error
// matching ErrInvalidConfig or stacks that build and that round-trip through
// their JSON form to the same JSON.
func FuzzLoadStacks(f *testing.F) {
	if b, err := os.ReadFile("../testdata/policies.yaml"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"a:\n  retry: {max_attempts: 3, delay: 1.5s}\n",
		`{"a": {"timeout": {"timeout": "2s", "abandon": true}, "budget": "5s"}}`,
		"a:\n  fallback: {value: {status: unknown}}\n  bulkhead: {max_concurrent: 4, max_wait: 10ms}\n",
		"a:\n  rate_limit: {rate: 2.5, burst: 3, wait: true}\n",
		"a:\n  circuit_breaker: {name: x, failure_ratio: 0.5, min_requests: 10, window: 1m}\n",
		"a: null\n", "", "[]", "a:\n  retry: {max_atempts: 3}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		if len(file) > 4096 {
			return // policy files are small; long inputs only slow the search
		}
		stacks, err := middleware.LoadStacks(strings.NewReader(file))
		if err != nil {
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Fatalf("error does not match ErrInvalidConfig: %v", err)
			}
			return
		}
		reg := registry.New(registry.Config{})
		for name, s := range stacks {
			js, err := json.Marshal(s)
			if err != nil {
				t.Fatalf("%s: Marshal: %v", name, err)
			}
			again, err := middleware.LoadStacks(bytes.NewReader(append(append([]byte(`{"x":`), js...), '}')))
			if err != nil {
				t.Fatalf("%s: %s does not load back: %v", name, js, err)
			}
			js2, _ := json.Marshal(again["x"])
			if !bytes.Equal(js, js2) {
				t.Fatalf("%s: round trip changed\n%s\nto\n%s", name, js, js2)
			}
			// Build logs its warnings: keep them off the fuzz worker's
			// stderr, which the fuzzer reads only at the end.
			s.Logger = slog.New(slog.DiscardHandler)
			if s.CircuitBreaker != nil {
				s.CircuitBreaker.Registry = reg
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
