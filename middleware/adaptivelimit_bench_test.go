package middleware_test

import (
	"context"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

var limitBenchSink any

// BenchmarkAdaptiveLimit measures an AdaptiveLimit layer admitting a call
// that succeeds at once: a slot taken and given back with atomics, two clock
// reads for the latency sample, and a window closed every 100ms.
func BenchmarkAdaptiveLimit(b *testing.B) {
	ep := middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{Observer: middleware.Discard})(endpoint.Nop)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		limitBenchSink, _ = ep(ctx, nil)
	}
}
