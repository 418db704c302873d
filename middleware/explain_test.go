package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// TestCrossLayerChecks: what can never work is an error from Build, naming
// its path; what is merely risky is a warning ("path: message").
func TestCrossLayerChecks(t *testing.T) {
	tests := []struct {
		name         string
		stack        middleware.Stack
		wantErr      []string
		wantWarnings []string
	}{
		{name: "attempt timeout not shorter than the budget",
			stack:   middleware.Stack{Budget: 5 * time.Second, Timeout: middleware.TimeoutConfig{Timeout: 5 * time.Second}},
			wantErr: []string{"timeout.timeout: 5s", "budget (5s)"}},
		{name: "no retry fits the budget",
			stack:   middleware.Stack{Budget: 10 * time.Second, Timeout: middleware.TimeoutConfig{Timeout: 8 * time.Second}, Retry: middleware.RetryConfig{MaxAttempts: 3, Delay: 6 * time.Second}},
			wantErr: []string{"retry.delay", "no retry can fit"}},
		{name: "negative budget", stack: middleware.Stack{Budget: -time.Second}, wantErr: []string{"budget: -1s"}},
		{name: "reset timeout shorter than an attempt",
			stack:        middleware.Stack{CircuitBreaker: middleware.BreakerConfig{Name: "w1", ResetTimeout: time.Second}, Timeout: middleware.TimeoutConfig{Timeout: 2 * time.Second}},
			wantWarnings: []string{"circuit_breaker.reset_timeout"}},
		{name: "retries cut by the budget",
			stack:        middleware.Stack{Budget: 20 * time.Second, Timeout: middleware.TimeoutConfig{Timeout: 10 * time.Second}, Retry: middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second, MaxDelay: 2 * time.Second}},
			wantWarnings: []string{"budget: 20s is shorter than the worst case of the retries (34s): "}},
		{name: "retries cut by the budget when the service sends Retry-After",
			stack:        middleware.Stack{Budget: 40 * time.Second, Timeout: middleware.TimeoutConfig{Timeout: 10 * time.Second}, Retry: middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second}},
			wantWarnings: []string{"budget: 40s is shorter than the worst case of the retries (2m30s, with every wait at max_delay 1m0s as Retry-After hints may ask; 34.5s without hints)"}},
		{name: "retry without timeout is explained, not warned", stack: middleware.Stack{Retry: middleware.RetryConfig{MaxAttempts: 2}}},
		{name: "sound stack", stack: middleware.Stack{Budget: 40 * time.Second, Timeout: middleware.TimeoutConfig{Timeout: 10 * time.Second},
			Retry: middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second, MaxDelay: 3 * time.Second}, CircuitBreaker: middleware.BreakerConfig{Name: "w2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.stack
			s.Name = "s"
			s.Observer = discard
			s.Registry = registry.New(registry.Config{})
			_, err := s.Build()
			if len(tt.wantErr) > 0 {
				if !errors.Is(err, middleware.ErrInvalidConfig) {
					t.Fatalf("err = %v, want ErrInvalidConfig", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %q, want it to say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := s.Warnings()
			if len(got) != len(tt.wantWarnings) {
				t.Fatalf("warnings = %q, want %d", got, len(tt.wantWarnings))
			}
			for i, w := range tt.wantWarnings {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %d = %q, want it to start %q", i, got[i], w)
				}
			}
		})
	}
	_, err := middleware.Stack{Retry: middleware.RetryConfig{RetryOn: []error{middleware.ErrCircuitOpen}}}.Build()
	if !errors.Is(err, middleware.ErrInvalidConfig) || !strings.Contains(err.Error(), "retry.retry_on[0]") {
		t.Errorf("retrying a rejection: Build() = %v, want an error naming retry.retry_on[0]", err)
	}
}

// TestBudget: the budget bounds the whole call, and the fallback still serves
// when it ends.
func TestBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := middleware.Stack{
			Fallback: middleware.FallbackConfig{Value: "cached"},
			Budget:   2500 * time.Millisecond,
			Retry:    middleware.RetryConfig{MaxAttempts: 10, Delay: 100 * time.Millisecond, Backoff: 1, DisableJitter: true},
			Timeout:  middleware.TimeoutConfig{Timeout: time.Second},
			Observer: discard,
		}
		ep := endpointtest.New(endpointtest.Hang())
		call, err := s.Apply(ep.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := call(context.Background(), nil)
		if resp != "cached" || err != nil {
			t.Errorf("call = %v, %v, want cached, nil", resp, err)
		}
		// Attempts end at 1s and 2.1s; the third starts at 2.2s and the
		// budget cuts it at 2.5s.
		if got, want := time.Since(start), 2500*time.Millisecond; got != want {
			t.Errorf("elapsed = %v, want %v", got, want)
		}
		if got := ep.Calls(); got != 3 {
			t.Errorf("calls = %d, want 3", got)
		}
	})
}

