package registry_test

import (
	"errors"
	"testing"

	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/registry"
)

func TestLimiter(t *testing.T) {
	reg := registry.New(registry.Config{MaxBreakers: 2})
	a, err := reg.Limiter("api", 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Limiter("api", 10, 5)
	if err != nil || a != b {
		t.Errorf("same name and settings: got %p, %v; want the same limiter %p", b, err, a)
	}
	if _, err := reg.Limiter("api", 10, 6); !errors.Is(err, registry.ErrLimiterConflict) {
		t.Errorf("other burst: err = %v, want ErrLimiterConflict", err)
	}
	if _, err := reg.Limiter("", 1, 1); !errors.Is(err, registry.ErrInvalidName) {
		t.Errorf("empty name: err = %v, want ErrInvalidName", err)
	}
	if _, err := reg.Breaker("db", registry.Settings{}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Limiter("third", rate.Inf, 1); !errors.Is(err, registry.ErrTooManyBreakers) {
		t.Errorf("past the cap: err = %v, want ErrTooManyBreakers", err)
	}
}
