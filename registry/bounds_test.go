package registry_test

import (
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// settingsField returns the field named by a Validate error ("" for nil),
// failing t when the error is not a *SettingsError matching
// ErrInvalidSettings.
func settingsField(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	se, ok := errors.AsType[*registry.SettingsError](err)
	if !ok || !errors.Is(err, registry.ErrInvalidSettings) {
		t.Fatalf("err = %v, want a *SettingsError matching ErrInvalidSettings", err)
	}
	return se.Field
}

// TestSettingsExtremes sweeps extreme values of every Settings field:
// either Validate refuses the value with an error naming the field (and so
// does Registry.Breaker), or the breaker works: calls succeed and fail, Trip
// opens it, and a probe is admitted ResetTimeout later, with no panic.
func TestSettingsExtremes(t *testing.T) {
	ratio := func(s registry.Settings) registry.Settings {
		if s.FailureRatio == 0 {
			s.FailureRatio = 0.5
		}
		return s
	}
	tests := []struct {
		name  string
		s     registry.Settings
		field string // "" when valid
	}{
		{name: "FailureThreshold max", s: registry.Settings{FailureThreshold: math.MaxInt}},
		{name: "FailureThreshold min", s: registry.Settings{FailureThreshold: math.MinInt}, field: "FailureThreshold"},
		{name: "SuccessThreshold max", s: registry.Settings{SuccessThreshold: math.MaxUint32}},
		{name: "SuccessThreshold past uint32", s: registry.Settings{SuccessThreshold: math.MaxUint32 + 1}, field: "SuccessThreshold"},
		{name: "SuccessThreshold min", s: registry.Settings{SuccessThreshold: math.MinInt}, field: "SuccessThreshold"},
		{name: "ResetTimeout MaxDuration", s: registry.Settings{ResetTimeout: registry.MaxDuration}},
		{name: "ResetTimeout past MaxDuration", s: registry.Settings{ResetTimeout: registry.MaxDuration + 1}, field: "ResetTimeout"},
		{name: "ResetTimeout max", s: registry.Settings{ResetTimeout: math.MaxInt64}, field: "ResetTimeout"},
		{name: "ResetTimeout min", s: registry.Settings{ResetTimeout: math.MinInt64}, field: "ResetTimeout"},
		{name: "FailureRatio smallest", s: ratio(registry.Settings{FailureRatio: math.SmallestNonzeroFloat64})},
		{name: "FailureRatio 1", s: ratio(registry.Settings{FailureRatio: 1})},
		{name: "FailureRatio just past 1", s: registry.Settings{FailureRatio: math.Nextafter(1, 2)}, field: "FailureRatio"},
		{name: "FailureRatio +Inf", s: registry.Settings{FailureRatio: math.Inf(1)}, field: "FailureRatio"},
		{name: "FailureRatio NaN", s: registry.Settings{FailureRatio: math.NaN()}, field: "FailureRatio"},
		{name: "MinRequests max", s: ratio(registry.Settings{MinRequests: math.MaxInt})},
		{name: "MinRequests min", s: ratio(registry.Settings{MinRequests: math.MinInt}), field: "MinRequests"},
		{name: "Window MaxDuration", s: ratio(registry.Settings{Window: registry.MaxDuration, WindowBuckets: registry.MaxWindowBuckets})},
		{name: "Window MaxDuration, 2 buckets", s: ratio(registry.Settings{Window: registry.MaxDuration, WindowBuckets: 2})},
		{name: "Window past MaxDuration", s: ratio(registry.Settings{Window: registry.MaxDuration + 1}), field: "Window"},
		{name: "Window max", s: ratio(registry.Settings{Window: math.MaxInt64, WindowBuckets: registry.MaxWindowBuckets}), field: "Window"},
		{name: "Window min", s: ratio(registry.Settings{Window: math.MinInt64}), field: "Window"},
		{name: "Window of 1ns buckets", s: ratio(registry.Settings{Window: registry.MaxWindowBuckets, WindowBuckets: registry.MaxWindowBuckets})},
		{name: "Window shorter than its buckets", s: ratio(registry.Settings{Window: 1, WindowBuckets: 2}), field: "Window"},
		{name: "WindowBuckets 2", s: ratio(registry.Settings{WindowBuckets: 2})},
		{name: "WindowBuckets max", s: ratio(registry.Settings{WindowBuckets: registry.MaxWindowBuckets})},
		{name: "WindowBuckets past max", s: ratio(registry.Settings{WindowBuckets: registry.MaxWindowBuckets + 1}), field: "WindowBuckets"},
		{name: "WindowBuckets max int", s: ratio(registry.Settings{WindowBuckets: math.MaxInt}), field: "WindowBuckets"},
		{name: "WindowBuckets min", s: ratio(registry.Settings{WindowBuckets: math.MinInt}), field: "WindowBuckets"},
		{name: "everything at its largest", s: registry.Settings{FailureThreshold: math.MaxInt, SuccessThreshold: math.MaxUint32,
			ResetTimeout: registry.MaxDuration, FailureRatio: 1, MinRequests: math.MaxInt, Window: registry.MaxDuration, WindowBuckets: registry.MaxWindowBuckets}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settingsField(t, tt.s.Validate()); got != tt.field {
				t.Fatalf("Validate() names %q, want %q", got, tt.field)
			}
			synctest.Test(t, func(t *testing.T) {
				b, err := registry.New(registry.Config{}).Breaker("svc", tt.s)
				if got := settingsField(t, err); got != tt.field {
					t.Fatalf("Breaker() names %q, want %q", got, tt.field)
				}
				if tt.field != "" {
					return
				}
				succeed(t, b, 1)
				fail(t, b, 1)
				_ = b.Snapshot()
				b.Trip()
				time.Sleep(b.Settings().ResetTimeout)
				tk, err := b.Allow()
				if err != nil {
					t.Fatalf("Allow() at ResetTimeout = %v, want a probe", err)
				}
				b.Done(tk, registry.Success)
			})
		})
	}
}

