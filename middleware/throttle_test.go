package middleware_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

var errOverloaded = errors.New("server: queue full")

var throttleQuiet = middleware.ObserverFunc(func(context.Context, middleware.Event) {})

// TestThrottleFormula fills the window with accepts and failures (with a
// draw that never rejects), then probes with a draw of 0, which rejects
// whenever the probability is above 0, and checks the probability exactly.
func TestThrottleFormula(t *testing.T) {
	tests := []struct {
		name          string
		k             float64
		min           int
		accepts, fail int
		wantP         float64
	}{
		{name: "empty", k: 2, wantP: 0},
		{name: "all_accepted", k: 2, accepts: 10, wantP: 0},
		{name: "all_failed", k: 2, fail: 9, wantP: 9.0 / 10},
		{name: "k2_half", k: 2, accepts: 10, fail: 30, wantP: (40.0 - 20) / 41},
		{name: "k2_balance", k: 2, accepts: 10, fail: 10, wantP: 0},
		{name: "k1", k: 1, accepts: 10, fail: 10, wantP: (20.0 - 10) / 21},
		{name: "default_k", accepts: 1, fail: 5, wantP: (6.0 - 2) / 7},
		{name: "under_min", k: 2, min: 10, fail: 9, wantP: 0},
		{name: "at_min", k: 2, min: 10, fail: 10, wantP: 10.0 / 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fail := false
				draw := 1.0
				ep := middleware.Throttle(middleware.ThrottleConfig{
					K: tt.k, MinRequests: tt.min, Observer: throttleQuiet,
					Rand: func() float64 { return draw },
				})(func(context.Context, any) (any, error) {
					if fail {
						return nil, errOverloaded
					}
					return "ok", nil
				})
				ctx := context.Background()
				for range tt.accepts {
					if _, err := ep(ctx, nil); err != nil {
						t.Fatalf("fill accept: %v", err)
					}
				}
				fail = true
				for range tt.fail {
					if _, err := ep(ctx, nil); !errors.Is(err, errOverloaded) {
						t.Fatalf("fill fail: %v", err)
					}
				}
				draw = 0
				_, err := ep(ctx, nil)
				if tt.wantP == 0 {
					if !errors.Is(err, errOverloaded) {
						t.Fatalf("probe err = %v, want the endpoint's error (not throttled)", err)
					}
					return
				}
				te, ok := errors.AsType[*middleware.ThrottleError](err)
				if !ok || !errors.Is(err, middleware.ErrThrottled) {
					t.Fatalf("probe err = %v, want ErrThrottled", err)
				}
				if te.Probability != tt.wantP {
					t.Fatalf("probability = %v, want %v", te.Probability, tt.wantP)
				}
			})
		})
	}
}

// TestThrottleWindowExpiry: failures age out of the rolling window.
func TestThrottleWindowExpiry(t *testing.T) {
	tests := []struct {
		name      string
		wait      time.Duration
		wantThrot bool
	}{
		{name: "inside_window", wait: 30 * time.Second, wantThrot: true},
		{name: "after_window", wait: 61 * time.Second, wantThrot: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				draw := 1.0
				ep := middleware.Throttle(middleware.ThrottleConfig{
					Observer: throttleQuiet, Rand: func() float64 { return draw },
				})(func(context.Context, any) (any, error) { return nil, errOverloaded })
				for range 20 {
					_, _ = ep(context.Background(), nil)
				}
				time.Sleep(tt.wait)
				draw = 0
				_, err := ep(context.Background(), nil)
				if got := errors.Is(err, middleware.ErrThrottled); got != tt.wantThrot {
					t.Fatalf("throttled = %v (%v), want %v", got, err, tt.wantThrot)
				}
			})
		})
	}
}

// TestThrottleCallerGone: calls whose caller has gone are not counted.
func TestThrottleCallerGone(t *testing.T) {
	tests := []struct {
		name      string
		cancel    bool
		wantThrot bool
	}{
		{name: "caller_gone", cancel: true, wantThrot: false},
		{name: "server_failure", cancel: false, wantThrot: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				draw := 1.0
				ep := middleware.Throttle(middleware.ThrottleConfig{
					Observer: throttleQuiet, Rand: func() float64 { return draw },
				})(func(ctx context.Context, _ any) (any, error) {
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					return nil, errOverloaded
				})
				ctx, cancel := context.WithCancel(context.Background())
				if tt.cancel {
					cancel()
				}
				for range 20 {
					_, _ = ep(ctx, nil)
				}
				cancel()
				draw = 0
				_, err := ep(context.Background(), nil)
				if got := errors.Is(err, middleware.ErrThrottled); got != tt.wantThrot {
					t.Fatalf("throttled = %v (%v), want %v", got, err, tt.wantThrot)
				}
			})
		})
	}
}

// TestThrottleConfigValidate: each bad field is a *ConfigError naming it,
// and Throttle panics with it rather than defaulting.
func TestThrottleConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   middleware.ThrottleConfig
		field string // "" means valid
	}{
		{name: "zero", cfg: middleware.ThrottleConfig{}},
		{name: "k_below_1", cfg: middleware.ThrottleConfig{K: 0.5}, field: "throttle.k"},
		{name: "k_nan", cfg: middleware.ThrottleConfig{K: math.NaN()}, field: "throttle.k"},
		{name: "window_negative", cfg: middleware.ThrottleConfig{Window: -time.Second}, field: "throttle.window"},
		{name: "window_tiny", cfg: middleware.ThrottleConfig{Window: time.Millisecond}, field: "throttle.window"},
		{name: "min_negative", cfg: middleware.ThrottleConfig{MinRequests: -1}, field: "throttle.min_requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, middleware.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %s", err, tt.field)
			}
			defer func() {
				if r := recover(); r == nil {
					t.Fatal("Throttle did not panic on a bad config")
				}
			}()
			middleware.Throttle(tt.cfg)
		})
	}
}
