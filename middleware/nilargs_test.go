package middleware_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/chaos"
	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// middlewareConstructors lists every exported function and method of the
// package that returns an endpoint.Middleware, one way of calling each
// (several for those with modes). TestEveryConstructorIsListed keeps the
// list complete.
var middlewareConstructors = []struct {
	name string // the function, as TestEveryConstructorIsListed names it
	mode string
	mw   func(t *testing.T) endpoint.Middleware
}{
	{name: "CircuitBreaker", mw: func(*testing.T) endpoint.Middleware {
		return middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: registry.New(registry.Config{}), Observer: quiet})
	}},
	{name: "CircuitBreaker", mode: "business errors", mw: func(*testing.T) endpoint.Middleware {
		return middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: registry.New(registry.Config{}), Observer: quiet, CountBusinessErrors: true})
	}},
	{name: "Bulkhead", mw: func(*testing.T) endpoint.Middleware {
		return middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, Observer: quiet})
	}},
	{name: "Bulkhead", mode: "waiting", mw: func(*testing.T) endpoint.Middleware {
		return middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: time.Second, Observer: quiet})
	}},
	{name: "AdaptiveLimit", mw: func(*testing.T) endpoint.Middleware {
		return middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{Observer: quiet})
	}},
	{name: "AdaptiveLimit", mode: "queued", mw: func(*testing.T) endpoint.Middleware {
		return middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{MaxQueue: 2, MaxWait: time.Second, Observer: quiet})
	}},
	{name: "KeyedCircuitBreaker", mw: func(*testing.T) endpoint.Middleware {
		return middleware.KeyedCircuitBreaker(middleware.KeyedBreakerConfig{Key: func(context.Context, any) string { return "k" }, Breaker: middleware.BreakerConfig{Observer: quiet}})
	}},
	{name: "LeasedRateLimit", mw: func(*testing.T) endpoint.Middleware {
		return middleware.LeasedRateLimit(middleware.LeasedRateLimitConfig{Pool: middleware.NewMemoryLeasePool(1, 1), Observer: quiet})
	}},
	{name: "KeyedRateLimit", mw: func(*testing.T) endpoint.Middleware {
		return middleware.KeyedRateLimit(middleware.KeyedRateLimitConfig{Key: func(context.Context, any) string { return "k" }, Rate: 1, Burst: 1, Observer: quiet})
	}},
	{name: "Hedge", mw: func(*testing.T) endpoint.Middleware {
		return middleware.Hedge(middleware.HedgeConfig{Delay: time.Second, Idempotent: func(context.Context, any) bool { return true }, Observer: quiet})
	}},
	{name: "Chaos.Middleware", mw: func(*testing.T) endpoint.Middleware {
		return chaos.New(chaos.Config{Observer: quiet}).Middleware()
	}},
	{name: "Fallback", mw: func(*testing.T) endpoint.Middleware { return middleware.Fallback(endpoint.Nop) }},
	{name: "FallbackFunc", mw: func(*testing.T) endpoint.Middleware {
		return middleware.FallbackFunc(func(context.Context, any, error) (any, error) { return nil, nil })
	}},
	{name: "FallbackValue", mw: func(*testing.T) endpoint.Middleware { return middleware.FallbackValue(nil) }},
	{name: "FallbackWith", mw: func(*testing.T) endpoint.Middleware {
		return middleware.FallbackWith(middleware.FallbackConfig{Observer: quiet})
	}},
	{name: "Measure", mw: func(*testing.T) endpoint.Middleware {
		return middleware.Measure(middleware.MeasureConfig{Observer: quiet})
	}},
	{name: "Throttle", mw: func(*testing.T) endpoint.Middleware {
		return middleware.Throttle(middleware.ThrottleConfig{Observer: quiet})
	}},
	{name: "RateLimit", mw: func(*testing.T) endpoint.Middleware {
		return middleware.RateLimit(middleware.RateLimitConfig{Rate: 1, Burst: 1, Observer: quiet})
	}},
	{name: "Recover", mw: func(*testing.T) endpoint.Middleware { return middleware.Recover() }},
	{name: "Stack.Recover", mw: func(*testing.T) endpoint.Middleware {
		return recoverWith("", quiet)
	}},
	{name: "Retry", mw: func(*testing.T) endpoint.Middleware { return middleware.Retry(middleware.RetryConfig{Observer: quiet}) }},
	{name: "Timeout", mw: func(*testing.T) endpoint.Middleware { return middleware.Timeout(time.Second) }},
	{name: "TimeoutWith", mode: "abandon", mw: func(*testing.T) endpoint.Middleware {
		return middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: time.Second, Abandon: true, Observer: quiet})
	}},
	{name: "Stack.Build", mode: "guide's stack", mw: func(t *testing.T) endpoint.Middleware {
		mw, err := middleware.Stack{
			Fallback:       middleware.FallbackConfig{Value: []float32{}},
			CircuitBreaker: middleware.BreakerConfig{Name: "svc", Registry: registry.New(registry.Config{})},
			Retry:          middleware.RetryConfig{MaxAttempts: 3},
			Observer:       quiet,
		}.Build()
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		return mw
	}},
	{name: "Stack.Build", mode: "every layer", mw: func(t *testing.T) endpoint.Middleware {
		mw, err := middleware.Stack{
			Fallback:       middleware.FallbackConfig{Value: []float32{}},
			Measure:        true,
			Budget:         time.Minute,
			Bulkhead:       middleware.BulkheadConfig{MaxConcurrent: 1},
			RateLimit:      middleware.RateLimitConfig{Rate: 1, Burst: 1},
			CircuitBreaker: middleware.BreakerConfig{Name: "svc", Registry: registry.New(registry.Config{})},
			Retry:          middleware.RetryConfig{MaxAttempts: 3},
			Timeout:        middleware.TimeoutConfig{Timeout: time.Second},
			Observer:       quiet,
		}.Build()
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		return mw
	}},
	{name: "Stack.Build", mode: "Measure alone", mw: func(t *testing.T) endpoint.Middleware {
		mw, err := middleware.Stack{Measure: true, Observer: quiet}.Build()
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		return mw
	}},
	{name: "Stack.Build", mode: "no layers", mw: func(t *testing.T) endpoint.Middleware {
		mw, err := middleware.Stack{}.Build()
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		return mw
	}},
}

