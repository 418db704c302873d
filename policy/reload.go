package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// DefaultWatchInterval is how often [Watch] looks at the file, unless
// [Config].WatchInterval says otherwise.
const DefaultWatchInterval = time.Second

// Watch watches the policy file at path with the default [Config]: see
// [Config.Watch].
func Watch(ctx context.Context, path string, fn func(*Set, error)) error {
	return Config{}.Watch(ctx, path, fn)
}

// Watch calls fn with the policy file at path as it is when Watch starts,
// then again each time its contents change, until ctx ends; then it returns
// ctx.Err(). fn gets the new [Set], or the error of a file that does not
// load (every problem at once, as [Config.Parse] reports them; a file that
// cannot be read, or was removed, is an error too), and then the caller
// keeps its old policies. Pass each Set to [Reloader.Update] to swap it in.
//
// The file is read every [Config].WatchInterval (default 1s; it is at most
// MaxBytes). fn is called only when the contents differ from the last ones
// it was called with: a touch, or a rewrite with the same bytes, calls
// nothing, and a broken file is reported once, not at every look, until it
// changes again. A file that cannot be read is reported once for as long as
// it fails with the same error. fn is called on Watch's goroutine, one call
// at a time; Watch waits for it.
//
// Watch returns at once, without calling fn, an error matching
// middleware.ErrInvalidConfig for a nil fn or a negative WatchInterval or
// MaxBytes.
func (c Config) Watch(ctx context.Context, path string, fn func(*Set, error)) error {
	if fn == nil {
		return &middleware.ConfigError{Path: "policy.watch", Reason: "fn must not be nil"}
	}
	interval := c.WatchInterval
	switch {
	case interval < 0:
		return &middleware.ConfigError{Path: "policy.watch_interval", Field: "policy.Config.WatchInterval", Value: interval, Reason: "must not be negative (0 means the default 1s)"}
	case interval == 0:
		interval = DefaultWatchInterval
	}
	if _, err := c.maxBytes(); err != nil {
		return err
	}
	var (
		seen    bool   // fn has been called
		lastSum []byte // the contents fn was last called with; nil after a read error
		lastErr string // the read error fn was last called with
	)
	look := func() {
		data, err := c.read(path)
		if err != nil {
			if seen && lastSum == nil && err.Error() == lastErr {
				return // the same read error, reported once
			}
			seen, lastSum, lastErr = true, nil, err.Error()
			fn(nil, err)
			return
		}
		sum := sha256.Sum256(data)
		if seen && bytes.Equal(sum[:], lastSum) {
			return // touched, not changed
		}
		seen, lastSum, lastErr = true, sum[:], ""
		fn(c.parse(path, data))
	}
	look()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			look()
		}
	}
}

// read reads the file at path within MaxBytes.
func (c Config) read(path string) ([]byte, error) {
	max, err := c.maxBytes()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, c.tooLarge(path, max)
	}
	return data, nil
}

// Reloader keeps endpoints on the current policies. Each endpoint it makes
// ([Reloader.Endpoint], [EndpointFor]) runs its stack of the Set last given
// to [Reloader.Update]: a new policy file swaps in, atomically, for the
// calls that start after the update, while calls in flight finish on the
// stack they started with. No call fails because of an update.
//
// A circuit breaker keeps its state across an update: the same name is the
// same breaker, and one whose settings (thresholds, reset timeout) changed
// takes the new ones in place ([registry.Registry.Update]), keeping its
// state and failure streak. The other layers are built anew: a bulkhead
// starts with no call in it (calls in flight on the old one are not
// counted), a local rate limiter with a full burst.
//
// A Reloader is safe for concurrent use; its endpoints cost one atomic load
// more than the stack they run.
type Reloader struct {
	mu     sync.Mutex
	set    *Set
	adjust func(name string, s middleware.Stack) middleware.Stack
	eps    []*live
}

// live is one endpoint of a Reloader.
type live struct {
	name  string
	next  endpoint.Endpoint
	stack func(*Set, string) (middleware.Stack, error)
	cur   atomic.Pointer[endpoint.Endpoint]
}

// NewReloader returns a Reloader whose endpoints start on set. adjust, when
// not nil, is called with each stack's name and Stack at every build (at
// [Reloader.Endpoint] and at each [Reloader.Update]) to set what a file
// cannot hold (an Observer, a Registry, a fallback endpoint); it returns
// the Stack to build. It must not call the Reloader.
func NewReloader(set *Set, adjust func(name string, s middleware.Stack) middleware.Stack) *Reloader {
	return &Reloader{set: set, adjust: adjust}
}

// Set returns the Set the Reloader's endpoints run now.
func (r *Reloader) Set() *Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set
}

// Endpoint returns an endpoint that calls next through the current Set's
// stack called name, with the file's values as JSON's types (see
// [Set.Stack]); or the error of that stack (an unknown name, matching
// [ErrUnknownStack]; a stack that does not build, matching
// middleware.ErrInvalidConfig). It builds the stack as
// [middleware.Stack.Apply] does: a circuit breaker that exists with other
// settings is an error here (only [Reloader.Update] changes settings).
func (r *Reloader) Endpoint(name string, next endpoint.Endpoint) (endpoint.Endpoint, error) {
	return r.add(name, next, (*Set).Stack)
}

