package registry_test

import (
	"testing"

	"github.com/resiliencekit/resilience/registry"
)

// namedFunc is a func type of the kind middleware.ObserverFunc is.
type namedFunc func(registry.StateChange)

// TestSubscribeIdentity sweeps the kinds of subscription key: the same key
// subscribes once however many times it is given (a function value
// included), different keys once each; nil and other keys that cannot be
// compared once per Subscribe; and cancelling every Subscribe leaves no
// subscriber, while cancelling twice counts once.
func TestSubscribeIdentity(t *testing.T) {
	f1 := namedFunc(func(registry.StateChange) {})
	n := 0
	f2 := namedFunc(func(registry.StateChange) { n++ }) // another closure
	type key struct{ id int }
	tests := []struct {
		name string
		keys []any
		subs int // subscribers while every Subscribe holds
	}{
		{name: "one comparable key, 1000 times", keys: repeat(key{1}, 1000), subs: 1},
		{name: "two comparable keys", keys: []any{key{1}, key{2}, key{1}, key{2}}, subs: 2},
		{name: "one function value, 1000 times", keys: repeat(f1, 1000), subs: 1},
		{name: "two function values", keys: []any{f1, f2, f1, f2}, subs: 2},
		{name: "a pointer, twice", keys: []any{&n, &n}, subs: 1},
		{name: "nil keys", keys: []any{nil, nil, nil}, subs: 3},
		{name: "keys that cannot be compared", keys: []any{[]int{1}, []int{1}, map[int]int{}}, subs: 3},
		{name: "a struct holding a slice", keys: []any{struct{ s []int }{}, struct{ s []int }{}}, subs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := registry.New(registry.Config{}).Breaker("svc", registry.Settings{})
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			var cancels []func()
			for _, k := range tt.keys {
				cancels = append(cancels, b.Subscribe(k, func(registry.StateChange) { calls++ }))
			}
			if got := registry.Subscribers(b); got != tt.subs {
				t.Errorf("subscribers = %d, want %d", got, tt.subs)
			}
			b.Trip()
			if calls != tt.subs {
				t.Errorf("calls of one Trip = %d, want %d", calls, tt.subs)
			}
			cancels[0]()
			cancels[0]() // a second cancel counts once
			for _, c := range cancels {
				c()
			}
			if got := registry.Subscribers(b); got != 0 {
				t.Errorf("after every cancel: subscribers = %d, want 0", got)
			}
			calls = 0
			b.Reset()
			if calls != 0 {
				t.Errorf("after every cancel: %d calls, want 0", calls)
			}
		})
	}
}

func repeat(k any, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = k
	}
	return out
}