func TestExplain(t *testing.T) {
	// The guide's embedding_api policy.
	embedding := middleware.Stack{
		Name:           "embedding_api",
		Fallback:       middleware.FallbackConfig{Value: []float32{}},
		CircuitBreaker: middleware.BreakerConfig{FailureThreshold: 5, ResetTimeout: 2 * time.Minute},
		Retry:          middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second, RetryIf: errclass.Any(errclass.Connection, errclass.Timeout)},
		Timeout:        middleware.TimeoutConfig{Timeout: 10 * time.Second},
	}
	got := embedding.Explain()
	for _, want := range []string{
		"1. fallback(value [])",
		"2. circuit_breaker \"embedding_api\": opens after 5 consecutive failures; rejects for 2m0s, then admits 2 probes",
		"3. retry: 3 attempts; waits 1s (500ms-1.5s), 2s (1s-3s) (each at most 1m0s, or a Retry-After hint up to that); retries ",
		"4. timeout: 10s per attempt",
		"attempts: 3",
		"longest time: 2m30s (3 × 10s + 2 × 1m0s waits)",
		"without hints the waits total 4.5s (longest time 34.5s)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Explain() lacks %q:\n%s", want, got)
		}
	}
	critical := middleware.Stack{Name: "critical", CircuitBreaker: middleware.BreakerConfig{FailureThreshold: 3}}
	if got := critical.Explain(); !strings.Contains(got, "longest time: unbounded") {
		t.Errorf("a stack without timeouts should be unbounded:\n%s", got)
	}
}

func ExampleStack_Explain() {
	s := middleware.Stack{
		Fallback:       middleware.FallbackConfig{Value: []string{}},
		CircuitBreaker: middleware.BreakerConfig{Name: "embedding_api", ResetTimeout: 2 * time.Minute},
		Retry:          middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second, DisableJitter: true},
		Timeout:        middleware.TimeoutConfig{Timeout: 10 * time.Second},
	}
	fmt.Print(s.Explain())
	// Output:
	// layers, outermost first:
	//   1. fallback(value []): on any failure the caller gets the fallback instead of the error
	//   2. circuit_breaker "embedding_api": opens after 5 consecutive failures; rejects for 2m0s, then admits 2 probes; 2 successes close it
	//   3. retry: 3 attempts; waits 1s, 2s (each at most 1m0s, or a Retry-After hint up to that); retries every error; never caller cancellation or rejections
	//   4. timeout: 10s per attempt (cooperative: the endpoint must honour its context)
	//   endpoint
	// worst case per call:
	//   attempts: 3
	//   backend calls: 3
	//   longest time: 2m30s (3 × 10s + 2 × 1m0s waits)
	//   waits: a Retry-After hint is waited out up to max_delay 1m0s; without hints the waits total 3s (longest time 33s)
}

// TestExplainSaysWhatEachLayerDoes: Explain names every configured layer and
// the settings that change what the caller sees (it said "on any failure"
// with fallback_on set, and left out measure and return_default).
func TestExplainSaysWhatEachLayerDoes(t *testing.T) {
	tests := []struct {
		name   string
		stack  middleware.Stack
		want   []string
		unwant []string
	}{
		{name: "fallback on a predicate", stack: middleware.Stack{Fallback: middleware.FallbackConfig{Value: "x", FallbackIf: func(error) bool { return true }}},
			want:   []string{"fallback(value \"x\"): on a failure matching FallbackIf the caller gets the fallback", "other failures are returned as they are"},
			unwant: []string{"on any failure"}},
		{name: "fallback on any failure", stack: middleware.Stack{Fallback: middleware.FallbackConfig{Value: "x"}}, want: []string{"on any failure the caller gets the fallback"}},
		{name: "measure", stack: middleware.Stack{Name: "api", Measure: true}, want: []string{"1. measure \"api\": reports every call's outcome and latency"}},
		{name: "measure under a fallback", stack: middleware.Stack{Name: "m", Fallback: middleware.FallbackConfig{Value: 1}, Measure: true}, want: []string{"2. measure \"m\""}},
		{name: "return default", stack: middleware.Stack{Timeout: middleware.TimeoutConfig{Timeout: time.Second, ReturnDefault: true, Default: map[string]any{"status": "unknown"}}},
			want: []string{`timeout: 1s per attempt (cooperative: the endpoint must honour its context); a timed-out attempt returns map[status:unknown] with no error (return_default)`}},
		{name: "growing jittered open duration", stack: middleware.Stack{CircuitBreaker: middleware.BreakerConfig{Name: "g", ResetTimeout: time.Second, MaxResetTimeout: time.Minute, ResetJitter: 0.2}},
			want: []string{"rejects for 1s (x2 on each failed probe, up to 1m0s) less up to 20% at random, then admits 2 probes"}},
		{name: "many attempts", stack: middleware.Stack{Timeout: middleware.TimeoutConfig{Timeout: time.Second}, Retry: middleware.RetryConfig{MaxAttempts: 1000000000, Delay: time.Millisecond, DisableJitter: true}},
			want: []string{"waits 1ms, 2ms, 4ms, 8ms and 999999995 more (each at most 1m0s", "attempts: 1000000000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.stack.Explain()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Explain() lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.unwant {
				if strings.Contains(got, w) {
					t.Errorf("Explain() says %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestExplainNamesErrorClasses: Explain says which error classes a retry or
// a fallback is for, by errclass.Describe, as a policy file's retry_on and
// fallback_on name them.
func TestExplainNamesErrorClasses(t *testing.T) {
	retryIf := errclass.Any(errclass.Connection, errclass.Timeout)
	fallbackIf := errclass.Any(errclass.Connection, errclass.HTTP5xx)
	s := middleware.Stack{
		Fallback: middleware.FallbackConfig{Value: "x", FallbackIf: fallbackIf},
		Retry:    middleware.RetryConfig{MaxAttempts: 3, RetryIf: retryIf},
	}
	got := s.Explain()
	for _, w := range []string{
		"fallback(value \"x\"): on a failure matching connection, http-5xx the caller gets the fallback",
		"retries connection, timeout",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("Explain() lacks %q:\n%s", w, got)
		}
	}
}
