package registry_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// Update takes new settings in place: the same *Breaker, its state and its
// failure streak kept, the new thresholds in force.
func TestUpdate(t *testing.T) {
	t.Run("closed keeps the streak and takes the new threshold", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			reg := registry.New(registry.Config{})
			b, _ := reg.Breaker("b", registry.Settings{FailureThreshold: 3})
			fail(t, b, 2)
			got, err := reg.Update("b", registry.Settings{FailureThreshold: 5, ResetTimeout: time.Minute})
			if err != nil || got != b {
				t.Fatalf("Update = %p, %v, want the same breaker %p", got, err, b)
			}
			if got := b.Snapshot().ConsecutiveFailures; got != 2 {
				t.Errorf("streak = %d, want 2", got)
			}
			fail(t, b, 2) // 4 < 5
			if got := b.State(); got != registry.StateClosed {
				t.Fatalf("after 4 failures: state = %v, want closed", got)
			}
			fail(t, b, 1)
			if got := b.State(); got != registry.StateOpen {
				t.Fatalf("after 5 failures: state = %v, want open", got)
			}
			if _, err := reg.Breaker("b", registry.Settings{FailureThreshold: 5, ResetTimeout: time.Minute}); err != nil {
				t.Errorf("Breaker with the new settings: %v", err)
			}
			if _, err := reg.Breaker("b", registry.Settings{FailureThreshold: 3}); !errors.Is(err, registry.ErrConflict) {
				t.Errorf("Breaker with the old settings: %v, want ErrConflict", err)
			}
		})
	})
	t.Run("open stays open", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			reg := registry.New(registry.Config{})
			b, _ := reg.Breaker("b", registry.Settings{FailureThreshold: 1, ResetTimeout: 10 * time.Second})
			fail(t, b, 1)
			start := time.Now()
			if _, err := reg.Update("b", registry.Settings{FailureThreshold: 9, ResetTimeout: 20 * time.Second}); err != nil {
				t.Fatal(err)
			}
			if got := b.State(); got != registry.StateOpen {
				t.Fatalf("state = %v, want open", got)
			}
			time.Sleep(10 * time.Second) // the spell ends on the old timeout
			synctest.Wait()
			if got := b.State(); got != registry.StateHalfOpen {
				t.Fatalf("after %v: state = %v, want half-open", time.Since(start), got)
			}
			succeed(t, b, 2)
			if got := b.State(); got != registry.StateClosed {
				t.Fatalf("state = %v, want closed", got)
			}
			fail(t, b, 8)
			if got := b.State(); got != registry.StateClosed {
				t.Fatalf("8 failures: state = %v, want closed (threshold 9)", got)
			}
			fail(t, b, 1)
			start = time.Now()
			time.Sleep(20*time.Second - time.Nanosecond) // the new timeout, from the next spell on
			if got := b.State(); got != registry.StateOpen {
				t.Fatalf("after %v: state = %v, want open", time.Since(start), got)
			}
			time.Sleep(time.Nanosecond)
			if got := b.State(); got != registry.StateHalfOpen {
				t.Fatalf("after %v: state = %v, want half-open", time.Since(start), got)
			}
		})
	})
	t.Run("new name is created", func(t *testing.T) {
		reg := registry.New(registry.Config{})
		b, err := reg.Update("n", registry.Settings{})
		if err != nil || b == nil {
			t.Fatalf("Update = %v, %v", b, err)
		}
	})
	t.Run("invalid settings change nothing", func(t *testing.T) {
		reg := registry.New(registry.Config{})
		b, _ := reg.Breaker("b", registry.Settings{FailureThreshold: 3})
		if _, err := reg.Update("b", registry.Settings{FailureThreshold: -1}); !errors.Is(err, registry.ErrInvalidSettings) {
			t.Errorf("Update = %v, want ErrInvalidSettings", err)
		}
		if got := b.Settings().FailureThreshold; got != 3 {
			t.Errorf("FailureThreshold = %d, want 3", got)
		}
	})
}