// EndpointFor is [Reloader.Endpoint] with the file's values decoded into
// Resp, the type next returns (see [StackFor]): at every update too, so a
// new file whose value does not fit Resp is refused by Update.
func EndpointFor[Resp any](r *Reloader, name string, next endpoint.Endpoint) (endpoint.Endpoint, error) {
	return r.add(name, next, StackFor[Resp])
}

func (r *Reloader) add(name string, next endpoint.Endpoint, stack func(*Set, string) (middleware.Stack, error)) (endpoint.Endpoint, error) {
	if next == nil {
		return nil, &middleware.ConfigError{Path: "endpoint", Reason: "must not be nil"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		return nil, &middleware.ConfigError{Path: "policy.set", Reason: "the Reloader has no Set (NewReloader(nil, ...))"}
	}
	l := &live{name: name, next: next, stack: stack}
	eps, err := r.build([]*live{l}, r.set, false)
	if err != nil {
		return nil, err
	}
	l.cur.Store(&eps[0])
	r.eps = append(r.eps, l)
	return func(ctx context.Context, req any) (any, error) {
		return (*l.cur.Load())(ctx, req)
	}, nil
}

// Update swaps set in for every endpoint of the Reloader, or for none: when
// a stack of set is missing, does not fit its endpoint's type or does not
// build, Update returns every problem, each naming its stack, and the
// endpoints keep running their stacks, their breakers' settings unchanged.
// A circuit breaker whose settings changed takes them in place, keeping its
// state. Updating to the Set already running rebuilds nothing.
func (r *Reloader) Update(set *Set) error {
	if set == nil {
		return &middleware.ConfigError{Path: "policy.set", Reason: "must not be nil"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if set == r.set {
		return nil
	}
	eps, err := r.build(r.eps, set, true)
	if err != nil {
		return err
	}
	for i, l := range r.eps {
		l.cur.Store(&eps[i])
	}
	r.set = set
	return nil
}

// build makes the endpoints of ls on set, all or none. With update, the
// breakers take the settings of set in place first, and on an error every
// breaker it updated has its old settings back; without, a breaker that
// exists with other settings is an error, as in Stack.Apply.
func (r *Reloader) build(ls []*live, set *Set, update bool) ([]endpoint.Endpoint, error) {
	stacks := make([]middleware.Stack, len(ls))
	var errs []error
	for i, l := range ls {
		s, err := l.stack(set, l.name)
		if err == nil && r.adjust != nil {
			s = r.adjust(l.name, s)
		}
		if err == nil {
			err = s.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("policy: endpoint of stack %q: %w", l.name, err))
		}
		stacks[i] = s
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// One breaker, one set of settings: two stacks that name the same
	// breaker with different settings are refused before any changes.
	type key struct {
		reg  *registry.Registry
		name string
	}
	want := map[key]registry.Settings{}
	for i, s := range stacks {
		reg, name, st, ok := breakerOf(s)
		if !ok {
			continue
		}
		k := key{reg, name}
		if prev, dup := want[k]; dup && prev.WithDefaults() != st.WithDefaults() {
			errs = append(errs, fmt.Errorf("policy: endpoint of stack %q: %w: circuit_breaker.name: breaker %q is asked for with settings %v and %v", ls[i].name, middleware.ErrInvalidConfig, name, prev, st))
		}
		want[k] = st
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	type undo struct {
		reg  *registry.Registry
		name string
		old  registry.Settings
	}
	var undos []undo
	rollback := func() {
		for _, u := range undos {
			u.reg.Update(u.name, u.old) // the old settings were valid: no error
		}
	}
	if !update {
		clear(want)
	}
	for k, st := range want {
		if b, ok := k.reg.Get(k.name); ok {
			undos = append(undos, undo{k.reg, k.name, b.Settings()})
		}
		if _, err := k.reg.Update(k.name, st); err != nil {
			rollback()
			return nil, fmt.Errorf("policy: circuit breaker %q: %w: %w", k.name, middleware.ErrInvalidConfig, err)
		}
	}
	eps := make([]endpoint.Endpoint, len(ls))
	for i, l := range ls {
		ep, err := stacks[i].Apply(l.next)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy: endpoint of stack %q: %w", l.name, err))
		}
		eps[i] = ep
	}
	if err := errors.Join(errs...); err != nil {
		rollback()
		return nil, err
	}
	return eps, nil
}

// breakerOf returns the registry, name and settings of the circuit breaker
// of s, as Stack.Build resolves them, and whether s has one.
func breakerOf(s middleware.Stack) (*registry.Registry, string, registry.Settings, bool) {
	cb := s.CircuitBreaker
	name, st := cb.Name, cb.Settings()
	if name == "" && st != (registry.Settings{}) {
		name = s.Name
	}
	if name == "" {
		return nil, "", registry.Settings{}, false
	}
	reg := cb.Registry
	if reg == nil {
		reg = s.Registry
	}
	if reg == nil {
		reg = registry.Default
	}
	return reg, name, st, true
}
