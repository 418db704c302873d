package registry_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// call makes one call through b that ends with o, and reports whether the
// breaker let it through.
func call(b *registry.Breaker, o registry.Outcome) bool {
	t, err := b.Allow()
	if err != nil {
		return false
	}
	b.Done(t, o)
	return true
}

func TestBreakerModes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes []registry.StateChange
		reg := registry.New(registry.Config{Listeners: []func(registry.StateChange){func(c registry.StateChange) { changes = append(changes, c) }}})
		b, err := reg.Breaker("svc", registry.Settings{FailureThreshold: 3, ResetTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}

		// Held open: every call rejected, with no half-open time, for as
		// long as it is held, past the reset timeout; nothing recorded.
		if err := b.SetMode(registry.ModeHeldOpen); err != nil {
			t.Fatal(err)
		}
		_, err = b.Allow()
		var coe *registry.CircuitOpenError
		if !errors.As(err, &coe) || !errors.Is(err, registry.ErrOpen) || !coe.HalfOpenAt.IsZero() {
			t.Fatalf("held open: Allow = %v, want a CircuitOpenError with no HalfOpenAt", err)
		}
		time.Sleep(5 * time.Second)
		if call(b, registry.Success) {
			t.Fatal("held open: a call went through after the reset timeout")
		}
		if s := b.Snapshot(); s.Mode != registry.ModeHeldOpen || s.State != registry.StateClosed || s.Requests != 0 {
			t.Errorf("held open: snapshot %+v, want mode held-open, the machine closed and untouched", s)
		}

		// Disabled: every call through, failures unrecorded.
		if err := b.SetMode(registry.ModeDisabled); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if !call(b, registry.Failure) {
				t.Fatal("disabled: a call was rejected")
			}
		}
		if s := b.Snapshot(); s.State != registry.StateClosed || s.ConsecutiveFailures != 0 {
			t.Errorf("disabled: %v with %d failures, want closed with none recorded", s.State, s.ConsecutiveFailures)
		}

		// Metrics only: failures counted and the breaker opens (a change
		// reported), but calls still go through.
		if err := b.SetMode(registry.ModeMetricsOnly); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			call(b, registry.Failure)
		}
		if b.State() != registry.StateOpen || len(changes) != 1 || changes[0].To != registry.StateOpen {
			t.Fatalf("metrics only: state %v, changes %v; want open after 3 failures, reported", b.State(), changes)
		}
		for range 5 {
			if !call(b, registry.Failure) {
				t.Fatal("metrics only: an open breaker rejected a call")
			}
		}

		// Normal again: the open breaker rejects, then half-opens on time.
		if err := b.SetMode(registry.ModeNormal); err != nil {
			t.Fatal(err)
		}
		if call(b, registry.Success) {
			t.Error("normal: an open breaker let a call through")
		}
		time.Sleep(time.Second)
		first := call(b, registry.Success)
		second := call(b, registry.Success)
		if !first || !second || b.State() != registry.StateClosed {
			t.Errorf("normal: state %v after the reset timeout and two probes, want closed", b.State())
		}
		if got := b.Mode(); got != registry.ModeNormal {
			t.Errorf("Mode() = %v", got)
		}
		if err := b.SetMode(registry.Mode(9)); !errors.Is(err, registry.ErrInvalidMode) {
			t.Errorf("SetMode(9) = %v, want ErrInvalidMode", err)
		}
	})
}

// TestBreakerModeShared checks that a store-shared breaker refuses a manual
// mode rather than holding it on one replica only.
func TestBreakerModeShared(t *testing.T) {
	reg := registry.New(registry.Config{Store: registry.NewMemoryStore(), OnStoreStatus: func(registry.StoreStatus) {}})
	defer reg.Close()
	b, err := reg.Breaker("svc", registry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetMode(registry.ModeHeldOpen); !errors.Is(err, registry.ErrModeShared) {
		t.Errorf("SetMode on a shared breaker = %v, want ErrModeShared", err)
	}
	if _, err := b.AllowContext(context.Background()); err != nil {
		t.Errorf("after the refused SetMode: %v, want the call admitted", err)
	}
}
