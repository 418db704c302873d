package registry_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/resiliencekit/resilience/registry"
)

// TestStressGetOrCreate asks a registry for the same names from 64
// goroutines at once, each asking 10,000 times: every name gets exactly one
// breaker, every goroutine gets that breaker, and a name asked for with
// other settings is refused with ErrConflict, never created twice.
func TestStressGetOrCreate(t *testing.T) {
	const goroutines, calls, names = 64, 10_000, 16
	r := registry.New(registry.Config{})
	var created sync.Map // name -> *registry.Breaker seen first
	var conflicts, mismatched atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range calls {
				name := fmt.Sprintf("svc-%d", (g+i)%names)
				s := registry.Settings{}
				if i%101 == 100 {
					s.FailureThreshold = 9 // other settings: a conflict
				}
				b, err := r.Breaker(name, s)
				if s.FailureThreshold == 9 {
					if !errors.Is(err, registry.ErrConflict) {
						t.Errorf("Breaker(%s, other settings) err = %v, want ErrConflict", name, err)
					}
					conflicts.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("Breaker(%s) err = %v", name, err)
					continue
				}
				if first, loaded := created.LoadOrStore(name, b); loaded && first.(*registry.Breaker) != b {
					mismatched.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got := mismatched.Load(); got != 0 {
		t.Errorf("calls given a second breaker for a name = %d, want 0", got)
	}
	if got := len(r.Names()); got != names {
		t.Errorf("breakers = %d, want %d", got, names)
	}
	for _, name := range r.Names() {
		b, _ := r.Get(name)
		if first, _ := created.Load(name); first != b {
			t.Errorf("Get(%s) = %p, want the breaker every caller got", name, b)
		}
	}
	if conflicts.Load() == 0 {
		t.Errorf("no conflicting call was made")
	}
}

// TestStressMaxBreakersUnderContention creates distinct names from 64
// goroutines against a capped registry: exactly the cap is created, every
// other new name is refused with ErrTooManyBreakers.
func TestStressMaxBreakersUnderContention(t *testing.T) {
	const goroutines, perG, limit = 64, 100, 1000
	r := registry.New(registry.Config{MaxBreakers: limit})
	var made, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				_, err := r.Breaker(fmt.Sprintf("g%d-%d", g, i), registry.Settings{})
				switch {
				case err == nil:
					made.Add(1)
				case errors.Is(err, registry.ErrTooManyBreakers):
					refused.Add(1)
				default:
					t.Errorf("err = %v", err)
				}
			}
		})
	}
	wg.Wait()
	if got := made.Load(); got != limit {
		t.Errorf("created = %d, want %d", got, limit)
	}
	if got, want := refused.Load(), int64(goroutines*perG-limit); got != want {
		t.Errorf("refused = %d, want %d", got, want)
	}
	if got := len(r.Names()); got != limit {
		t.Errorf("names = %d, want %d", got, limit)
	}
}
