package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// TestStackOrder: the layers run in the guide's order, which a Stack's
// fields fix (there is no order to write them in).
func TestStackOrder(t *testing.T) {
	s := middleware.Stack{
		Timeout:        middleware.TimeoutConfig{Timeout: time.Second},
		Retry:          middleware.RetryConfig{MaxAttempts: 2},
		CircuitBreaker: middleware.BreakerConfig{Name: "order"},
		RateLimit:      middleware.RateLimitConfig{Rate: 100, Burst: 10},
		Bulkhead:       middleware.BulkheadConfig{MaxConcurrent: 2},
		Fallback:       middleware.FallbackConfig{Value: "x"},
	}
	want := "fallback(value \"x\") → bulkhead(max_concurrent 2) → rate_limit(100/s, burst 10) → circuit_breaker(order) → retry(2 attempts) → timeout(1s) → endpoint"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestStackRuns: the built stack behaves as the guide's combined stack: the
// retry runs inside the breaker and the fallback serves the value last.
func TestStackRuns(t *testing.T) {
	var events []string
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		events = append(events, e.Layer+":"+e.Kind.String())
	})
	s := middleware.Stack{
		Timeout:        middleware.TimeoutConfig{Timeout: 1e9},
		Retry:          middleware.RetryConfig{MaxAttempts: 2, NoDelay: true},
		CircuitBreaker: middleware.BreakerConfig{Name: "runs", Registry: registry.New(registry.Config{})},
		Fallback:       middleware.FallbackConfig{Value: "cached"},
		Observer:       obs,
	}
	ep := endpointtest.Script("err")
	call, err := s.Apply(ep.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := call(context.Background(), nil)
	if resp != "cached" || err != nil {
		t.Errorf("call = %v, %v, want cached, nil", resp, err)
	}
	if ep.Calls() != 2 {
		t.Errorf("calls = %d, want 2", ep.Calls())
	}
	want := []string{"retry:retry", "retry:retry", "fallback:fallback"} // the second: giving up
	if !slices.Equal(events, want) {
		t.Errorf("events = %v, want %v", events, want)
	}
}

// TestStackBuildErrors: Build returns every problem at once and never panics.
func TestStackBuildErrors(t *testing.T) {
	s := middleware.Stack{
		Retry:          middleware.RetryConfig{MaxAttempts: -1},
		Timeout:        middleware.TimeoutConfig{Timeout: -1}, // a zero config is no layer
		CircuitBreaker: middleware.BreakerConfig{FailureThreshold: -2},
		Bulkhead:       middleware.BulkheadConfig{MaxConcurrent: -1},
	}
	_, err := s.Build()
	if !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Fatalf("Build() = %v, want ErrInvalidConfig", err)
	}
	for _, w := range []string{"retry.max_attempts: -1", "timeout.timeout", "circuit_breaker.name", "circuit_breaker.failure_threshold", "bulkhead.max_concurrent"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Build() = %q, want it to name %s", err, w)
		}
	}
	mw, err := middleware.Stack{}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := mw(endpointtest.Script("ok:x").Endpoint())(context.Background(), nil); resp != "x" {
		t.Errorf("empty stack changed the response to %v", resp)
	}
}

// TestStackBreakerConflict: the same breaker name with other settings is a
// Build error, not a panic.
func TestStackBreakerConflict(t *testing.T) {
	reg := registry.New(registry.Config{})
	a := middleware.Stack{CircuitBreaker: middleware.BreakerConfig{Name: "svc", FailureThreshold: 3, Registry: reg}}
	b := middleware.Stack{CircuitBreaker: middleware.BreakerConfig{Name: "svc", FailureThreshold: 4, Registry: reg}}
	if _, err := a.Build(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Build(); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Build() = %v, want ErrInvalidConfig", err)
	}
}

func ExampleStack() {
	s := middleware.Stack{
		Retry:          middleware.RetryConfig{MaxAttempts: 3, NoDelay: true},
		Fallback:       middleware.FallbackConfig{Value: []float32{}},
		CircuitBreaker: middleware.BreakerConfig{Name: "embedding_api", FailureThreshold: 5, Registry: registry.New(registry.Config{})},
		Observer:       middleware.ObserverFunc(func(context.Context, middleware.Event) {}),
	}
	fmt.Println(s)
	getEmbeddings, err := s.Apply(endpointtest.Script("err").Endpoint())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(getEmbeddings(context.Background(), "text"))
	// Output:
	// fallback(value []) → circuit_breaker(embedding_api) → retry(3 attempts) → endpoint
	// [] <nil>
}

