package registry_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

var errStore = errors.New("store: unreachable")

// downStore is a store that fails every operation.
type downStore struct{}

func (downStore) Load(context.Context, []string) ([]registry.SharedState, error) {
	return nil, errStore
}

func (downStore) Record(context.Context, string, registry.Settings, uint64, registry.Op) (registry.SharedState, error) {
	return registry.SharedState{}, errStore
}

func (downStore) Watch(context.Context, func(), func(string)) error { return errStore }

func TestStoreRejectsRatioRule(t *testing.T) {
	r := registry.New(registry.Config{Store: downStore{}})
	defer r.Close()
	if _, err := r.Breaker("ratio", registry.Settings{FailureRatio: 0.5}); !errors.Is(err, registry.ErrInvalidSettings) {
		t.Errorf("err = %v, want ErrInvalidSettings", err)
	}
	if _, ok := registry.New(registry.Config{}).StoreStats(); ok {
		t.Error("StoreStats of a registry without a store: ok = true, want false")
	}
}

func TestStoreDownDecidesLocally(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu       sync.Mutex
			statuses []registry.StoreStatus
		)
		r := registry.New(registry.Config{
			Store:          downStore{},
			ResyncInterval: time.Second,
			OnStoreStatus: func(s registry.StoreStatus) {
				mu.Lock()
				statuses = append(statuses, s)
				mu.Unlock()
			},
		})
		defer r.Close()
		b, err := r.Breaker("api", registry.Settings{FailureThreshold: 3, ResetTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		succeed(t, b, 5)
		fail(t, b, 3)
		if got := b.State(); got != registry.StateOpen {
			t.Fatalf("state = %v, want open (decided locally)", got)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := b.State(); got != registry.StateHalfOpen {
			t.Fatalf("state = %v, want half-open after the reset timeout", got)
		}
		succeed(t, b, 2)
		if got := b.State(); got != registry.StateClosed {
			t.Errorf("state = %v, want closed after 2 probes", got)
		}
		st, _ := r.StoreStats()
		if st.Healthy || st.Errors == 0 || st.LocalDecisions == 0 {
			t.Errorf("StoreStats = %+v, want unhealthy, errors and local decisions", st)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(statuses) != 1 || statuses[0].Healthy || !errors.Is(statuses[0].Err, errStore) {
			t.Errorf("statuses = %+v, want one unhealthy status with the store's error", statuses)
		}
	})
}

// logRecords is a slog handler that keeps every record.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// errorsWithStack counts the records at Error that carry a stack.
func (h *logRecords) errorsWithStack() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		r.Attrs(func(a slog.Attr) bool {
			if r.Level == slog.LevelError && a.Key == "stack" && a.Value.String() != "" {
				n++
			}
			return true
		})
	}
	return n
}

// TestStoreOnStatusPanics: a panic in OnStatus (run on the registry's own
// goroutine) is logged at Error with its stack; the process lives, the
// registry goes on deciding, and later statuses are still delivered.
func TestStoreOnStatusPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			h     logRecords
			mu    sync.Mutex
			calls int
		)
		st := &flakyStore{}
		st.down.Store(true)
		r := registry.New(registry.Config{
			Store:          st,
			ResyncInterval: time.Second,
			Logger:         slog.New(&h),
			OnStoreStatus: func(registry.StoreStatus) {
				mu.Lock()
				calls++
				mu.Unlock()
				panic("status hook")
			},
		})
		defer r.Close()
		b, err := r.Breaker("api", registry.Settings{FailureThreshold: 3})
		if err != nil {
			t.Fatal(err)
		}
		fail(t, b, 3)
		time.Sleep(time.Second)
		synctest.Wait()
		st.down.Store(false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if s, _ := r.StoreStats(); !s.Healthy {
			t.Errorf("StoreStats = %+v, want healthy again", s)
		}
		mu.Lock()
		if calls != 2 {
			t.Errorf("OnStatus calls = %d, want 2 (down, then up)", calls)
		}
		mu.Unlock()
		if got := h.errorsWithStack(); got != 2 {
			t.Errorf("error records with a stack = %d, want 2", got)
		}
	})
}

// flakyStore is an empty store that fails every operation while down is set.
type flakyStore struct{ down atomic.Bool }

func (s *flakyStore) Load(_ context.Context, names []string) ([]registry.SharedState, error) {
	if s.down.Load() {
		return nil, errStore
	}
	return make([]registry.SharedState, len(names)), nil
}

func (s *flakyStore) Record(context.Context, string, registry.Settings, uint64, registry.Op) (registry.SharedState, error) {
	if s.down.Load() {
		return registry.SharedState{}, errStore
	}
	return registry.SharedState{}, nil
}

func (s *flakyStore) Watch(ctx context.Context, ready func(), _ func(string)) error {
	if s.down.Load() {
		return errStore
	}
	ready()
	<-ctx.Done()
	return ctx.Err()
}