// TestNilEndpointRefusedAtWrapTime: every middleware of the package panics
// when it is applied to a nil endpoint, at wrap time, with an error matching
// ErrInvalidConfig; never at request time.
func TestNilEndpointRefusedAtWrapTime(t *testing.T) {
	for _, tt := range middlewareConstructors {
		mode := tt.mode
		if mode == "" {
			mode = "default"
		}
		t.Run(tt.name+"/"+mode, func(t *testing.T) {
			mw := tt.mw(t)
			var e endpoint.Endpoint
			err := panicOf(func() { e = mw(nil) })
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Errorf("wrapping nil: panic %v, want an error matching ErrInvalidConfig", err)
			}
			if e != nil {
				t.Errorf("wrapping nil returned an endpoint, want a panic")
			}
		})
	}
}

// panicOf returns the error f panicked with; nil when f returned, and a
// non-error panic value as an error that matches nothing.
func panicOf(f func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if e, ok := v.(error); ok {
				err = e
				return
			}
			err = errors.New("non-error panic")
		}
	}()
	f()
	return nil
}

// TestEveryConstructorIsListed keeps middlewareConstructors complete: every
// exported function or method of the package whose results include an
// endpoint.Middleware is in it.
func TestEveryConstructorIsListed(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, de := range entries {
		n := de.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	listed := map[string]bool{}
	for _, c := range middlewareConstructors {
		listed[c.name] = true
	}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() || fd.Type.Results == nil {
				continue
			}
			returnsMW := false
			for _, r := range fd.Type.Results.List {
				if sel, ok := r.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Middleware" {
					returnsMW = true
				}
			}
			if !returnsMW {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil {
				typ := fd.Recv.List[0].Type
				if st, ok := typ.(*ast.StarExpr); ok {
					typ = st.X
				}
				if id, ok := typ.(*ast.Ident); ok && id.IsExported() {
					name = id.Name + "." + name
				} else {
					continue
				}
			}
			if !listed[name] {
				t.Errorf("%s returns an endpoint.Middleware but is not in middlewareConstructors", name)
			}
		}
	}
}

// TestNilObserverFuncRefused: a nil ObserverFunc in a config's Observer
// field, or given to Observers, is refused at construction with an error
// matching ErrInvalidConfig that names the field, instead of panicking at
// the first event.
func TestNilObserverFuncRefused(t *testing.T) {
	var nilObs middleware.ObserverFunc
	tests := []struct {
		name      string
		construct func()
		field     string
	}{
		{name: "BreakerConfig", field: "BreakerConfig.Observer", construct: func() {
			middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: registry.New(registry.Config{}), Observer: nilObs})
		}},
		{name: "BulkheadConfig", field: "BulkheadConfig.Observer", construct: func() {
			middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, Observer: nilObs})
		}},
		{name: "FallbackConfig", field: "FallbackConfig.Observer", construct: func() {
			middleware.FallbackWith(middleware.FallbackConfig{Observer: nilObs})
		}},
		{name: "MeasureConfig", field: "MeasureConfig.Observer", construct: func() {
			middleware.Measure(middleware.MeasureConfig{Observer: nilObs})
		}},
		{name: "Stack.Recover", field: "Stack.Observer", construct: func() {
			recoverWith("", nilObs) // panics with Build's error
		}},
		{name: "RetryConfig", field: "RetryConfig.Observer", construct: func() {
			middleware.Retry(middleware.RetryConfig{Observer: nilObs})
		}},
		{name: "TimeoutConfig", field: "TimeoutConfig.Observer", construct: func() {
			middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: time.Second, Observer: nilObs})
		}},
		{name: "Observers", field: "Observers[1]", construct: func() { middleware.Observers(quiet, nilObs) }},
		{name: "RateLimitConfig", field: "RateLimitConfig.Observer", construct: func() {
			middleware.RateLimit(middleware.RateLimitConfig{Rate: 1, Burst: 1, Observer: nilObs})
		}},
		{name: "ChaosConfig", field: "chaos.Config.Observer", construct: func() {
			chaos.New(chaos.Config{Observer: nilObs})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := panicOf(tt.construct)
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Fatalf("panic = %v, want an error matching ErrInvalidConfig", err)
			}
			var fields []string
			for _, p := range configErrors(err) {
				fields = append(fields, p.Field)
			}
			found := false
			for _, f := range fields {
				found = found || f == tt.field
			}
			if !found {
				t.Errorf("config error fields = %v, want %s among them", fields, tt.field)
			}
		})
	}
	t.Run("Stack.Observer", func(t *testing.T) {
		_, err := middleware.Stack{Retry: middleware.RetryConfig{MaxAttempts: 3}, Observer: nilObs}.Build()
		if !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Errorf("Build = %v, want an error matching ErrInvalidConfig", err)
		}
	})
}
