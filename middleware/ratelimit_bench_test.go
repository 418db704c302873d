package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

var rateLimitBenchSink any

// BenchmarkRateLimit measures a RateLimit layer around endpoint.Nop: a call
// that finds a token (a rate so high it always does), in each mode, and a
// call rejected at once (a limiter whose burst is spent and whose next token
// is a thousand seconds away). Rejections go to an observer that drops them,
// so the benchmark measures the layer, not a logger.
func BenchmarkRateLimit(b *testing.B) {
	tests := []struct {
		name    string
		cfg     middleware.RateLimitConfig
		wantErr bool
	}{
		{name: "allow", cfg: middleware.RateLimitConfig{Rate: 1e12, Burst: 1}},
		{name: "allow_wait", cfg: middleware.RateLimitConfig{Rate: 1e12, Burst: 1, Wait: true}},
		{name: "reject", cfg: middleware.RateLimitConfig{Rate: 0.001, Burst: 1}, wantErr: true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tt.cfg.Observer = rateLimitQuiet
			ep := middleware.RateLimit(tt.cfg)(endpoint.Nop)
			ctx := context.Background()
			if tt.wantErr {
				_, _ = ep(ctx, nil) // spend the burst
			}
			if _, err := ep(ctx, nil); (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, middleware.ErrRateLimited)) {
				b.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := ep(ctx, nil)
				if (err != nil) != tt.wantErr {
					b.Fatalf("err = %v, want error %v", err, tt.wantErr)
				}
				rateLimitBenchSink = resp
			}
		})
	}
	b.Run("allow_parallel", func(b *testing.B) {
		ep := middleware.RateLimit(middleware.RateLimitConfig{Rate: 1e12, Burst: 1 << 20})(endpoint.Nop)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := ep(ctx, nil); err != nil {
					b.Errorf("err = %v", err)
					return
				}
			}
		})
	})
}
