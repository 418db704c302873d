package endpointtest_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// A test that leaves a breaker open passes in every run when each run takes
// a fresh registry through the Stack's Registry field: the same subtest body
// run three times, each in its own synctest bubble (as go test -count=3
// does), starts with a closed breaker each time. With the breaker in
// registry.Default, the second run finds it open from the first run and its
// first call is rejected.
func TestRegistryIsFreshForEachRun(t *testing.T) {
	for run := range 3 {
		t.Run(fmt.Sprint("run ", run+1), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := endpointtest.Registry(t)
				mw, err := middleware.Stack{
					Name:           "count3",
					Registry:       reg,
					Observer:       middleware.Discard,
					CircuitBreaker: middleware.BreakerConfig{FailureThreshold: 2, SuccessThreshold: 1, ResetTimeout: time.Second},
				}.Build()
				if err != nil {
					t.Fatal(err)
				}
				script := endpointtest.Script("refused", "refused", "ok", "refused", "refused")
				ep := mw(script.Endpoint())
				for i := range 2 {
					if _, err := ep(t.Context(), nil); !errclass.Connection(err) {
						t.Fatalf("call %d: err = %v, want the scripted connection error", i+1, err)
					}
				}
				if _, err := ep(t.Context(), nil); !errors.Is(err, middleware.ErrCircuitOpen) {
					t.Fatalf("call 3: err = %v, want ErrCircuitOpen", err)
				}
				time.Sleep(time.Second)
				if _, err := ep(t.Context(), nil); err != nil {
					t.Fatalf("probe after the reset timeout: err = %v, want nil", err)
				}
				for i := range 2 {
					if _, err := ep(t.Context(), nil); !errclass.Connection(err) {
						t.Fatalf("call %d after closing: err = %v, want the scripted connection error", i+1, err)
					}
				}
				if got := reg.States()["count3"].State; got != registry.StateOpen {
					t.Errorf("state = %v, want open: the run ends with the breaker open", got)
				}
				if _, ok := registry.Default.Get("count3"); ok {
					t.Errorf("registry.Default holds the breaker, want it in the test's registry only")
				}
			})
		})
	}
}

// Registry returns a new registry on every call.
func TestRegistryIsNew(t *testing.T) {
	a, b := endpointtest.Registry(t), endpointtest.Registry(t)
	if a == b || a == registry.Default || len(a.Names()) != 0 {
		t.Errorf("Registry = %p, %p (Default %p, names %v), want two new empty registries", a, b, registry.Default, a.Names())
	}
}
