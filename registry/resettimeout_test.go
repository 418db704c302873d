package registry_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// Regression: ResetTimeout 1ns half-opened at 2ns (gobreaker's timeout was
// max(ResetTimeout-1, 1)). Every accepted value is now exact: a call 1ns
// before ResetTimeout is rejected, a call at ResetTimeout is a probe; 1ns,
// which gobreaker cannot make exact, is refused naming the field.
func TestResetTimeoutExact(t *testing.T) {
	tests := []time.Duration{2, 3, 5*time.Millisecond - 1, 5 * time.Millisecond, 5*time.Millisecond + 1, time.Second, time.Minute}
	for _, rt := range tests {
		t.Run(rt.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := registry.New(registry.Config{})
				b, err := r.Breaker("svc", registry.Settings{ResetTimeout: rt, SuccessThreshold: 1})
				if err != nil {
					t.Fatal(err)
				}
				b.Trip()
				start := time.Now()
				time.Sleep(rt - 1)
				if _, err := b.Allow(); !errors.Is(err, registry.ErrOpen) {
					t.Fatalf("at ResetTimeout-1ns: Allow err = %v, want ErrOpen", err)
				}
				time.Sleep(time.Nanosecond)
				tk, err := b.Allow()
				if err != nil {
					t.Fatalf("at ResetTimeout (%v after the trip): Allow err = %v, want a probe", time.Since(start), err)
				}
				b.Done(tk, registry.Success)
				if got := b.State(); got != registry.StateClosed {
					t.Errorf("state after one successful probe = %v, want closed", got)
				}
				r.Close()
			})
		})
	}
	t.Run("1ns refused", func(t *testing.T) {
		err := registry.Settings{ResetTimeout: 1}.Validate()
		e, ok := errors.AsType[*registry.SettingsError](err)
		if !ok || e.Field != "ResetTimeout" {
			t.Errorf("Validate(ResetTimeout 1ns) = %v, want a *SettingsError naming ResetTimeout", err)
		}
	})
}
