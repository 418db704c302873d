// Package policy reads resilience policies from files: named stacks of
// layers (fallback, circuit breaker, retry, timeout, and the others of
// package middleware) written in YAML or JSON, validated and bounded, and
// turned into [middleware.Stack] values.
//
//	set, err := policy.Load("policies.yaml")
//	s, err := policy.StackFor[[]float32](set, "embedding_api")
//	ep, err := s.Apply(embed)
//
// A [Reloader] keeps endpoints on the file's current policies: with [Watch],
// a changed file swaps in for the calls that start after it, and a circuit
// breaker whose thresholds changed keeps its state.
package policy
