package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// TestBreakerManualModes checks the registry's manual modes through the
// guide's stack: held open, the fallback serves every call without the
// endpoint; disabled, failures reach the caller's fallback but never open
// the breaker; back to normal, the breaker decides again.
func TestBreakerManualModes(t *testing.T) {
	reg := registry.New(registry.Config{})
	calls := 0
	down := errors.New("down")
	ep, err := middleware.Stack{
		Fallback:       middleware.FallbackConfig{Value: "cached"},
		CircuitBreaker: middleware.BreakerConfig{Name: "svc", FailureThreshold: 2},
		Registry:       reg, Observer: quiet,
	}.Apply(func(context.Context, any) (any, error) { calls++; return nil, down })
	if err != nil {
		t.Fatal(err)
	}
	b, _ := reg.Get("svc")

	if err := b.SetMode(registry.ModeHeldOpen); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if resp, err := ep(context.Background(), nil); resp != "cached" || err != nil {
			t.Fatalf("held open: %v, %v; want the fallback", resp, err)
		}
	}
	if calls != 0 {
		t.Errorf("held open: the endpoint saw %d calls, want none", calls)
	}

	if err := b.SetMode(registry.ModeDisabled); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_, _ = ep(context.Background(), nil)
	}
	if calls != 5 || b.State() != registry.StateClosed {
		t.Errorf("disabled: %d calls, breaker %v; want 5 calls and the breaker closed", calls, b.State())
	}

	if err := b.SetMode(registry.ModeNormal); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		_, _ = ep(context.Background(), nil)
	}
	if calls != 7 || b.State() != registry.StateOpen {
		t.Errorf("normal: %d calls, breaker %v; want 2 more calls, then open", calls, b.State())
	}
}
