package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// TestHotPathsAllocateNothing is the allocation guard of issue 8, in one
// place: every layer's success path, the rejections an outage turns into the
// common case, and the guide's stack built both ways must allocate nothing,
// so that a later change cannot quietly add an allocation to a call every
// service makes millions of times. (Some layers' own test files hold a
// narrower check of their own; this one is the list to extend when a layer
// is added.)
func TestHotPathsAllocateNothing(t *testing.T) {
	errDown := errors.New("down")
	failing := func(context.Context, any) (any, error) { return nil, errDown }
	// failTwice fails the first two attempts of each call of three.
	failTwice := func(_ context.Context, req any) (any, error) {
		n := req.(*int)
		if *n++; *n%3 != 0 {
			return nil, errDown
		}
		return struct{}{}, nil
	}
	guide := func(reg *registry.Registry) middleware.Stack {
		return middleware.Stack{
			Fallback:       middleware.FallbackConfig{Value: []float32{}},
			CircuitBreaker: middleware.BreakerConfig{Name: "embedding_api", Registry: reg, FailureThreshold: 5, ResetTimeout: 2 * time.Minute},
			Retry:          middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second, RetryOn: []error{errDown}},
			Observer:       quiet,
		}
	}
	build := func(t *testing.T, s middleware.Stack, next endpoint.Endpoint) endpoint.Endpoint {
		t.Helper()
		e, err := s.Apply(next)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		return e
	}
	trip := func(t *testing.T, reg *registry.Registry, name string) {
		t.Helper()
		b, ok := reg.Get(name)
		if !ok {
			t.Fatalf("no breaker %q", name)
		}
		b.Trip()
		t.Cleanup(b.Reset) // stops the reset timer
	}

	tests := []struct {
		name    string
		build   func(t *testing.T) endpoint.Endpoint
		wantErr error // nil: the call must succeed
	}{
		{name: "Retry, first try", build: func(*testing.T) endpoint.Endpoint {
			return middleware.Retry(middleware.RetryConfig{Observer: quiet})(endpoint.Nop)
		}},
		{name: "Retry, two failures then success, no delay", build: func(*testing.T) endpoint.Endpoint {
			return middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Observer: quiet})(failTwice)
		}},
		{name: "FallbackValue, success", build: func(*testing.T) endpoint.Endpoint {
			return middleware.FallbackWith(middleware.FallbackConfig{Value: []string{}, Observer: quiet})(endpoint.Nop)
		}},
		{name: "FallbackValue, served", build: func(*testing.T) endpoint.Endpoint {
			return middleware.FallbackWith(middleware.FallbackConfig{Value: []string{}, Observer: quiet})(failing)
		}},
		{name: "Fallback, success", build: func(*testing.T) endpoint.Endpoint {
			return middleware.FallbackWith(middleware.FallbackConfig{Endpoint: endpoint.Nop, Observer: quiet})(endpoint.Nop)
		}},
		{name: "CircuitBreaker, closed", build: func(*testing.T) endpoint.Endpoint {
			return middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: registry.New(registry.Config{}), Observer: quiet})(endpoint.Nop)
		}},
		{name: "CircuitBreaker, open rejection", wantErr: middleware.ErrCircuitOpen, build: func(t *testing.T) endpoint.Endpoint {
			reg := registry.New(registry.Config{})
			e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: reg, Observer: quiet})(endpoint.Nop)
			trip(t, reg, "svc")
			return e
		}},
		{name: "RateLimit, allowed", build: func(*testing.T) endpoint.Endpoint {
			return middleware.RateLimit(middleware.RateLimitConfig{Rate: 1e12, Burst: 1 << 20, Observer: quiet})(endpoint.Nop)
		}},
		{name: "Bulkhead, admitted", build: func(*testing.T) endpoint.Endpoint {
			return middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, Observer: quiet})(endpoint.Nop)
		}},
		{name: "AdaptiveLimit, admitted", build: func(*testing.T) endpoint.Endpoint {
			return middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{Observer: quiet})(endpoint.Nop)
		}},
		{name: "Retry with a RetryBudget, success", build: func(*testing.T) endpoint.Endpoint {
			return middleware.Retry(middleware.RetryConfig{Budget: middleware.NewRetryBudget(middleware.RetryBudgetConfig{}), Observer: quiet})(endpoint.Nop)
		}},
		{name: "Recover, no panic", build: func(*testing.T) endpoint.Endpoint {
			return recoverWith("", quiet)(endpoint.Nop)
		}},
		{name: "guide's stack by hand, success", build: func(*testing.T) endpoint.Endpoint {
			reg := registry.New(registry.Config{})
			return endpoint.Chain(
				middleware.FallbackWith(middleware.FallbackConfig{Value: []float32{}, Observer: quiet}),
				middleware.CircuitBreaker("embedding_api", middleware.BreakerConfig{Registry: reg, Observer: quiet}),
				middleware.Retry(middleware.RetryConfig{Observer: quiet}),
			)(endpoint.Nop)
		}},
		{name: "guide's stack by Stack, success", build: func(t *testing.T) endpoint.Endpoint {
			return build(t, guide(registry.New(registry.Config{})), endpoint.Nop)
		}},
		{name: "guide's stack by Stack, breaker open, fallback served", build: func(t *testing.T) endpoint.Endpoint {
			reg := registry.New(registry.Config{})
			e := build(t, guide(reg), failing)
			trip(t, reg, "embedding_api")
			return e
		}},
		{name: "Stack of every layer but Timeout, success", build: func(t *testing.T) endpoint.Endpoint {
			s := guide(registry.New(registry.Config{}))
			s.Bulkhead = middleware.BulkheadConfig{MaxConcurrent: 8}
			s.RateLimit = middleware.RateLimitConfig{Rate: 1e12, Burst: 1 << 20}
			return build(t, s, endpoint.Nop)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.build(t)
			ctx := context.Background()
			req := new(int)
			var err error
			got := testing.AllocsPerRun(200, func() { _, err = e(ctx, req) })
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != 0 {
				t.Errorf("allocs per call = %v, want 0", got)
			}
		})
	}
}

// TestTimeoutAllocatesOnlyItsContext guards the cooperative Timeout: its
// success path allocates what context.WithTimeoutCause allocates, and not one
// allocation more, alone and inside the guide's stack.
func TestTimeoutAllocatesOnlyItsContext(t *testing.T) {
	ctx := context.Background()
	bare := testing.AllocsPerRun(200, func() {
		ctx2, cancel := context.WithTimeoutCause(ctx, time.Second, middleware.ErrTimeout)
		_, _ = endpoint.Nop(ctx2, nil)
		cancel()
	})
	stack, err := middleware.Stack{
		Fallback:       middleware.FallbackConfig{Value: []float32{}},
		CircuitBreaker: middleware.BreakerConfig{Name: "embedding_api", Registry: registry.New(registry.Config{})},
		Retry:          middleware.RetryConfig{},
		Timeout:        middleware.TimeoutConfig{Timeout: 10 * time.Second},
		Observer:       quiet,
	}.Apply(endpoint.Nop)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	tests := []struct {
		name string
		e    endpoint.Endpoint
	}{
		{"Timeout", middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: time.Second, Observer: quiet})(endpoint.Nop)},
		{"guide's stack with Timeout", stack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(200, func() { _, _ = tt.e(ctx, nil) }); got != bare {
				t.Errorf("allocs per call = %v, want %v (a bare WithTimeoutCause)", got, bare)
			}
		})
	}
}
