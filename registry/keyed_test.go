package registry_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

func TestKeyedConfigValidate(t *testing.T) {
	for _, c := range []registry.KeyedConfig{
		{MaxKeys: -1}, {MaxKeys: registry.MaxKeyedMax + 1}, {TTL: time.Microsecond}, {TTL: -time.Second},
		{Settings: registry.Settings{FailureThreshold: -1}},
	} {
		if _, err := registry.NewKeyed(c); !errors.Is(err, registry.ErrInvalidSettings) {
			t.Errorf("NewKeyed(%+v) err = %v, want ErrInvalidSettings", c, err)
		}
	}
}

// TestKeyed: one breaker per key, the same breaker for the same key, bad
// keys refused alone; a manual mode keeps a breaker from eviction, and
// listeners hear every key's changes by key.
func TestKeyed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes []registry.StateChange
		k, err := registry.NewKeyed(registry.KeyedConfig{MaxKeys: 16, TTL: time.Minute,
			Settings:  registry.Settings{FailureThreshold: 1},
			Listeners: []func(registry.StateChange){func(c registry.StateChange) { changes = append(changes, c) }}})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := k.Breaker("a")
		if again, _ := k.Breaker("a"); again != a {
			t.Error("two breakers for key a")
		}
		if _, err := k.Breaker(""); !errors.Is(err, registry.ErrInvalidName) {
			t.Errorf("empty key: err = %v, want ErrInvalidName", err)
		}
		a.Trip()
		if len(changes) != 1 || changes[0].Name != "a" || changes[0].To != registry.StateOpen {
			t.Errorf("changes %v, want a's trip", changes)
		}
		a.Reset()
		if err := a.SetMode(registry.ModeHeldOpen); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute)
		for i := range 5000 { // churn every shard past the TTL
			k.Breaker(string(rune('A'+i%26)) + string(rune('0'+i%10)) + string(rune(i)))
		}
		if got, ok := k.Get("a"); !ok || got != a {
			t.Error("a breaker held open by an operator was evicted")
		}
		if k.Len() > 16 { // 16 shards of one key each
			t.Errorf("Len = %d, want at most 16", k.Len())
		}
	})
}
