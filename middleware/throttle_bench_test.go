package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

var throttleBenchSink any

// BenchmarkThrottle measures a Throttle layer around endpoint.Nop on the
// success path (every call accepted, so the probability is 0 and there is
// no draw), and a call rejected locally (an endpoint that always fails,
// with a draw of 0).
func BenchmarkThrottle(b *testing.B) {
	b.Run("accept", func(b *testing.B) {
		ep := middleware.Throttle(middleware.ThrottleConfig{Observer: throttleQuiet})(endpoint.Nop)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := ep(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			throttleBenchSink = resp
		}
	})
	b.Run("reject", func(b *testing.B) {
		fail := func(context.Context, any) (any, error) { return nil, errOverloaded }
		ep := middleware.Throttle(middleware.ThrottleConfig{Observer: throttleQuiet, Rand: func() float64 { return 0 }})(fail)
		ctx := context.Background()
		_, _ = ep(ctx, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ep(ctx, nil); !errors.Is(err, middleware.ErrThrottled) {
				b.Fatal(err)
			}
		}
	})
	b.Run("accept_parallel", func(b *testing.B) {
		ep := middleware.Throttle(middleware.ThrottleConfig{Observer: throttleQuiet})(endpoint.Nop)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := ep(ctx, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
