package registry_test

import (
	"context"
	"errors"
	"sync"
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
	r := registry.New(registry.WithStore(downStore{}, registry.StoreConfig{}))
	defer r.Close()
	if _, err := r.Breaker("ratio", registry.Settings{FailureRatio: 0.5}); !errors.Is(err, registry.ErrInvalidSettings) {
		t.Errorf("err = %v, want ErrInvalidSettings", err)
	}
	if _, ok := registry.New().StoreStats(); ok {
		t.Error("StoreStats of a registry without a store: ok = true, want false")
	}
}

func TestStoreDownDecidesLocally(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu       sync.Mutex
			statuses []registry.StoreStatus
		)
		r := registry.New(registry.WithStore(downStore{}, registry.StoreConfig{
			ResyncInterval: time.Second,
			OnStatus: func(s registry.StoreStatus) {
				mu.Lock()
				statuses = append(statuses, s)
				mu.Unlock()
			},
		}))
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
