package registry_test

import (
	"fmt"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// Two registries on one MemoryStore share their breakers of one name, as
// two replicas on one Redis do: failures count for both, and a breaker
// opened through one is open in the other.
func ExampleMemoryStore() {
	st := registry.NewMemoryStore()
	a := registry.New(registry.Config{Store: st})
	b := registry.New(registry.Config{Store: st})
	defer a.Close()
	defer b.Close()
	s := registry.Settings{FailureThreshold: 2, ResetTimeout: time.Minute}
	ba, _ := a.Breaker("payments", s)
	bb, _ := b.Breaker("payments", s)

	for _, br := range []*registry.Breaker{ba, bb} { // one failure each
		if tk, err := br.Allow(); err == nil {
			br.Done(tk, registry.Failure)
		}
	}
	waitFor(func() bool { return ba.State() == registry.StateOpen && bb.State() == registry.StateOpen })
	fmt.Println(ba.State(), bb.State())

	bb.Reset()
	waitFor(func() bool { return ba.State() == registry.StateClosed })
	fmt.Println(ba.State(), bb.State())
	// Output:
	// open open
	// closed closed
}

// waitFor polls cond for up to a second: the change reaches the other
// registry through the store's Watch, on that registry's goroutine.
func waitFor(cond func() bool) {
	for deadline := time.Now().Add(time.Second); !cond() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}
