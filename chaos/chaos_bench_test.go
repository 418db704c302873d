package chaos_test

import (
	"context"
	"testing"

	"github.com/resiliencekit/resilience/chaos"
	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

// BenchmarkBaselineChaosChain1Nop is the baseline for a Chaos that injects
// nothing: [endpointtest.Baseline], go-kit's endpoint.Chain of one no-op
// middleware around endpoint.Nop.
func BenchmarkBaselineChaosChain1Nop(b *testing.B) {
	ep := endpointtest.Baseline()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ep(ctx, nil)
	}
}

func BenchmarkChaos(b *testing.B) {
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	tests := []struct {
		name     string
		cfg      chaos.Config
		disabled bool
	}{
		{name: "zero_rates", cfg: chaos.Config{}},
		{name: "disabled", cfg: chaos.Config{ErrorRate: 1}, disabled: true},
		{name: "draw_no_fault", cfg: chaos.Config{ErrorRate: 1e-9, LatencyRate: 1e-9, Observer: quiet}},
		{name: "draw_no_fault_seeded", cfg: chaos.Config{ErrorRate: 1e-9, LatencyRate: 1e-9, Seed: 1, Observer: quiet}},
		{name: "error_injected", cfg: chaos.Config{ErrorRate: 1, Observer: quiet}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			c := chaos.New(tt.cfg)
			if tt.disabled {
				c.Disable()
			}
			ep := c.Middleware()(endpoint.Nop)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ep(ctx, nil)
			}
		})
	}
}
