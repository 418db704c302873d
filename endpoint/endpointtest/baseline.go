package endpointtest

import (
	"context"

	kitendpoint "github.com/go-kit/kit/endpoint"

	"github.com/resiliencekit/resilience/endpoint"
)

// Baseline returns the yardstick of a middleware benchmark: go-kit's
// [kitendpoint.Chain] of one middleware that only calls next, around
// [endpoint.Nop]. Benchmark a layer around endpoint.Nop next to a benchmark
// of Baseline; the difference is what the layer costs beyond the cheapest
// go-kit middleware there is.
//
// The no-op layer is a real call (not a middleware returning next itself,
// which would leave zero layers), and Baseline is never inlined: built where
// the benchmark loop calls it, the compiler sees through Chain and inlines
// the layer into the loop, leaving a bare call to Nop. Build the endpoint
// once, before the loop, as a service builds its chain away from where it
// is called:
//
//	func BenchmarkBaseline(b *testing.B) {
//		ep := endpointtest.Baseline()
//		ctx := context.Background()
//		b.ReportAllocs()
//		for b.Loop() {
//			_, _ = ep(ctx, nil)
//		}
//	}
//
// The endpoint it returns allocates nothing and is safe for concurrent use.
//
//go:noinline
func Baseline() endpoint.Endpoint {
	nop := func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) { return next(ctx, req) }
	}
	return kitendpoint.Chain(nop)(endpoint.Nop)
}
