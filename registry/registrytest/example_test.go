package registrytest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/resiliencekit/resilience/registry"
	"github.com/resiliencekit/resilience/registry/registrytest"
)

// A Store's own test runs the suite on it; here, on the in-memory store,
// as three replicas.
func TestRun(t *testing.T) {
	registrytest.Run(t, registrytest.Harness{
		NewStore: func(*testing.T) registry.Store { return registry.NewMemoryStore() },
		Replicas: 3,
	})
}

// Flaky puts an outage in front of any store: while it is down, every
// operation fails, and a registry on it decides locally.
func ExampleFlaky() {
	st := registrytest.NewFlaky(registry.NewMemoryStore())
	reg := registry.New(registry.Config{Store: st})
	defer reg.Close()
	b, _ := reg.Breaker("api", registry.Settings{FailureThreshold: 1})

	st.SetDown(true)
	_, err := st.Load(context.Background(), []string{"api"})
	fmt.Println(errors.Is(err, registrytest.ErrDown))
	if tk, err := b.Allow(); err == nil {
		b.Done(tk, registry.Failure) // recorded locally
	}
	fmt.Println(b.State())
	stats, _ := reg.StoreStats()
	fmt.Println("healthy:", stats.Healthy)
	// Output:
	// true
	// open
	// healthy: false
}
