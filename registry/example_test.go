package registry_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// Allow and Done guard any call, not only go-kit endpoints: ask before the
// call, report the outcome after it.
func ExampleBreaker_Allow() {
	reg := registry.New(registry.Config{})
	b, err := reg.Breaker("db", registry.Settings{FailureThreshold: 2})
	if err != nil {
		panic(err)
	}
	query := func(fail bool) error {
		t, err := b.Allow()
		if err != nil {
			return err // rejected: the query is not made
		}
		if fail {
			b.Done(t, registry.Failure)
			return errors.New("db: connection reset")
		}
		b.Done(t, registry.Success)
		return nil
	}
	fmt.Println(query(true))
	fmt.Println(query(true))
	fmt.Println(query(false))
	b.Reset()
	// Output:
	// db: connection reset
	// db: connection reset
	// registry: circuit "db" is open
}

// A listener hears every state change once, in order, outside every lock:
// it may call back into the registry.
func ExampleConfig_listeners() {
	var reg *registry.Registry
	reg = registry.New(registry.Config{
		Listeners: []func(registry.StateChange){func(c registry.StateChange) {
			fmt.Printf("%s: %s -> %s (open now: %d)\n", c.Name, c.From, c.To, countOpen(reg))
		}},
	})
	b, _ := reg.Breaker("search", registry.Settings{ResetTimeout: time.Minute})
	b.Trip()
	b.Reset()
	// Output:
	// search: closed -> open (open now: 1)
	// search: open -> closed (open now: 0)
}

func countOpen(reg *registry.Registry) int {
	n := 0
	for _, s := range reg.States() {
		if s.State == registry.StateOpen {
			n++
		}
	}
	return n
}

// The same name with other settings is an error that names both, not a
// silent first-wins.
func ExampleRegistry_Breaker_conflict() {
	reg := registry.New(registry.Config{})
	_, _ = reg.Breaker("chromadb", registry.Settings{FailureThreshold: 5})
	_, err := reg.Breaker("chromadb", registry.Settings{FailureThreshold: 10})
	fmt.Println(errors.Is(err, registry.ErrConflict))
	fmt.Println(err)
	// Output:
	// true
	// registry: breaker settings conflict: breaker "chromadb" exists with settings {failure_threshold=5 success_threshold=2 reset_timeout=1m0s}, asked for {failure_threshold=10 success_threshold=2 reset_timeout=1m0s}
}
