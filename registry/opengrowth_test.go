package registry_test

import (
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// spell trips or reopens b and returns the open spell it reports.
func spellOf(t *testing.T, b *registry.Breaker) time.Duration {
	t.Helper()
	_, err := b.Allow()
	e, ok := errors.AsType[*registry.CircuitOpenError](err)
	if !ok || e.State != registry.StateOpen {
		t.Fatalf("Allow err = %v, want a *CircuitOpenError of an open breaker", err)
	}
	return e.HalfOpenAt.Sub(e.OpenedAt)
}

// waitOutSpell checks that b stays open (to Allow, State and Snapshot) until
// 1ns before the end of its spell of length d and takes a probe at its end,
// and returns the probe's ticket.
func waitOutSpell(t *testing.T, b *registry.Breaker, d time.Duration) registry.Ticket {
	t.Helper()
	time.Sleep(d - 1)
	if got := b.State(); got != registry.StateOpen {
		t.Fatalf("State 1ns before the spell of %v ends = %v, want open", d, got)
	}
	if s := b.Snapshot(); s.State != registry.StateOpen || s.UntilHalfOpen != 1 {
		t.Fatalf("Snapshot 1ns before the spell of %v ends = %v with %v left, want open with 1ns left", d, s.State, s.UntilHalfOpen)
	}
	if _, err := b.Allow(); !errors.Is(err, registry.ErrOpen) {
		t.Fatalf("Allow 1ns before the spell of %v ends: err = %v, want ErrOpen", d, err)
	}
	time.Sleep(time.Nanosecond)
	tk, err := b.Allow()
	if err != nil {
		t.Fatalf("Allow at the end of the spell of %v: err = %v, want a probe", d, err)
	}
	return tk
}

// Issue 16, item 5: the open duration grows on repeated opens, up to
// MaxResetTimeout, and starts again from ResetTimeout after a close or a
// reset. Each spell ends exactly, though gobreaker's own timeout is the
// shortest spell's: State and Snapshot, asked after that and before the
// spell ends, must not half-open the breaker early.
func TestBreakerOpenGrowth(t *testing.T) {
	tests := []struct {
		name string
		s    registry.Settings
		want []time.Duration // spells of a trip followed by failed probes
	}{
		{"default backoff 2", registry.Settings{ResetTimeout: time.Second, MaxResetTimeout: 5 * time.Second},
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"backoff 3", registry.Settings{ResetTimeout: time.Second, MaxResetTimeout: time.Minute, ResetBackoff: 3},
			[]time.Duration{time.Second, 3 * time.Second, 9 * time.Second, 27 * time.Second, time.Minute, time.Minute}},
		{"backoff 1", registry.Settings{ResetTimeout: time.Second, MaxResetTimeout: time.Minute, ResetBackoff: 1},
			[]time.Duration{time.Second, time.Second, time.Second}},
		{"max equals reset", registry.Settings{ResetTimeout: time.Second, MaxResetTimeout: time.Second},
			[]time.Duration{time.Second, time.Second}},
		{"off", registry.Settings{ResetTimeout: time.Second},
			[]time.Duration{time.Second, time.Second, time.Second}},
		{"huge backoff caps at once", registry.Settings{ResetTimeout: 2, MaxResetTimeout: registry.MaxDuration, ResetBackoff: registry.MaxResetBackoff},
			[]time.Duration{2, 2000, 2000000, 2000000000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := registry.New(registry.Config{})
				defer r.Close()
				tt.s.SuccessThreshold = 1
				b, err := r.Breaker("svc", tt.s)
				if err != nil {
					t.Fatal(err)
				}
				b.Trip()
				for i, want := range tt.want {
					if got := spellOf(t, b); got != want {
						t.Fatalf("spell %d = %v, want %v", i+1, got, want)
					}
					tk := waitOutSpell(t, b, want)
					if i < len(tt.want)-1 {
						b.Done(tk, registry.Failure) // the probe fails: open again
						continue
					}
					b.Done(tk, registry.Success) // the probe succeeds: closed
				}
				if got := b.State(); got != registry.StateClosed {
					t.Fatalf("state after a good probe = %v, want closed", got)
				}
				b.Trip()
				if got := spellOf(t, b); got != tt.want[0] {
					t.Errorf("first spell after a close = %v, want %v", got, tt.want[0])
				}
				// A trip while half-open is a repeated open too; a reset
				// starts again.
				waitOutSpell(t, b, tt.want[0]) // the probe stays in flight
				b.Trip()
				if len(tt.want) > 1 {
					if got := spellOf(t, b); got != tt.want[1] {
						t.Errorf("spell after a trip while half-open = %v, want %v", got, tt.want[1])
					}
				}
				b.Reset()
				b.Trip()
				if got := spellOf(t, b); got != tt.want[0] {
					t.Errorf("first spell after a reset = %v, want %v", got, tt.want[0])
				}
			})
		})
	}
}

