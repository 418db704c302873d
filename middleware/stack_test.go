package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// TestLoadStacksPolicies loads the guide's policies and builds every stack.
func TestLoadStacksPolicies(t *testing.T) {
	stacks, err := middleware.LoadStacks("../testdata/policies.yaml")
	if err != nil {
		t.Fatalf("LoadStacks: %v", err)
	}
	want := map[string]string{
		"flaky_fast_api":    "retry(5 attempts) → endpoint",
		"slow_reliable_api": "retry(3 attempts) → endpoint",
		"critical":          "circuit_breaker(critical) → endpoint",
		"optional":          "circuit_breaker(optional) → endpoint",
		"embedding_api":     "fallback(value []) → circuit_breaker(embedding_api) → retry(3 attempts) → timeout(10s) → endpoint",
	}
	if len(stacks) != len(want) {
		t.Errorf("loaded %d stacks, want %d", len(stacks), len(want))
	}
	reg := registry.New(registry.Config{})
	for name, s := range stacks {
		if got := s.String(); got != want[name] {
			t.Errorf("%s: String() = %q, want %q", name, got, want[name])
		}
		if s.CircuitBreaker != nil {
			s.CircuitBreaker.Registry = reg
		}
		if _, err := s.Build(); err != nil {
			t.Errorf("%s: Build: %v", name, err)
		}
	}
	e := stacks["embedding_api"]
	if e.Retry.Delay.String() != "1s" || e.CircuitBreaker.ResetTimeout.String() != "2m0s" || e.CircuitBreaker.FailureThreshold != 5 {
		t.Errorf("embedding_api decoded as %+v / %+v", *e.Retry, *e.CircuitBreaker)
	}
	if o := stacks["optional"].CircuitBreaker.ResetTimeout.String(); o != "5m0s" {
		t.Errorf("optional reset_timeout = %s, want 5m0s (a number is seconds)", o)
	}
}

// TestLoadStacksErrors: every problem of a file at once, each naming the
// file, the stack and the field, all matching ErrInvalidConfig.
func TestLoadStacksErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"typo is an error", "a:\n  retry: {max_atempts: 3}\n", []string{`stack "a"`, "retry.max_atempts", "unknown key"}},
		{"unknown layer", "a:\n  retri: {}\n", []string{"retri", "unknown layer"}},
		{"bad duration", "a:\n  retry: {delay: soon}\n", []string{"retry.delay", "soon"}},
		{"wrong type", "a:\n  retry: {max_attempts: three}\n", []string{"retry.max_attempts"}},
		{"invalid values, all at once", "a:\n  retry: {max_attempts: -1, backoff: 0.5}\nb:\n  timeout: {timeout: -1s}\n",
			[]string{"retry.max_attempts: -1", "retry.backoff: 0.5", `stack "b"`, "timeout.timeout"}},
		{"breaker name must be printable", "a:\n  circuit_breaker: {name: \"bad\\u0000name\"}\n", []string{"circuit_breaker.name"}},
		{"unknown error class", "a:\n  retry: {retry_on: [conection]}\n", []string{"retry.retry_on[0]", "conection"}},
		{"not a map", "- a\n- b\n", []string{"map from stack name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := middleware.LoadStacks(strings.NewReader(tt.file))
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to name %q", err, w)
				}
			}
		})
	}
}