// stateStore is an in-memory store that returns, for every name, the state
// set for it (zero: a closed breaker the store has never seen).
type stateStore struct {
	mu     sync.Mutex
	states map[string]registry.SharedState
}

func (s *stateStore) set(name string, ss registry.SharedState) {
	s.mu.Lock()
	s.states[name] = ss
	s.mu.Unlock()
}

func (s *stateStore) Load(_ context.Context, names []string) ([]registry.SharedState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]registry.SharedState, len(names))
	for i, n := range names {
		out[i] = s.states[n]
	}
	return out, nil
}

func (s *stateStore) Record(_ context.Context, name string, _ registry.Settings, _ uint64, _ registry.Op) (registry.SharedState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.states[name], nil
}

func (s *stateStore) Watch(ctx context.Context, ready func(), _ func(string)) error {
	ready()
	<-ctx.Done()
	return ctx.Err()
}

// TestStoreBadStateHarmsThatBreakerAlone sweeps states a Store may return
// that no breaker may take: the breaker decides locally and is reported by
// name, the store stays healthy for the others, and the breaker is shared
// again once the store returns a sane state.
func TestStoreBadStateHarmsThatBreakerAlone(t *testing.T) {
	s := registry.Settings{FailureThreshold: 3, SuccessThreshold: 2, ResetTimeout: time.Minute}
	opened := time.Now()
	tests := []struct {
		name string
		ss   registry.SharedState
		want error
	}{
		{name: "state 7", ss: registry.SharedState{State: 7, Generation: 1}, want: registry.ErrBadRecord},
		{name: "negative failure streak", ss: registry.SharedState{Generation: 1, Failures: -1}, want: registry.ErrBadRecord},
		{name: "negative probes", ss: registry.SharedState{State: registry.StateHalfOpen, Generation: 1, Probes: -100, OpenedAt: opened}, want: registry.ErrBadRecord},
		{name: "probes above SuccessThreshold", ss: registry.SharedState{State: registry.StateHalfOpen, Generation: 1, Probes: 3, OpenedAt: opened}, want: registry.ErrBadRecord},
		{name: "successes above probes", ss: registry.SharedState{State: registry.StateHalfOpen, Generation: 1, Probes: 1, Successes: 2, OpenedAt: opened}, want: registry.ErrBadRecord},
		{name: "open with no opening time", ss: registry.SharedState{State: registry.StateOpen, Generation: 1}, want: registry.ErrBadRecord},
		{name: "other settings", ss: registry.SharedState{Generation: 1, Fingerprint: registry.Settings{FailureThreshold: 100}.Fingerprint()}, want: registry.ErrConflict},
		{name: "error from the store", ss: registry.SharedState{Err: errStore}, want: registry.ErrBadRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var (
					mu       sync.Mutex
					statuses []registry.StoreStatus
				)
				st := &stateStore{states: map[string]registry.SharedState{"bad": tt.ss}}
				r := registry.New(registry.Config{
					Store:          st,
					ResyncInterval: time.Second,
					OnStoreStatus: func(s registry.StoreStatus) {
						mu.Lock()
						statuses = append(statuses, s)
						mu.Unlock()
					},
				})
				defer r.Close()
				bad, err := r.Breaker("bad", s)
				if err != nil {
					t.Fatal(err)
				}
				good, err := r.Breaker("good", s)
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				fail(t, bad, 3)
				if got := bad.State(); got != registry.StateOpen {
					t.Errorf("bad breaker after 3 failures: state = %v, want open (decided locally)", got)
				}
				// The other breaker follows the store.
				st.set("good", registry.SharedState{State: registry.StateOpen, Generation: 1, OpenedAt: time.Now()})
				time.Sleep(time.Second)
				synctest.Wait()
				if got := good.State(); got != registry.StateOpen {
					t.Errorf("good breaker: state = %v, want open (the store's)", got)
				}
				if ss, _ := r.StoreStats(); !ss.Healthy || ss.BadRecords != 1 {
					t.Errorf("StoreStats = %+v, want healthy with 1 bad record", ss)
				}
				// Repaired.
				st.set("bad", registry.SharedState{})
				time.Sleep(time.Second)
				synctest.Wait()
				if got := bad.State(); got != registry.StateClosed {
					t.Errorf("bad breaker after the repair: state = %v, want closed (the store's)", got)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(statuses) != 2 {
					t.Fatalf("statuses = %+v, want 2 (bad, then sane)", statuses)
				}
				var ke *registry.KeyError
				if s0 := statuses[0]; s0.Name != "bad" || s0.Healthy || !errors.As(s0.Err, &ke) || !errors.Is(s0.Err, tt.want) {
					t.Errorf("first status = %+v, want unhealthy naming \"bad\" with a *KeyError matching %v", s0, tt.want)
				}
				if s1 := statuses[1]; s1.Name != "bad" || !s1.Healthy {
					t.Errorf("second status = %+v, want healthy naming \"bad\"", s1)
				}
			})
		})
	}
}