// TestRatioCallCostAfterQuietSpell bounds the work of one call with the
// largest number of buckets after a quiet spell of half the window (5,000
// buckets to roll): gobreaker's window rolled them one at a time at
// O(buckets) each, 0.1 s to seconds of CPU under the breaker's lock. The
// bound, 50ms, is generous: the call takes microseconds. Each try starts
// with a quiet spell longer than the window, so the call before the
// measured one is cheap too; the best of three tries is kept, so a
// scheduling hiccup does not fail the test.
func TestRatioCallCostAfterQuietSpell(t *testing.T) {
	const window = 4 * time.Millisecond // 400ns buckets
	b, err := registry.New(registry.Config{}).Breaker("svc", registry.Settings{FailureRatio: 0.5, MinRequests: math.MaxInt, Window: window, WindowBuckets: registry.MaxWindowBuckets})
	if err != nil {
		t.Fatal(err)
	}
	best := time.Duration(math.MaxInt64)
	for range 3 {
		time.Sleep(window + time.Millisecond) // the window empties
		succeed(t, b, 1)
		time.Sleep(window / 2)
		start := time.Now()
		succeed(t, b, 1)
		best = min(best, time.Since(start))
	}
	if best > 50*time.Millisecond {
		t.Errorf("one call after a quiet half window took %v, want microseconds (at most 50ms)", best)
	}
}

// BenchmarkRatioRule measures a call with the ratio rule, at the default
// and the largest number of buckets, with calls back to back (every call
// or so moves the window on by a bucket at the largest number: 1µs
// buckets) and after a quiet spell of half the window.
func BenchmarkRatioRule(b *testing.B) {
	for _, bm := range []struct {
		name    string
		buckets int
		quiet   time.Duration
	}{
		{name: "buckets=10", buckets: 10},
		{name: "buckets=10000", buckets: registry.MaxWindowBuckets},
		{name: "buckets=10000/after-quiet-half-window", buckets: registry.MaxWindowBuckets, quiet: 5 * time.Millisecond},
	} {
		b.Run(bm.name, func(b *testing.B) {
			br, err := registry.New(registry.Config{}).Breaker("svc", registry.Settings{FailureRatio: 0.5, MinRequests: math.MaxInt, Window: 10 * time.Millisecond, WindowBuckets: bm.buckets})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if bm.quiet > 0 {
					b.StopTimer()
					time.Sleep(bm.quiet)
					b.StartTimer()
				}
				tk, err := br.Allow()
				if err != nil {
					b.Fatal(err)
				}
				br.Done(tk, registry.Success)
			}
		})
	}
}
