package registrytest

import (
	"context"
	"errors"
	"sync"

	"github.com/resiliencekit/resilience/registry"
)

// ErrDown is the error of every operation of a [Flaky] store while it is
// down.
var ErrDown = errors.New("registrytest: store down")

// Flaky is a [registry.Store] that passes every operation to another store
// and fails on demand: while it is down ([Flaky.SetDown]), Load, Record
// and Watch fail at once with [ErrDown], and a Watch already running ends
// with ErrDown, as a store that became unreachable. Use it to test what a
// registry does during a store outage. A Flaky is safe for concurrent use.
type Flaky struct {
	st registry.Store

	mu   sync.Mutex
	down bool
	gone chan struct{} // closed when the store goes down
}

// NewFlaky returns a Flaky store, up, in front of st.
func NewFlaky(st registry.Store) *Flaky {
	return &Flaky{st: st, gone: make(chan struct{})}
}

// SetDown makes the store unreachable (true) or reachable again (false).
func (f *Flaky) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if down == f.down {
		return
	}
	f.down = down
	if down {
		close(f.gone)
	} else {
		f.gone = make(chan struct{})
	}
}

// Down reports whether the store is down.
func (f *Flaky) Down() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// state returns whether the store is down, and the channel closed when it
// next goes down.
func (f *Flaky) state() (bool, chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down, f.gone
}

// Load implements [registry.Store].
func (f *Flaky) Load(ctx context.Context, names []string) ([]registry.SharedState, error) {
	if f.Down() {
		return nil, ErrDown
	}
	return f.st.Load(ctx, names)
}

// Record implements [registry.Store].
func (f *Flaky) Record(ctx context.Context, name string, s registry.Settings, gen uint64, op registry.Op) (registry.SharedState, error) {
	if f.Down() {
		return registry.SharedState{}, ErrDown
	}
	return f.st.Record(ctx, name, s, gen, op)
}

// Watch implements [registry.Store]: the other store's Watch, ended with
// [ErrDown] when the store goes down.
func (f *Flaky) Watch(ctx context.Context, ready func(), changed func(name string)) error {
	down, gone := f.state()
	if down {
		return ErrDown
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.st.Watch(wctx, ready, changed) }()
	select {
	case err := <-done:
		return err
	case <-gone:
		cancel()
		<-done
		return ErrDown
	}
}

// StoreKey implements [registry.StoreKeyer] when the other store does,
// and returns "" otherwise.
func (f *Flaky) StoreKey(name string) string {
	if k, ok := f.st.(registry.StoreKeyer); ok {
		return k.StoreKey(name)
	}
	return ""
}
