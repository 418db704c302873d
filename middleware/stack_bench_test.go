package middleware_test

import (
	"context"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// BenchmarkStack compares the guide's stack (FallbackValue, CircuitBreaker,
// Retry) built by Stack with the same layers chained by hand: Stack adds
// nothing per call.
func BenchmarkStack(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, ep endpoint.Endpoint) {
		b.ReportAllocs()
		for b.Loop() {
			ep(ctx, nil)
		}
	}
	b.Run("hand_chained", func(b *testing.B) {
		ep := endpoint.Chain(
			middleware.FallbackValue([]float32{}),
			middleware.CircuitBreaker("bench_hand", middleware.BreakerConfig{Registry: registry.New(registry.Config{}), Observer: discard}),
			middleware.Retry(middleware.RetryConfig{Observer: discard}),
		)(endpoint.Nop)
		run(b, ep)
	})
	b.Run("stack", func(b *testing.B) {
		ep, err := middleware.Stack{
			Fallback:       middleware.FallbackConfig{Value: []float32{}},
			CircuitBreaker: middleware.BreakerConfig{Name: "bench_stack", Registry: registry.New(registry.Config{})},
			Retry:          middleware.RetryConfig{},
			Observer:       discard,
		}.Apply(endpoint.Nop)
		if err != nil {
			b.Fatal(err)
		}
		run(b, ep)
	})
}
