package middleware_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// Regression:
// a WindowBuckets past registry.MaxWindowBuckets is reported by
// BreakerConfig.Validate as a problem of Window ("window: must be at least
// window_buckets nanoseconds"), not of WindowBuckets. Run with

func TestBreakerConfigHugeWindowBucketsNamesField(t *testing.T) {
	tests := []struct {
		name    string
		buckets int
	}{
		{name: "max int", buckets: math.MaxInt},
		{name: "one past the cap", buckets: registry.MaxWindowBuckets + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := middleware.BreakerConfig{Name: "x", FailureRatio: 0.5, Window: time.Hour, WindowBuckets: tt.buckets}
			err := cfg.Validate()
			if !namesField(err, "BreakerConfig.WindowBuckets") {
				t.Errorf("Validate() = %v, want ErrInvalidConfig naming BreakerConfig.WindowBuckets", err)
			}
			if namesField(err, "BreakerConfig.Window") {
				t.Errorf("Validate() = %v, names BreakerConfig.Window, which is valid", err)
			}
		})
	}
}

// Regression: the toolkit's own rejections
// reaching a CircuitBreaker from a layer inside it (a Bulkhead or RateLimit
// composed inside the breaker by hand, or the abandon-mode Timeout's
// the abandon cap's rejection in the guide's order) count as breaker failures and open
// the breaker, although Bulkhead's and RateLimit's docs say "a circuit breaker
// does not count them as failures". Found by TestSoak: with MaxAbandoned 40,
// the abandon cap's rejection opened the breaker 56 times in 1M calls.
func TestCircuitBreakerIgnoresInnerRejections(t *testing.T) {
	tests := []struct {
		name  string
		inner endpoint.Middleware
		fill  func(endpoint.Endpoint) (release func())
	}{
		{
			name:  "rate limit inside",
			inner: middleware.RateLimit(middleware.RateLimitConfig{Rate: 1e-9, Burst: 1, Observer: quiet}),
			fill: func(ep endpoint.Endpoint) func() {
				_, _ = ep(context.Background(), nil) // takes the only token
				return func() {}
			},
		},
		{
			name:  "bulkhead inside",
			inner: middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, Observer: quiet}),
			fill: func(ep endpoint.Endpoint) func() {
				hold := make(chan struct{})
				done := make(chan struct{})
				go func() { defer close(done); _, _ = ep(context.Background(), hold) }()
				for blocked.Load() == 0 {
					runtime.Gosched()
				}
				return func() { close(hold); <-done; blocked.Store(0) }
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := registry.New(registry.Config{})
			ep := endpoint.Chain(
				middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: reg, FailureThreshold: 3, Observer: quiet}),
				tt.inner,
			)(func(_ context.Context, req any) (any, error) {
				if hold, ok := req.(chan struct{}); ok {
					blocked.Add(1)
					<-hold
				}
				return "ok", nil
			})
			release := tt.fill(ep)
			defer release()
			for i := range 5 {
				_, err := ep(context.Background(), nil)
				if errors.Is(err, middleware.ErrCircuitOpen) {
					t.Fatalf("call %d: breaker opened on the inner layer's rejections", i+1)
				}
				if !errors.Is(err, middleware.ErrRateLimited) && !errors.Is(err, middleware.ErrBulkheadFull) {
					t.Fatalf("call %d: err = %v, want the inner layer's rejection", i+1, err)
				}
			}
			b, _ := reg.Get("svc")
			if s := b.Snapshot(); s.State != registry.StateClosed || s.ConsecutiveFailures != 0 {
				t.Errorf("breaker %v with %d consecutive failures, want closed with 0", s.State, s.ConsecutiveFailures)
			}
		})
	}
}

var blocked atomic.Int64
