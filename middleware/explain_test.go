package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

// TestCrossLayerChecks: what can never work is an error from Build and
// LoadStacks, each naming its path; what is merely risky is a warning.
func TestCrossLayerChecks(t *testing.T) {
	tests := []struct {
		name         string
		file         string
		wantErr      []string
		wantWarnings []string
	}{
		{name: "attempt timeout not shorter than the budget", file: "budget: 5s\ntimeout: {timeout: 5s}",
			wantErr: []string{"timeout.timeout: 5s", "budget (5s)"}},
		{name: "no retry fits the budget", file: "budget: 10s\ntimeout: {timeout: 8s}\nretry: {delay: 6s}",
			wantErr: []string{"retry.delay", "no retry can fit"}},
		{name: "negative budget", file: "budget: -1s", wantErr: []string{"budget: -1s"}},
		{name: "reset timeout shorter than an attempt", file: "circuit_breaker: {name: w1, reset_timeout: 1s}\ntimeout: {timeout: 2s}",
			wantWarnings: []string{"circuit_breaker.reset_timeout"}},
		{name: "retries cut by the budget", file: "budget: 20s\ntimeout: {timeout: 10s}\nretry: {max_attempts: 3, delay: 1s, max_delay: 2s}",
			wantWarnings: []string{"budget: 20s is shorter than the worst case of the retries (34s): "}},
		{name: "retries cut by the budget when the service sends Retry-After", file: "budget: 40s\ntimeout: {timeout: 10s}\nretry: {max_attempts: 3, delay: 1s}",
			wantWarnings: []string{"budget: 40s is shorter than the worst case of the retries (2m30s, with every wait at max_delay 1m0s as Retry-After hints may ask; 34.5s without hints)"}},
		{name: "retry without timeout is explained, not warned", file: "retry: {max_attempts: 2}"},
		{name: "sound stack", file: "budget: 40s\ntimeout: {timeout: 10s}\nretry: {max_attempts: 3, delay: 1s, max_delay: 3s}\ncircuit_breaker: {name: w2}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			indented := "  " + strings.ReplaceAll(tt.file, "\n", "\n  ")
			stacks, err := middleware.LoadStacks(strings.NewReader("s:\n" + indented + "\n"))
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
			var got []string
			for _, w := range stacks["s"].Warnings() {
				got = append(got, w.String())
			}
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
	_, err := middleware.Stack{Retry: &middleware.RetryConfig{RetryOn: []error{middleware.ErrCircuitOpen}}}.Build()
	if !errors.Is(err, middleware.ErrInvalidConfig) || !strings.Contains(err.Error(), "retry.retry_on[0]") {
		t.Errorf("retrying a rejection: Build() = %v, want an error naming retry.retry_on[0]", err)
	}
}

// TestBudget: the budget bounds the whole call, and the fallback still serves
// when it ends.
func TestBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := middleware.Stack{
			Fallback: &middleware.FallbackConfig{Value: "cached"},
			Budget:   2500 * time.Millisecond,
			Retry:    &middleware.RetryConfig{MaxAttempts: 10, Delay: 100 * time.Millisecond, Backoff: 1, DisableJitter: true},
			Timeout:  &middleware.TimeoutConfig{Timeout: time.Second},
			Observer: discard,
			Logger:   slog.New(slog.DiscardHandler),
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
	stacks, err := middleware.LoadStacks("../testdata/policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := stacks["embedding_api"].Explain()
	for _, want := range []string{
		"1. fallback(value [])",
		"2. circuit_breaker \"embedding_api\": opens after 5 consecutive failures; rejects for 2m0s, then admits 2 probes",
		"3. retry: 3 attempts; waits 1s (500ms-1.5s), 2s (1s-3s) (each at most 1m0s, or a Retry-After hint up to that); retries connection, timeout",
		"4. timeout: 10s per attempt",
		"attempts: 3",
		"longest time: 2m30s (3 × 10s + 2 × 1m0s waits)",
		"without hints the waits total 4.5s (longest time 34.5s)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Explain() lacks %q:\n%s", want, got)
		}
	}
	if got := stacks["critical"].Explain(); !strings.Contains(got, "longest time: unbounded") {
		t.Errorf("a stack without timeouts should be unbounded:\n%s", got)
	}
}

func ExampleStack_Explain() {
	s := middleware.Stack{
		Fallback:       &middleware.FallbackConfig{Value: []string{}},
		CircuitBreaker: &middleware.BreakerConfig{Name: "embedding_api", ResetTimeout: 2 * time.Minute},
		Retry:          &middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second, DisableJitter: true},
		Timeout:        &middleware.TimeoutConfig{Timeout: 10 * time.Second},
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
		file   string
		want   []string
		unwant []string
	}{
		{name: "fallback on classes", file: "fallback: {value: x, fallback_on: [connection, http-5xx]}",
			want:   []string{"fallback(value \"x\"): on a failure matching connection, http-5xx the caller gets the fallback", "other failures are returned as they are"},
			unwant: []string{"on any failure"}},
		{name: "fallback on any failure", file: "fallback: {value: x}", want: []string{"on any failure the caller gets the fallback"}},
		{name: "measure", file: "name: api\nmeasure: {}", want: []string{"1. measure \"api\": reports every call's outcome and latency"}},
		{name: "measure named", file: "fallback: {value: 1}\nmeasure: {name: m}", want: []string{"2. measure \"m\""}},
		{name: "return default", file: "timeout: {timeout: 1s, return_default: true, default: {status: unknown}}",
			want: []string{`timeout: 1s per attempt (cooperative: the endpoint must honour its context); a timed-out attempt returns {"status":"unknown"} with no error (return_default)`}},
		{name: "many attempts", file: "timeout: {timeout: 1s}\nretry: {max_attempts: 1000000000, delay: 1ms, disable_jitter: true}",
			want: []string{"waits 1ms, 2ms, 4ms, 8ms and 999999995 more (each at most 1m0s", "attempts: 1000000000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			indented := "  " + strings.ReplaceAll(tt.file, "\n", "\n  ")
			stacks, err := middleware.LoadStacks(strings.NewReader("s:\n" + indented + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			got := stacks["s"].Explain()
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