// Issue 16, item 5: a jittered spell is shortened by a random share of up
// to ResetJitter of its length, drawn afresh for each spell, and still ends
// exactly at the HalfOpenAt it reports; with growth, each level's spell
// lies in its own range.
func TestBreakerOpenJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := registry.New(registry.Config{})
		defer r.Close()
		const j = 0.5
		b, err := r.Breaker("svc", registry.Settings{ResetTimeout: 10 * time.Second, MaxResetTimeout: 40 * time.Second, ResetJitter: j, SuccessThreshold: 1})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[time.Duration]bool{}
		for range 20 {
			b.Reset()
			b.Trip()
			for _, d := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second} {
				got := spellOf(t, b)
				if lo := time.Duration(float64(d) * (1 - j)); got < lo || got > d {
					t.Fatalf("spell at level %v = %v, want within [%v, %v]", d, got, lo, d)
				}
				seen[got] = true
				b.Done(waitOutSpell(t, b, got), registry.Failure)
			}
		}
		if len(seen) < 40 {
			t.Errorf("80 jittered spells took %d distinct lengths, want them drawn afresh (at least 40)", len(seen))
		}
	})
}

// The growing and jittered open durations are local: a registry with a
// store refuses them, naming the field, as it refuses the windowed rules.
func TestBreakerOpenGrowthNotShared(t *testing.T) {
	r := registry.New(registry.Config{Store: registry.NewMemoryStore()})
	defer r.Close()
	for _, s := range []registry.Settings{{MaxResetTimeout: 2 * time.Minute}, {ResetJitter: 0.1}} {
		if _, err := r.Breaker("svc", s); !errors.Is(err, registry.ErrInvalidSettings) {
			t.Errorf("Breaker(%v) with a store: err = %v, want ErrInvalidSettings", s, err)
		}
	}
}

func TestBreakerOpenGrowthValidate(t *testing.T) {
	tests := []struct {
		name  string
		s     registry.Settings
		field string // "" for valid
	}{
		{"max below reset", registry.Settings{ResetTimeout: time.Minute, MaxResetTimeout: time.Second}, "MaxResetTimeout"},
		{"max below default reset", registry.Settings{MaxResetTimeout: time.Second}, "MaxResetTimeout"},
		{"max negative", registry.Settings{MaxResetTimeout: -1}, "MaxResetTimeout"},
		{"max over MaxDuration", registry.Settings{MaxResetTimeout: registry.MaxDuration + 1}, "MaxResetTimeout"},
		{"backoff without max", registry.Settings{ResetBackoff: 2}, "ResetBackoff"},
		{"backoff below 1", registry.Settings{MaxResetTimeout: time.Hour, ResetBackoff: 0.5}, "ResetBackoff"},
		{"backoff NaN", registry.Settings{MaxResetTimeout: time.Hour, ResetBackoff: math.NaN()}, "ResetBackoff"},
		{"backoff over max", registry.Settings{MaxResetTimeout: time.Hour, ResetBackoff: registry.MaxResetBackoff + 1}, "ResetBackoff"},
		{"jitter 1", registry.Settings{ResetJitter: 1}, "ResetJitter"},
		{"jitter negative", registry.Settings{ResetJitter: -0.1}, "ResetJitter"},
		{"jitter NaN", registry.Settings{ResetJitter: math.NaN()}, "ResetJitter"},
		{"growth and jitter", registry.Settings{MaxResetTimeout: time.Hour, ResetBackoff: 1.5, ResetJitter: 0.99}, ""},
		{"max equals default reset", registry.Settings{MaxResetTimeout: registry.DefaultResetTimeout}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", tt.s, err)
				}
				return
			}
			e, ok := errors.AsType[*registry.SettingsError](err)
			if !ok || e.Field != tt.field {
				t.Errorf("Validate(%v) = %v, want a *SettingsError naming %s", tt.s, err, tt.field)
			}
		})
	}
}