// TestStackErrorClasses: FailIf and FallbackIf with errclass predicates
// choose what trips the breaker and what falls back, as a policy file's
// fail_on and fallback_on do.
func TestStackErrorClasses(t *testing.T) {
	reg := registry.New(registry.Config{})
	s := middleware.Stack{
		Fallback:       middleware.FallbackConfig{Value: "cached", FallbackIf: errclass.Timeout},
		CircuitBreaker: middleware.BreakerConfig{Name: "classes", FailureThreshold: 1, FailIf: errclass.Connection, Registry: reg},
		Observer:       discard,
	}
	tests := []struct {
		name     string
		err      error
		wantResp any
		wantOpen bool
	}{
		{"not a connection error: no failure, no fallback", errOther, nil, false},
		{"timeout falls back, does not trip", context.DeadlineExceeded, "cached", false},
		{"connection error trips the breaker", io.ErrUnexpectedEOF, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := s.Apply(endpointtest.New(endpointtest.Err(tt.err)).Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := ep(context.Background(), nil)
			if resp != tt.wantResp {
				t.Errorf("resp = %v, want %v", resp, tt.wantResp)
			}
			b, _ := reg.Get("classes")
			if got := b.State() == registry.StateOpen; got != tt.wantOpen {
				t.Errorf("open = %t, want %t", got, tt.wantOpen)
			}
		})
	}
}

func ExampleStack_WithFallback() {
	stack := middleware.Stack{
		Name:     "embedding_api",
		Fallback: middleware.FallbackConfig{Value: []float32{}},
		Retry:    middleware.RetryConfig{MaxAttempts: 2, NoDelay: true},
	}
	cache := func(context.Context, any) (any, error) { return "from cache", nil }
	s := stack.WithFallback(cache)
	s.Observer = middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	getEmbedding, err := s.Apply(endpointtest.Script("err").Endpoint())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	fmt.Println(getEmbedding(context.Background(), "text"))
	// Output:
	// fallback(endpoint) → retry(2 attempts) → endpoint
	// from cache <nil>
}

// TestStackName: a stack's Name is the default name of its layers, its
// breaker's included.
func TestStackName(t *testing.T) {
	s := middleware.Stack{
		Name:           "search_api",
		CircuitBreaker: middleware.BreakerConfig{FailureThreshold: 3},
		Retry:          middleware.RetryConfig{MaxAttempts: 3, NoDelay: true},
	}
	if got, want := s.String(), "circuit_breaker(search_api) → retry(3 attempts) → endpoint"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	reg := registry.New(registry.Config{})
	s.CircuitBreaker.Registry = reg
	var names []string
	s.Observer = middleware.ObserverFunc(func(_ context.Context, e middleware.Event) { names = append(names, e.Layer+"="+e.Name) })
	ep, err := s.Apply(endpointtest.Script("err").Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	ep(context.Background(), nil)
	if _, ok := reg.Get("search_api"); !ok {
		t.Errorf("no breaker named search_api in %v", reg.Names())
	}
	if len(names) == 0 || names[0] != "retry=search_api" {
		t.Errorf("events = %v, want retry events named search_api", names)
	}
}

// TestStackIsAValue: a Stack and its layers' configs are values: changing a
// copy's layers never changes the original, nor what the original builds.
func TestStackIsAValue(t *testing.T) {
	reg := registry.New(registry.Config{})
	s := middleware.Stack{
		Name:           "value",
		Retry:          middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, RetryOn: []error{errOther}},
		Timeout:        middleware.TimeoutConfig{Timeout: time.Second},
		Fallback:       middleware.FallbackConfig{Value: "cached"},
		CircuitBreaker: middleware.BreakerConfig{Name: "original", FailureThreshold: 5, Registry: reg},
		Observer:       discard,
	}
	before := s.String()
	s2 := s
	s2.Retry.MaxAttempts = 9
	s2.Timeout.Timeout = time.Minute
	s2.Fallback.Value = "other"
	s2.Bulkhead.MaxConcurrent = 1
	s2.CircuitBreaker.Name = "copy"
	s2.CircuitBreaker.FailureThreshold = 1
	if s.Retry.MaxAttempts != 3 || s.Timeout.Timeout != time.Second || s.Fallback.Value != "cached" || s.Bulkhead.MaxConcurrent != 0 ||
		s.CircuitBreaker.Name != "original" || s.CircuitBreaker.FailureThreshold != 5 {
		t.Errorf("original changed with its copy: %+v", s)
	}
	if got := s.String(); got != before {
		t.Errorf("original String() = %q after changing the copy, want %q", got, before)
	}
	if got, want := s2.String(), "fallback(value \"other\") → bulkhead(max_concurrent 1) → circuit_breaker(copy) → retry(9 attempts) → timeout(1m0s) → endpoint"; got != want {
		t.Errorf("copy String() = %q, want %q", got, want)
	}
	ep := endpointtest.New(endpointtest.Err(errOther))
	call, err := s.Apply(ep.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := call(context.Background(), nil); resp != "cached" || err != nil {
		t.Errorf("call = %v, %v; want cached, nil", resp, err)
	}
	if got := ep.Calls(); got != 3 {
		t.Errorf("calls = %d, want 3 (the original's MaxAttempts)", got)
	}
	if got, want := reg.Names(), []string{"original"}; !slices.Equal(got, want) {
		t.Errorf("registry breakers = %v, want %v (the original's name)", got, want)
	}
	b, ok := reg.Get("original")
	if !ok {
		t.Fatal("no breaker named original")
	}
	if got := b.State(); got != registry.StateClosed {
		t.Errorf("breaker state = %v after one failed call, want closed (the original's threshold, 5)", got)
	}
}
