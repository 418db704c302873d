package registry_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// TestUpdate changes a breaker's settings in place: it keeps its state,
// streak and open spell, takes the new thresholds for the next outcomes,
// and its listeners hear nothing but real changes of state.
func TestUpdate(t *testing.T) {
	tests := []struct {
		name  string
		store bool
	}{{name: "local"}, {name: "memory store", store: true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var heard []registry.StateChange
				cfg := registry.Config{Listeners: []func(registry.StateChange){func(c registry.StateChange) {
					mu.Lock()
					heard = append(heard, c)
					mu.Unlock()
				}}}
				if tt.store {
					cfg.Store, cfg.OnStoreStatus = registry.NewMemoryStore(), func(registry.StoreStatus) {}
				}
				r := registry.New(cfg)
				defer r.Close()
				old := registry.Settings{FailureThreshold: 5, SuccessThreshold: 2, ResetTimeout: 10 * time.Second}
				b, err := r.Breaker("svc", old)
				if err != nil {
					t.Fatal(err)
				}
				fail(t, b, 3)
				synctest.Wait()
				next := registry.Settings{FailureThreshold: 4, SuccessThreshold: 1, ResetTimeout: 20 * time.Second}
				if _, err := r.Breaker("svc", next); !errors.Is(err, registry.ErrConflict) {
					t.Fatalf("Breaker with other settings: err = %v, want ErrConflict", err)
				}
				ub, err := r.Update("svc", next)
				if err != nil || ub != b {
					t.Fatalf("Update = %p, %v, want the same breaker", ub, err)
				}
				if got := b.Snapshot(); got.ConsecutiveFailures != 3 || got.State != registry.StateClosed {
					t.Errorf("after Update: streak %d in %v, want 3 in closed (kept)", got.ConsecutiveFailures, got.State)
				}
				if got := b.Settings(); got != next {
					t.Errorf("Settings = %v, want %v", got, next)
				}
				if _, err := r.Breaker("svc", next); err != nil {
					t.Errorf("Breaker with the updated settings: %v", err)
				}
				fail(t, b, 1) // the 4th: the new FailureThreshold
				if got := b.State(); got != registry.StateOpen {
					t.Fatalf("after the 4th failure: state = %v, want open", got)
				}
				opened := time.Now()
				if _, err := r.Update("svc", registry.Settings{FailureThreshold: 4, SuccessThreshold: 1, ResetTimeout: 30 * time.Second}); err != nil {
					t.Fatal(err)
				}
				if got := b.State(); got != registry.StateOpen {
					t.Errorf("Update while open: state = %v, want open (kept)", got)
				}
				time.Sleep(20*time.Second - time.Nanosecond) // the spell opened with ResetTimeout 20s
				if got := b.State(); got != registry.StateOpen {
					t.Errorf("1ns before the spell's ResetTimeout: state = %v, want open", got)
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				if got := b.State(); got != registry.StateHalfOpen {
					t.Errorf("%v after opening: state = %v, want half-open (the spell keeps its ResetTimeout)", time.Since(opened), got)
				}
				mu.Lock()
				n := len(heard)
				mu.Unlock()
				if n != 2 {
					t.Errorf("changes heard = %d, want 2 (open, half-open): Update is no change", n)
				}
				if _, err := r.Update("svc", registry.Settings{ResetTimeout: 1}); !errors.Is(err, registry.ErrInvalidSettings) {
					t.Errorf("Update with bad settings: err = %v, want ErrInvalidSettings", err)
				}
			})
		})
	}
}
