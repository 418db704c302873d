package health_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// TestBreakerCheck: an open breaker fails the check and names it; a
// half-open one degrades it to a warning; closed passes.
func TestBreakerCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New(registry.Config{})
		api, err := reg.Breaker("embedding_api", registry.Settings{ResetTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Breaker("chromadb", registry.Settings{}); err != nil {
			t.Fatal(err)
		}
		c := health.NewChecker(health.Config{})
		if err := c.Register(health.Check{Name: "circuits", Func: health.BreakerCheck(reg)}); err != nil {
			t.Fatal(err)
		}
		if err := c.Register(health.Check{Name: "chromadb circuit", Func: health.BreakerCheck(reg, "chromadb")}); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()

		st, _ := c.Check(ctx, "circuits")
		if st.Result != health.Pass {
			t.Errorf("closed: result = %s, want pass (%v)", st.Result, st.Error)
		}

		api.Trip()
		st, _ = c.Check(ctx, "circuits")
		if st.Result != health.Fail || !errors.Is(st.Error, registry.ErrOpen) || !errors.Is(st.Error, middleware.ErrCircuitOpen) || !strings.Contains(st.Error.Error(), "embedding_api") {
			t.Errorf("open: result = %s, error = %v, want fail matching registry.ErrOpen and middleware.ErrCircuitOpen, naming embedding_api", st.Result, st.Error)
		}
		if st, _ := c.Check(ctx, "chromadb circuit"); st.Result != health.Pass {
			t.Errorf("check of chromadb only: result = %s, want pass", st.Result)
		}

		time.Sleep(time.Minute) // the reset timeout: half-open
		st, _ = c.Check(ctx, "circuits")
		if st.Result != health.Warn || !st.Healthy || !errors.Is(st.Error, health.ErrDegraded) {
			t.Errorf("half-open: result = %s, healthy = %t, error = %v, want a healthy warning", st.Result, st.Healthy, st.Error)
		}

		api.Reset()
		if st, _ := c.Check(ctx, "circuits"); st.Result != health.Pass {
			t.Errorf("after reset: result = %s, want pass", st.Result)
		}
	})
}

// TestCheckTimeoutIsVerdictInside: a check's own timeout is a deadline of
// the library's own, so a circuit breaker the check calls through counts a
// call it cut as a failure, as it would a Timeout layer's (with a plain
// context deadline the breaker took it for a caller who left, and stayed
// closed whatever the dependency did). The run is shared and detached from
// its callers, so a caller leaving early changes nothing.
func TestCheckTimeoutIsVerdictInside(t *testing.T) {
	tests := []struct {
		name   string
		caller time.Duration // the caller's own deadline; 0: none
	}{
		{name: "caller waits"},
		{name: "caller leaves first", caller: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := registry.New(registry.Config{})
				hang := func(ctx context.Context, _ any) (any, error) { <-ctx.Done(); return nil, context.Cause(ctx) }
				call := middleware.CircuitBreaker("upstream", middleware.BreakerConfig{FailureThreshold: 1, Registry: reg, Observer: middleware.Discard})(hang)
				c := health.NewChecker(health.Config{})
				c.MustRegister(health.Check{Name: "upstream", Timeout: time.Second, Func: func(ctx context.Context) error {
					_, err := call(ctx, nil)
					return err
				}})
				ctx := t.Context()
				if tt.caller > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.caller)
					defer cancel()
				}
				c.Check(ctx, "upstream")
				time.Sleep(2 * time.Second) // the run ends at its timeout either way
				synctest.Wait()
				if got, want := reg.States()["upstream"].State, registry.StateOpen; got != want {
					t.Errorf("breaker state = %v, want %v", got, want)
				}
			})
		})
	}
}
