package middleware_test

import (
	"math"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// FuzzRetryConfigDelayFor checks RetryConfig.DelayFor on any input: the
// delay is within [0, MaxDelay], inside its jitter band, and, with jitter
// off and a valid config, never shrinks from one attempt to the next. Seeds
// are in testdata/fuzz/FuzzRetryConfigDelayFor.
func FuzzRetryConfigDelayFor(f *testing.F) {
	f.Add(int64(time.Second), 2.0, int64(0), false, 3, 0.5)
	f.Add(int64(math.MaxInt64), math.MaxFloat64, int64(math.MaxInt64), true, 10_000, 0.999)
	f.Add(int64(1), 1.0000001, int64(0), false, math.MaxInt, 1.0)
	f.Fuzz(func(t *testing.T, delay int64, backoff float64, maxDelay int64, noJitter bool, attempt int, rnd float64) {
		cfg := middleware.RetryConfig{
			Delay:         time.Duration(delay),
			Backoff:       backoff,
			MaxDelay:      time.Duration(maxDelay),
			DisableJitter: noJitter,
		}
		got := cfg.DelayFor(attempt, rnd)

		limit := cfg.MaxDelay
		if limit == 0 {
			limit = max(60*time.Second, cfg.Delay)
		}
		if got < 0 || got > max(limit, 0) {
			t.Fatalf("DelayFor(%d, %v) = %v, want in [0, %v]", attempt, rnd, got, max(limit, 0))
		}
		if cfg.Validate() != nil {
			return
		}
		// The base delay, as DelayFor computes it with jitter off.
		plain := cfg
		plain.DisableJitter = true
		base := plain.DelayFor(attempt, rnd)
		if noJitter {
			if got != base {
				t.Fatalf("DelayFor(%d, %v) = %v with jitter off, want the base %v", attempt, rnd, got, base)
			}
		} else if g, b := float64(got), float64(base); g < 0.5*b-1 || g > 1.5*b+1 {
			t.Fatalf("DelayFor(%d, %v) = %v, want within ±50%% of %v", attempt, rnd, got, base)
		}
		if attempt > 1 && attempt < math.MaxInt {
			if prev := plain.DelayFor(attempt-1, 0); base < prev {
				t.Fatalf("base delay %d = %v, less than delay %d = %v", attempt, base, attempt-1, prev)
			}
			if next := plain.DelayFor(attempt+1, 0); next < base {
				t.Fatalf("base delay %d = %v, less than delay %d = %v", attempt+1, next, attempt, base)
			}
		}
	})
}
