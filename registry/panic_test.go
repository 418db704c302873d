package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// errListener is what the panicking listener of TestListenerPanicSweep
// panics with.
var errListener = errors.New("listener panic")

// recordHandler is a slog.Handler that keeps the level of every record.
type recordHandler struct {
	mu     sync.Mutex
	levels []slog.Level
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels = append(h.levels, r.Level)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) errors() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.levels {
		if l == slog.LevelError {
			n++
		}
	}
	return n
}

// TestListenerPanicSweep: for every transition and every position of a
// panicking listener (three registry listeners, then one subscriber), every
// other listener hears the change, the breaker holds no probe slot for the
// panicking call (it admits a probe afterwards), and the panic goes on up on
// the caller's goroutine or, on the timer's goroutine, is logged at Error and
// the process lives.
func TestListenerPanicSweep(t *testing.T) {
	const listeners = 4 // 3 Config.Listeners, 1 Subscribe
	const reset = time.Second
	settings := registry.Settings{FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: reset}
	halfOpen := func(t *testing.T, b *registry.Breaker) {
		b.Trip()
		time.Sleep(reset)
		synctest.Wait() // the timer moves it
		if s := b.State(); s != registry.StateHalfOpen {
			t.Fatalf("setup: state = %v, want half-open", s)
		}
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, b *registry.Breaker)
		action   func(t *testing.T, b *registry.Breaker)
		from, to registry.State
		timer    bool // the change happens on the timer's goroutine
	}{
		{
			name: "closed to open by a call",
			action: func(t *testing.T, b *registry.Breaker) {
				tk, err := b.Allow()
				if err != nil {
					t.Fatal(err)
				}
				b.Done(tk, registry.Failure)
			},
			from: registry.StateClosed, to: registry.StateOpen,
		},
		{
			name:   "open to half-open by the timer",
			setup:  func(_ *testing.T, b *registry.Breaker) { b.Trip() },
			action: func(*testing.T, *registry.Breaker) { time.Sleep(reset + time.Nanosecond); synctest.Wait() },
			from:   registry.StateOpen, to: registry.StateHalfOpen,
			timer: true,
		},
		{
			name:  "open to half-open by a call",
			setup: func(_ *testing.T, b *registry.Breaker) { b.Trip() },
			action: func(t *testing.T, b *registry.Breaker) {
				// Sleep to exactly ResetTimeout: the call is the probe
				// that half-opens the breaker, unless the timer ran first
				// (then this call is a probe, and the listeners heard on
				// the timer's goroutine). The test is run until a call
				// made the change.
				time.Sleep(reset)
				if _, err := b.Allow(); err != nil {
					t.Fatalf("Allow() at ResetTimeout = %v, want a probe", err)
				}
			},
			from: registry.StateOpen, to: registry.StateHalfOpen,
		},
		{
			name:  "half-open to closed",
			setup: halfOpen,
			action: func(t *testing.T, b *registry.Breaker) {
				tk, err := b.Allow()
				if err != nil {
					t.Fatal(err)
				}
				b.Done(tk, registry.Success)
			},
			from: registry.StateHalfOpen, to: registry.StateClosed,
		},
		{
			name:  "half-open to open",
			setup: halfOpen,
			action: func(t *testing.T, b *registry.Breaker) {
				tk, err := b.Allow()
				if err != nil {
					t.Fatal(err)
				}
				b.Done(tk, registry.Failure)
			},
			from: registry.StateHalfOpen, to: registry.StateOpen,
		},
		{
			name:   "Reset",
			setup:  func(_ *testing.T, b *registry.Breaker) { b.Trip() },
			action: func(_ *testing.T, b *registry.Breaker) { b.Reset() },
			from:   registry.StateOpen, to: registry.StateClosed,
		},
		{
			name:   "Trip",
			action: func(_ *testing.T, b *registry.Breaker) { b.Trip() },
			from:   registry.StateClosed, to: registry.StateOpen,
		},
	}
	stores := []struct {
		name  string
		store registry.Store
	}{
		{name: "local"},
		{name: "shared, store down", store: downStore{}},
	}
	for _, st := range stores {
		for _, tt := range tests {
			if st.store != nil && tt.name == "open to half-open by a call" {
				continue // a shared breaker half-opens on its timer alone
			}
			for pos := range listeners {
				t.Run(fmt.Sprintf("%s/%s/listener %d panics", st.name, tt.name, pos), func(t *testing.T) {
					for attempt := 0; ; attempt++ {
						if attempt == 100 {
							t.Fatal("the call never made the change before the timer did")
						}
						if byCall := sweepOne(t, st.store, settings, pos, listeners, tt.setup, tt.action, tt.from, tt.to, tt.timer); byCall || tt.timer {
							break
						}
						if tt.name != "open to half-open by a call" {
							t.Fatal("the change was not made on the caller's goroutine")
						}
					}
				})
			}
		}
	}
}

