package middleware

import (
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestSumDelaysClosedForm: the closed-form total of a retry schedule's waits
// agrees with the sum of the waits Retry computes one by one (exactly up to
// exactWaits waits, then from above within two nanoseconds per wait and a
// relative 1e-9), for every schedule, jitter on or off.
func TestSumDelaysClosedForm(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		delay := time.Duration(rapid.Int64Range(1, int64(10*time.Second)).Draw(t, "delay_ns"))
		backoff := 1 + rapid.Float64Range(0, 2).Draw(t, "backoff-1")
		if rapid.Bool().Draw(t, "backoff_exactly_1") {
			backoff = 1
		}
		maxDelay := delay + time.Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(t, "max_delay-delay_ns"))
		c := RetryConfig{Delay: delay, Backoff: backoff, MaxDelay: maxDelay, DisableJitter: rapid.Bool().Draw(t, "no_jitter")}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		waits := rapid.IntRange(0, 3000).Draw(t, "waits")
		rnd := rapid.SampledFrom([]float64{0, 0.5, jitterTop}).Draw(t, "rnd")
		var brute time.Duration
		for k := 1; k <= waits; k++ {
			brute += c.DelayFor(k, rnd)
		}
		s := c.schedule()
		got := s.sumDelays(waits, rnd)
		if waits <= exactWaits {
			if got != brute {
				t.Fatalf("sumDelays(%d) = %d, want %d (the sum of DelayFor)", waits, got, brute)
			}
			return
		}
		slack := 2*time.Duration(waits) + time.Duration(1e-9*float64(brute))
		if got < brute || got > brute+slack {
			t.Fatalf("sumDelays(%d) = %d, want within [%d, %d] (the sum of DelayFor, plus slack)", waits, got, brute, brute+slack)
		}
	})
}

// TestSumDelaysSaturates: the total never overflows, never decreases with
// more waits, and takes the same time at any number of waits.
func TestSumDelaysSaturates(t *testing.T) {
	tests := []struct {
		name string
		c    RetryConfig
	}{
		{name: "default", c: RetryConfig{}},
		{name: "max delay largest duration", c: RetryConfig{Delay: time.Hour, MaxDelay: math.MaxInt64}},
		{name: "backoff near 1", c: RetryConfig{Delay: time.Nanosecond, Backoff: 1 + 1e-12, MaxDelay: math.MaxInt64}},
		{name: "constant", c: RetryConfig{Delay: time.Hour, Backoff: 1}},
		{name: "no delay", c: RetryConfig{NoDelay: true}},
		{name: "huge backoff", c: RetryConfig{Delay: time.Second, Backoff: 1e300, MaxDelay: math.MaxInt64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.c.schedule()
			prev := time.Duration(0)
			for _, waits := range []int{0, 1, 2, exactWaits, exactWaits + 1, 1000, 1 << 20, 1 << 40, 1 << 62, math.MaxInt} {
				got := s.sumDelays(waits, jitterTop)
				if got < prev {
					t.Errorf("sumDelays(%d) = %v, below sumDelays of fewer waits (%v)", waits, got, prev)
				}
				prev = got
			}
			if allocs := testing.AllocsPerRun(10, func() { s.sumDelays(math.MaxInt, jitterTop) }); allocs != 0 {
				t.Errorf("sumDelays allocates %v times, want 0", allocs)
			}
		})
	}
}
