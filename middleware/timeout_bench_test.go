package middleware_test

import (
	"context"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

// BenchmarkBaselineWithTimeoutCause is what a cooperative Timeout must cost
// no more than 1.2x of: a bare context.WithTimeoutCause and its cancel around
// endpoint.Nop.
func BenchmarkBaselineWithTimeoutCause(b *testing.B) {
	ctx := context.Background()
	var next endpoint.Endpoint = endpoint.Nop
	b.ReportAllocs()
	for b.Loop() {
		ctx2, cancel := context.WithTimeoutCause(ctx, time.Second, middleware.ErrTimeout)
		_, _ = next(ctx2, nil)
		cancel()
	}
}

func BenchmarkTimeout(b *testing.B) {
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	hang := func(ctx context.Context, _ any) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	tests := []struct {
		name string
		cfg  middleware.TimeoutConfig
		next endpoint.Endpoint
	}{
		{
			name: "cooperative_success",
			cfg:  middleware.TimeoutConfig{Timeout: time.Second},
			next: endpoint.Nop,
		},
		{
			// The deadline has passed as soon as it is set: the failure
			// path without the wait.
			name: "cooperative_timeout",
			cfg:  middleware.TimeoutConfig{Timeout: time.Nanosecond, Observer: quiet},
			next: hang,
		},
		{
			name: "abandon_success",
			cfg:  middleware.TimeoutConfig{Timeout: time.Second, Abandon: true, Observer: quiet},
			next: endpoint.Nop,
		},
		{
			name: "abandon_timeout",
			cfg:  middleware.TimeoutConfig{Timeout: time.Nanosecond, Abandon: true, MaxAbandoned: 1 << 30, Observer: quiet},
			next: hang,
		},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			ep := middleware.TimeoutWith(tt.cfg)(tt.next)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ep(ctx, nil)
			}
		})
	}

	b.Run("abandon_rejected", func(b *testing.B) {
		release := make(chan struct{})
		done := make(chan struct{})
		ep := middleware.TimeoutWith(middleware.TimeoutConfig{
			Timeout: time.Millisecond, Abandon: true, MaxAbandoned: 1, Observer: quiet,
		})(func(context.Context, any) (any, error) {
			defer close(done)
			<-release
			return nil, nil
		})
		ctx := context.Background()
		_, _ = ep(ctx, nil) // abandoned, and held until the end
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ep(ctx, nil)
		}
		close(release)
		<-done
	})
}
