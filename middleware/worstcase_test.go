package middleware_test

import (
	"context"
	"math"
	"regexp"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// hugeAttemptStack is a stack whose worst case is checked by Build (budget,
// retry and timeout) with n attempts.
func hugeAttemptStack(n int) middleware.Stack {
	return middleware.Stack{
		Budget:   time.Hour,
		Retry:    middleware.RetryConfig{MaxAttempts: n, Delay: time.Millisecond, Backoff: 1.0001},
		Timeout:  middleware.TimeoutConfig{Timeout: time.Second},
		Observer: quiet,
	}
}

// TestWorstCaseCostIndependentOfAttempts: Build, Explain and Warnings cost
// the same allocations and bytes for any MaxAttempts from 100 on, 1<<62 and
// math.MaxInt included (they used to take time and memory in proportion).
func TestWorstCaseCostIndependentOfAttempts(t *testing.T) {
	base := hugeAttemptStack(100)
	run := func(s middleware.Stack) {
		if _, err := s.Build(); err != nil {
			t.Fatal(err)
		}
		_ = s.Explain()
		_ = s.Warnings()
	}
	baseAllocs := testing.AllocsPerRun(5, func() { run(base) })
	baseBytes := allocatedBytes(func() { run(base) })
	tests := []struct {
		name     string
		attempts int
	}{
		{name: "1000", attempts: 1000},
		{name: "10M", attempts: 10_000_000},
		{name: "1<<62", attempts: 1 << 62},
		{name: "MaxInt", attempts: math.MaxInt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := hugeAttemptStack(tt.attempts)
			if got := testing.AllocsPerRun(5, func() { run(s) }); got > baseAllocs+32 {
				t.Errorf("allocs = %v, want at most %v (as with 100 attempts, + 32)", got, baseAllocs+32)
			}
			if got := allocatedBytes(func() { run(s) }); got > baseBytes+8192 {
				t.Errorf("bytes allocated = %d, want at most %d (as with 100 attempts, + 8 KiB)", got, baseBytes+8192)
			}
		})
	}
}

// allocatedBytes returns the bytes f allocates: the fewest of five runs, as
// TotalAlloc counts what every goroutine allocates, and a test running in
// parallel (or a timer's goroutine) adds to one run now and then.
func allocatedBytes(f func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 5 {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		f()
		runtime.ReadMemStats(&m1)
		least = min(least, m1.TotalAlloc-m0.TotalAlloc)
	}
	return least
}

var longestRE = regexp.MustCompile(`longest time: (\S+) `)

// explainLongest returns the longest time Explain prints for s.
func explainLongest(t *testing.T, s middleware.Stack) time.Duration {
	t.Helper()
	m := longestRE.FindStringSubmatch(s.Explain())
	if m == nil {
		t.Fatalf("Explain() has no longest time:\n%s", s.Explain())
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("Explain() longest time %q: %v", m[1], err)
	}
	return d
}

// TestWorstCaseRetryAfter: the longest time Explain prints bounds the
// slowest call that the stack lets through, and is reached: each attempt
// runs for just under its timeout, then fails with a Retry-After hint of
// max_delay, which Retry waits out (it ignored the hints, printing 34.5s for
// a policy whose calls took 2m30s).
func TestWorstCaseRetryAfter(t *testing.T) {
	tests := []struct {
		name  string
		retry middleware.RetryConfig
		hint  func(c middleware.RetryConfig) time.Duration // the Retry-After the endpoint sends
	}{
		{name: "guide's 3 attempts, 10s", retry: middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second}},
		{name: "no delay", retry: middleware.RetryConfig{MaxAttempts: 4, NoDelay: true, MaxDelay: 5 * time.Second}},
		{name: "no jitter", retry: middleware.RetryConfig{MaxAttempts: 5, Delay: 100 * time.Millisecond, DisableJitter: true, MaxDelay: 2 * time.Second}},
		{name: "hint shorter than the schedule", retry: middleware.RetryConfig{MaxAttempts: 3, Delay: 2 * time.Second, Backoff: 1, MaxDelay: 2 * time.Second},
			hint: func(middleware.RetryConfig) time.Duration { return time.Millisecond }},
	}
	const attempt = 10 * time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rc := tt.retry
				rc.Observer = quiet
				s := middleware.Stack{Retry: rc, Timeout: middleware.TimeoutConfig{Timeout: attempt}, Observer: quiet}
				hint := rc.MaxDelay
				if hint == 0 {
					hint = time.Minute
				}
				if tt.hint != nil {
					hint = tt.hint(rc)
				}
				call, err := s.Apply(func(ctx context.Context, _ any) (any, error) {
					time.Sleep(attempt - time.Nanosecond)
					return nil, &hintError{after: hint}
				})
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				if _, err := call(context.Background(), nil); err == nil {
					t.Fatal("call succeeded, want the 503")
				}
				elapsed := time.Since(start)
				longest := explainLongest(t, s)
				if elapsed > longest {
					t.Errorf("call took %v, longer than Explain's longest time %v", elapsed, longest)
				}
				if tt.hint == nil && longest-elapsed > time.Millisecond {
					t.Errorf("call took %v, want Explain's longest time %v (within 1ms): the bound is reached", elapsed, longest)
				}
			})
		})
	}
}