// TestStackOrder: the layers run in the guide's order whatever order a file
// writes them in.
func TestStackOrder(t *testing.T) {
	keys := []string{
		"fallback: {value: x}",
		"bulkhead: {max_concurrent: 2}",
		"rate_limit: {rate: 100, burst: 10}",
		"circuit_breaker: {name: order}",
		"retry: {max_attempts: 2}",
		"timeout: {timeout: 1s}",
	}
	want := "fallback(value \"x\") → bulkhead(max_concurrent 2) → rate_limit(100/s, burst 10) → circuit_breaker(order) → retry(2 attempts) → timeout(1s) → endpoint"
	n := 0
	for perm := range permutations(keys) {
		n++
		stacks, err := middleware.LoadStacks(strings.NewReader("s:\n  " + strings.Join(perm, "\n  ") + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := stacks["s"].String(); got != want {
			t.Fatalf("order %v: String() = %q, want %q", perm, got, want)
		}
	}
	if n != 720 {
		t.Errorf("permutations = %d, want 720", n)
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
		Timeout:        &middleware.TimeoutConfig{Timeout: 1e9},
		Retry:          &middleware.RetryConfig{MaxAttempts: 2, NoDelay: true},
		CircuitBreaker: &middleware.BreakerConfig{Name: "runs", Registry: registry.New(registry.Config{})},
		Fallback:       &middleware.FallbackConfig{Value: "cached"},
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
	want := []string{"retry:retry", "retry:retry_exhausted", "fallback:fallback"}
	if !slices.Equal(events, want) {
		t.Errorf("events = %v, want %v", events, want)
	}
}

// TestStackBuildErrors: Build returns every problem at once and never panics.
func TestStackBuildErrors(t *testing.T) {
	s := middleware.Stack{
		Retry:          &middleware.RetryConfig{MaxAttempts: -1},
		Timeout:        &middleware.TimeoutConfig{},
		CircuitBreaker: &middleware.BreakerConfig{FailureThreshold: -2},
		Bulkhead:       &middleware.BulkheadConfig{},
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
	a := middleware.Stack{CircuitBreaker: &middleware.BreakerConfig{Name: "svc", FailureThreshold: 3, Registry: reg}}
	b := middleware.Stack{CircuitBreaker: &middleware.BreakerConfig{Name: "svc", FailureThreshold: 4, Registry: reg}}
	if _, err := a.Build(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Build(); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Build() = %v, want ErrInvalidConfig", err)
	}
}

func permutations(xs []string) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		var rec func(k int) bool
		p := slices.Clone(xs)
		rec = func(k int) bool {
			if k == len(p) {
				return yield(slices.Clone(p))
			}
			for i := k; i < len(p); i++ {
				p[k], p[i] = p[i], p[k]
				if !rec(k + 1) {
					return false
				}
				p[k], p[i] = p[i], p[k]
			}
			return true
		}
		rec(0)
	}
}

func ExampleStack() {
	s := middleware.Stack{
		Retry:          &middleware.RetryConfig{MaxAttempts: 3, NoDelay: true},
		Fallback:       &middleware.FallbackConfig{Value: []float32{}},
		CircuitBreaker: &middleware.BreakerConfig{Name: "embedding_api", FailureThreshold: 5, Registry: registry.New(registry.Config{})},
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

func ExampleLoadStacks() {
	stacks, err := middleware.LoadStacks(strings.NewReader(`
embedding_api:
  fallback: {value: []}
  circuit_breaker: {name: embedding_api, failure_threshold: 5, reset_timeout: 2m}
  retry: {max_attempts: 3, delay: 1s, retry_on: [connection, timeout]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(stacks["embedding_api"])

	_, err = middleware.LoadStacks(strings.NewReader("api:\n  retry: {max_atempts: 3}\n"))
	fmt.Println(err)
	// Output:
	// fallback(value []) → circuit_breaker(embedding_api) → retry(3 attempts) → endpoint
	// policy: stack "api": middleware: invalid config: retry.max_atempts: unknown key
}

// TestFileErrorClasses: fail_on and fallback_on name error classes in a
// policy file, as retry_on does.
func TestFileErrorClasses(t *testing.T) {
	stacks, err := middleware.LoadStacks(strings.NewReader(`
s:
  fallback: {value: cached, fallback_on: [timeout]}
  circuit_breaker: {name: classes, failure_threshold: 1, fail_on: [connection]}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := stacks["s"]
	reg := registry.New(registry.Config{})
	s.CircuitBreaker.Registry = reg
	s.Observer = discard
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
	_, err = middleware.LoadStacks(strings.NewReader("s:\n  circuit_breaker: {name: x, fail_on: [nope]}\n  fallback: {fallback_on: [nope2]}\n"))
	for _, w := range []string{"circuit_breaker.fail_on[0]", "fallback.fallback_on[0]"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, want it to name %s", err, w)
		}
	}
}

func ExampleStack_WithFallback() {
	stacks, err := middleware.LoadStacks(strings.NewReader(`
embedding_api:
  fallback: {value: []}
  retry: {max_attempts: 2, no_delay: true}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	cache := func(context.Context, any) (any, error) { return "from cache", nil }
	s := stacks["embedding_api"].WithFallback(cache)
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

// TestStackName: a loaded stack is named by its key, and its name is the
// default name of its layers, its breaker's included.
func TestStackName(t *testing.T) {
	stacks, err := middleware.LoadStacks(strings.NewReader("search_api:\n  circuit_breaker: {failure_threshold: 3}\n  retry: {no_delay: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := stacks["search_api"]
	if s.Name != "search_api" {
		t.Errorf("Name = %q, want search_api", s.Name)
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
