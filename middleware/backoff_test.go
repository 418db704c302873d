package middleware_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// retryScheduleCase is one row of testdata/retry_schedules.json: a config with
// jitter off and the waits it must make, in order.
type retryScheduleCase struct {
	Name   string `json:"name"`
	Config struct {
		MaxAttempts   int     `json:"max_attempts"`
		Delay         string  `json:"delay"`
		NoDelay       bool    `json:"no_delay"`
		Backoff       float64 `json:"backoff"`
		MaxDelay      string  `json:"max_delay"`
		DisableJitter bool    `json:"disable_jitter"`
	} `json:"config"`
	Delays []string `json:"delays"`
}

// retryConfig returns the row's config.
func (sc retryScheduleCase) retryConfig(t *testing.T) middleware.RetryConfig {
	t.Helper()
	return middleware.RetryConfig{
		MaxAttempts:   sc.Config.MaxAttempts,
		Delay:         retryParseDuration(t, sc.Config.Delay),
		NoDelay:       sc.Config.NoDelay,
		Backoff:       sc.Config.Backoff,
		MaxDelay:      retryParseDuration(t, sc.Config.MaxDelay),
		DisableJitter: sc.Config.DisableJitter,
	}
}

// delays returns the row's expected waits.
func (sc retryScheduleCase) delays(t *testing.T) []time.Duration {
	t.Helper()
	ds := make([]time.Duration, len(sc.Delays))
	for i, s := range sc.Delays {
		ds[i] = retryParseDuration(t, s)
	}
	return ds
}

func retryParseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("bad duration %q: %v", s, err)
	}
	return d
}

func loadRetrySchedules(t *testing.T) []retryScheduleCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "retry_schedules.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []retryScheduleCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no schedules in testdata/retry_schedules.json")
	}
	return cases
}

func TestRetryConfigDelayForSchedules(t *testing.T) {
	for _, tt := range loadRetrySchedules(t) {
		t.Run(tt.Name, func(t *testing.T) {
			cfg := tt.retryConfig(t)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			for i, want := range tt.delays(t) {
				for _, rnd := range []float64{0, 0.5, 0.999} {
					if got := cfg.DelayFor(i+1, rnd); got != want {
						t.Errorf("DelayFor(%d, %v) = %v, want %v", i+1, rnd, got, want)
					}
				}
			}
		})
	}
}

func TestRetryConfigDelayForJitter(t *testing.T) {
	guide := middleware.RetryConfig{Delay: time.Second, Backoff: 2}
	tests := []struct {
		name    string
		cfg     middleware.RetryConfig
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{"lowest draw halves", guide, 1, 0, 500 * time.Millisecond},
		{"middle draw keeps the base", guide, 1, 0.5, time.Second},
		{"high draw", guide, 1, 0.75, 1250 * time.Millisecond},
		{"attempt 2 lowest", guide, 2, 0, time.Second},
		{"attempt 3 middle", guide, 3, 0.5, 4 * time.Second},
		{"attempt 4 high", guide, 4, 0.75, 10 * time.Second},
		{"attempt 0 counts as 1", guide, 0, 0.5, time.Second},
		{"negative attempt counts as 1", guide, -5, 0.5, time.Second},
		{"negative rnd clamps to 0", guide, 1, -3, 500 * time.Millisecond},
		{"NaN rnd clamps to 0", guide, 1, math.NaN(), 500 * time.Millisecond},
		{"rnd 1 stays below 1.5", guide, 1, 1, 1500*time.Millisecond - 1},
		{"rnd +Inf stays below 1.5", guide, 1, math.Inf(1), 1500*time.Millisecond - 1},
		{"jitter above the cap is capped", middleware.RetryConfig{Delay: time.Second, MaxDelay: 5 * time.Second}, 10, 0.9, 5 * time.Second},
		{"jitter below the cap spreads down", middleware.RetryConfig{Delay: time.Second, MaxDelay: 5 * time.Second}, 10, 0.25, 3750 * time.Millisecond},
		{"largest draw stays below 1.5", guide, 1, math.Nextafter(1, 0), 1500*time.Millisecond - 1},
		{"no delay ignores jitter", middleware.RetryConfig{NoDelay: true}, 3, 0.9, 0},
		{"disabled jitter ignores rnd", middleware.RetryConfig{DisableJitter: true}, 2, 0, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.DelayFor(tt.attempt, tt.rnd); got != tt.want {
				t.Errorf("DelayFor(%d, %v) = %v, want %v", tt.attempt, tt.rnd, got, tt.want)
			}
		})
	}
}

// TestRetryConfigDelayForJitterBand draws 10,000 jittered delays per attempt
// and checks each lies in [0.5, 1.5) times its base, and that they vary.
func TestRetryConfigDelayForJitterBand(t *testing.T) {
	cfg := middleware.RetryConfig{Delay: time.Second, Backoff: 2, MaxDelay: time.Hour}
	const draws = 10_000
	for attempt := 1; attempt <= 5; attempt++ {
		base := time.Second << (attempt - 1)
		lo, hi := base/2, base*3/2
		seen := make(map[time.Duration]bool)
		minGot, maxGot := time.Duration(math.MaxInt64), time.Duration(0)
		for range draws {
			got := cfg.DelayFor(attempt, rand.Float64())
			if got < lo || got >= hi {
				t.Fatalf("DelayFor(%d) = %v, want in [%v, %v)", attempt, got, lo, hi)
			}
			seen[got] = true
			minGot, maxGot = min(minGot, got), max(maxGot, got)
		}
		if len(seen) < draws/2 {
			t.Errorf("attempt %d: %d distinct delays in %d draws, want at least %d", attempt, len(seen), draws, draws/2)
		}
		// Uniform over the band: 10,000 draws reach within 5% of each end.
		if spread := base / 20; minGot > lo+spread || maxGot < hi-spread {
			t.Errorf("attempt %d: delays span [%v, %v], want near [%v, %v)", attempt, minGot, maxGot, lo, hi)
		}
	}
}