// sweepOne runs one case of TestListenerPanicSweep in a bubble of its own
// and reports whether the panic came up on the caller's goroutine.
func sweepOne(t *testing.T, store registry.Store, settings registry.Settings, pos, listeners int,
	setup, action func(*testing.T, *registry.Breaker), from, to registry.State, timer bool) (raised bool) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		armed := false
		heard := make([][]registry.StateChange, listeners)
		listener := func(i int) func(registry.StateChange) {
			return func(c registry.StateChange) {
				mu.Lock()
				heard[i] = append(heard[i], c)
				boom := armed && i == pos && c.From == from && c.To == to
				if boom {
					armed = false
				}
				mu.Unlock()
				if boom {
					panic(errListener)
				}
			}
		}
		logs := &recordHandler{}
		cfg := registry.Config{Logger: slog.New(logs),
			Listeners: []func(registry.StateChange){listener(0), listener(1), listener(2)}}
		if store != nil {
			cfg.Store, cfg.ResyncInterval, cfg.OnStoreStatus = store, time.Hour, func(registry.StoreStatus) {}
		}
		r := registry.New(cfg)
		defer r.Close()
		b, err := r.Breaker("svc", settings)
		if err != nil {
			t.Fatal(err)
		}
		b.Subscribe("sub", listener(3))
		if setup != nil {
			setup(t, b)
		}
		mu.Lock()
		armed = true
		for i := range heard {
			heard[i] = nil
		}
		mu.Unlock()

		func() {
			defer func() {
				if v := recover(); v != nil {
					if v != errListener {
						panic(v)
					}
					raised = true
				}
			}()
			action(t, b)
		}()
		synctest.Wait()

		mu.Lock()
		fired := !armed
		mu.Unlock()
		if !fired {
			return // the change was made elsewhere (the timer won the race)
		}
		if timer && raised {
			t.Errorf("the timer's panic came up on the caller's goroutine")
		}
		if !timer && !raised {
			// The timer made the change: for "by a call", try again.
			if logs.errors() == 0 {
				t.Errorf("the panic was neither raised nor logged")
			}
			return
		}
		if timer && logs.errors() != 1 {
			t.Errorf("logged %d records at Error, want 1 for the timer's panic", logs.errors())
		}
		mu.Lock()
		for i, h := range heard {
			if len(h) == 0 || h[0].From != from || h[0].To != to {
				t.Errorf("listener %d heard %v, want %v>%v first", i, h, from, to)
			}
		}
		mu.Unlock()
		// No probe slot is held for the panicking call: the breaker admits
		// a probe (waiting out an open spell first).
		if b.State() == registry.StateClosed {
			b.Trip()
		}
		if b.State() == registry.StateOpen {
			time.Sleep(settings.ResetTimeout)
			synctest.Wait()
		}
		tk, err := b.Allow()
		if err != nil {
			t.Fatalf("after the panic: Allow() = %v, want a probe", err)
		}
		b.Done(tk, registry.Success)
		if s := b.State(); s != registry.StateClosed {
			t.Errorf("after a successful probe: state = %v, want closed", s)
		}
	})
	return raised
}
