package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// BenchmarkBaselineBreakerChain1Nop is the yardstick of the breaker's
// targets: a go-kit Chain of one no-op middleware around endpoint.Nop.
func BenchmarkBaselineBreakerChain1Nop(b *testing.B) {
	benchRun(b, endpointtest.Baseline(), false)
}

func BenchmarkCircuitBreaker(b *testing.B) {
	errDown := errors.New("down")
	failing := func(context.Context, any) (any, error) { return nil, errDown }
	for _, parallel := range []bool{false, true} {
		suffix := ""
		if parallel {
			suffix = "_parallel"
		}
		b.Run("baseline_chain1nop"+suffix, func(b *testing.B) {
			benchRun(b, endpointtest.Baseline(), parallel)
		})
		b.Run("success"+suffix, func(b *testing.B) {
			reg := registry.New(registry.Config{})
			e := middleware.CircuitBreaker("bench", middleware.BreakerConfig{Registry: reg})(endpoint.Nop)
			benchRun(b, e, parallel)
		})
		b.Run("open_rejection"+suffix, func(b *testing.B) {
			reg := registry.New(registry.Config{})
			e := middleware.CircuitBreaker("bench", middleware.BreakerConfig{Registry: reg, Observer: middleware.ObserverFunc(func(context.Context, middleware.Event) {})})(failing)
			br, _ := reg.Get("bench")
			br.Trip()
			defer br.Reset() // stop the reset timer
			benchRun(b, e, parallel)
		})
		b.Run("failure_ratio_success"+suffix, func(b *testing.B) {
			reg := registry.New(registry.Config{})
			e := middleware.CircuitBreaker("bench", middleware.BreakerConfig{Registry: reg, FailureRatio: 0.5})(endpoint.Nop)
			benchRun(b, e, parallel)
		})
	}
}

func benchRun(b *testing.B, e endpoint.Endpoint, parallel bool) {
	ctx := context.Background()
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = e(ctx, nil)
			}
		})
		return
	}
	for b.Loop() {
		_, _ = e(ctx, nil)
	}
}
