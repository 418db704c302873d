package middleware_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// TestBreakerSlowCalls checks the slow-call rule: slow successes reach the
// caller as successes, and open the breaker once their share of the
// window's calls reaches SlowCallRatio (at least MinRequests calls); a slow
// half-open probe opens it again, fast probes close it.
func TestBreakerSlowCalls(t *testing.T) {
	for _, tt := range []struct {
		name     string
		lats     []time.Duration // one call each, in order
		wantOpen bool
	}{
		{"ten slow calls", repeat(10, 200*time.Millisecond), true},
		{"nine slow calls: below MinRequests", repeat(9, 200*time.Millisecond), false},
		{"twenty fast calls", repeat(20, 50*time.Millisecond), false},
		{"at the duration is slow", repeat(10, 100*time.Millisecond), true},
		{"4 slow of 10: below the ratio", append(repeat(4, 200*time.Millisecond), repeat(6, 10*time.Millisecond)...), false},
		{"6 slow of 12: at the ratio", append(append(repeat(4, 200*time.Millisecond), repeat(6, 10*time.Millisecond)...), repeat(2, 200*time.Millisecond)...), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := registry.New(registry.Config{})
				ep := middleware.CircuitBreaker("svc", middleware.BreakerConfig{
					SlowCallDuration: 100 * time.Millisecond, SlowCallRatio: 0.5, MinRequests: 10, Window: 10 * time.Second,
					ResetTimeout: time.Second, Registry: reg, Observer: quiet,
				})(func(ctx context.Context, req any) (any, error) {
					time.Sleep(req.(time.Duration))
					return "ok", nil
				})
				for i, d := range tt.lats {
					if resp, err := ep(context.Background(), d); resp != "ok" || err != nil {
						t.Fatalf("call %d: %v, %v; want the success", i, resp, err)
					}
				}
				b, _ := reg.Get("svc")
				if got := b.State() == registry.StateOpen; got != tt.wantOpen {
					t.Fatalf("state %v after the calls, want open: %v", b.State(), tt.wantOpen)
				}
				if !tt.wantOpen {
					return
				}
				if _, err := ep(context.Background(), time.Duration(0)); !errors.Is(err, middleware.ErrCircuitOpen) {
					t.Fatalf("open: %v, want ErrCircuitOpen", err)
				}
				// A slow probe opens it again; fast probes close it.
				time.Sleep(time.Second)
				_, _ = ep(context.Background(), 200*time.Millisecond)
				if b.State() != registry.StateOpen {
					t.Errorf("after a slow probe: %v, want open", b.State())
				}
				time.Sleep(time.Second)
				for range 2 {
					_, _ = ep(context.Background(), 10*time.Millisecond)
				}
				if b.State() != registry.StateClosed {
					t.Errorf("after two fast probes: %v, want closed", b.State())
				}
			})
		})
	}
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// TestBreakerSlowCallConfig checks the slow-call settings: both or
// neither, in range, and refused by a store-shared registry.
func TestBreakerSlowCallConfig(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   middleware.BreakerConfig
		field string
	}{
		{"ratio without duration", middleware.BreakerConfig{SlowCallRatio: 0.5}, "circuit_breaker.slow_call_duration"},
		{"duration without ratio", middleware.BreakerConfig{SlowCallDuration: time.Second}, "circuit_breaker.slow_call_ratio"},
		{"ratio above 1", middleware.BreakerConfig{SlowCallRatio: 2, SlowCallDuration: time.Second}, "circuit_breaker.slow_call_ratio"},
		{"negative duration", middleware.BreakerConfig{SlowCallRatio: 0.5, SlowCallDuration: -1}, "circuit_breaker.slow_call_duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ce *middleware.ConfigError
			if err := tt.cfg.Validate(); !errors.As(err, &ce) || ce.Path != tt.field {
				t.Errorf("Validate() = %v, want a ConfigError for %s", err, tt.field)
			}
		})
	}
	reg := registry.New(registry.Config{Store: registry.NewMemoryStore(), OnStoreStatus: func(registry.StoreStatus) {}})
	defer reg.Close()
	if _, err := reg.Breaker("svc", registry.Settings{SlowCallRatio: 0.5, SlowCallDuration: time.Second}); !errors.Is(err, registry.ErrInvalidSettings) {
		t.Errorf("a shared breaker with the slow-call rule: %v, want ErrInvalidSettings", err)
	}
}