func TestRetryConfigDelayForNoOverflow(t *testing.T) {
	tests := []struct {
		name   string
		cfg    middleware.RetryConfig
		capped bool // whether attempt 10,000 reaches MaxDelay
	}{
		{"defaults", middleware.RetryConfig{}, true},
		{"huge backoff", middleware.RetryConfig{Backoff: 1e300}, true},
		{"max float backoff", middleware.RetryConfig{Backoff: math.MaxFloat64}, true},
		{"huge delay", middleware.RetryConfig{Delay: math.MaxInt64}, true},
		{"huge delay and backoff", middleware.RetryConfig{Delay: math.MaxInt64 / 2, Backoff: 1e10}, true},
		{"max cap", middleware.RetryConfig{Delay: time.Hour, Backoff: 3, MaxDelay: math.MaxInt64}, true},
		{"max cap, max delay", middleware.RetryConfig{Delay: math.MaxInt64, Backoff: 2, MaxDelay: math.MaxInt64}, true},
		{"max cap, 1ns start, backoff 2", middleware.RetryConfig{Delay: 1, Backoff: 2, MaxDelay: math.MaxInt64}, true},
		{"max cap, 1ns start, slow growth", middleware.RetryConfig{Delay: 1, Backoff: 1.0000001, MaxDelay: math.MaxInt64}, false},
		{"backoff just over 1", middleware.RetryConfig{Backoff: 1 + 1e-15, MaxDelay: math.MaxInt64}, false},
	}
	attempts := []int{1, 2, 3, 31, 32, 62, 63, 64, 65, 100, 1023, 1024, 1025, 10_000, math.MaxInt32, math.MaxInt}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.cfg.MaxDelay
			if limit == 0 {
				limit = max(60*time.Second, tt.cfg.Delay)
			}
			for _, jitter := range []bool{true, false} {
				cfg := tt.cfg
				cfg.DisableJitter = !jitter
				prev := time.Duration(0)
				check := func(attempt int, rnd float64) time.Duration {
					got := cfg.DelayFor(attempt, rnd)
					if got < 0 || got > limit {
						t.Fatalf("jitter %v: DelayFor(%d, %v) = %v, want in [0, %v]", jitter, attempt, rnd, got, limit)
					}
					return got
				}
				for attempt := 1; attempt <= 10_000; attempt++ {
					got := check(attempt, 0.999999)
					if !jitter && got < prev {
						t.Fatalf("DelayFor(%d) = %v, less than DelayFor(%d) = %v", attempt, got, attempt-1, prev)
					}
					prev = got
				}
				for _, attempt := range attempts {
					for _, rnd := range []float64{0, 0.5, math.Nextafter(1, 0), 1, math.Inf(1), math.NaN()} {
						check(attempt, rnd)
					}
				}
				if !jitter && tt.capped {
					if got := cfg.DelayFor(10_000, 0); got != limit {
						t.Errorf("DelayFor(10000) = %v, want the cap %v", got, limit)
					}
				}
			}
		})
	}
}

// TestRetryConfigDelayForInvalid checks that even a config Validate rejects
// never yields a delay outside [0, MaxDelay].
func TestRetryConfigDelayForInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.RetryConfig
		max  time.Duration
	}{
		{"negative delay", middleware.RetryConfig{Delay: -time.Second}, 60 * time.Second},
		{"negative max delay", middleware.RetryConfig{MaxDelay: -time.Second}, 0},
		{"negative backoff", middleware.RetryConfig{Backoff: -2}, 60 * time.Second},
		{"fractional backoff", middleware.RetryConfig{Backoff: 0.5}, 60 * time.Second},
		{"NaN backoff", middleware.RetryConfig{Backoff: math.NaN()}, 60 * time.Second},
		{"+Inf backoff", middleware.RetryConfig{Backoff: math.Inf(1)}, 60 * time.Second},
		{"-Inf backoff", middleware.RetryConfig{Backoff: math.Inf(-1)}, 60 * time.Second},
		{"max delay below delay", middleware.RetryConfig{Delay: time.Minute, MaxDelay: time.Second}, time.Second},
		{"min int delay", middleware.RetryConfig{Delay: math.MinInt64, MaxDelay: math.MinInt64}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Validate() == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, attempt := range []int{math.MinInt, 0, 1, 2, 3, 64, 1025, 10_000, math.MaxInt} {
				for _, rnd := range []float64{0, 0.5, 1, math.NaN()} {
					if got := tt.cfg.DelayFor(attempt, rnd); got < 0 || got > tt.max {
						t.Errorf("DelayFor(%d, %v) = %v, want in [0, %v]", attempt, rnd, got, tt.max)
					}
				}
			}
		})
	}
}
