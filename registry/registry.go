package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors returned by [Registry.Breaker] and the name and settings checks.
var (
	// ErrInvalidName is matched by the error for a breaker name that is
	// empty, longer than [MaxNameLen] bytes, not valid UTF-8 or holds a
	// character that is not printable.
	ErrInvalidName = errors.New("registry: invalid breaker name")
	// ErrInvalidSettings is matched by the error for [Settings] out of
	// range.
	ErrInvalidSettings = errors.New("registry: invalid breaker settings")
	// ErrConflict is matched by the error for a name that already has a
	// breaker with other settings. The error names both settings.
	ErrConflict = errors.New("registry: breaker settings conflict")
	// ErrTooManyBreakers is matched by the error for a new name when the
	// registry already holds its cap of names (see [Config.MaxBreakers]).
	ErrTooManyBreakers = errors.New("registry: too many breakers")
)

// MaxNameLen is the longest breaker name accepted, in bytes.
const MaxNameLen = 256

// DefaultMaxBreakers is the cap on the number of names in a registry whose
// [Config.MaxBreakers] is zero.
const DefaultMaxBreakers = 10000

// Default is the registry used when none is given: the guide's class-level
// registry of circuit breakers. It is the only package-level mutable state of
// this module. Tests that need isolation should use their own registry made
// with [New].
var Default = New(Config{})

// StateChange is one transition of a breaker, as reported to listeners.
type StateChange struct {
	// Name is the breaker's name.
	Name string
	// From and To are the states before and after the transition.
	From, To State
	// At is when the transition happened.
	At time.Time
}

// Config configures a [Registry] made by [New]. The zero value is the
// default: a registry of local breakers, at most [DefaultMaxBreakers]
// names, no listeners, panics logged on [slog.Default].
type Config struct {
	// Store, when set, keeps the state of every breaker of the registry,
	// shared with every process that uses the same store, and [New] starts
	// the registry's goroutine that follows the store (stop it with
	// [Registry.Close]). Breakers of a registry with a store use the
	// consecutive rule alone: asking for one with FailureRatio set is an
	// [ErrInvalidSettings] error. See [Store] for what is shared and what
	// it costs. Default nil: every breaker is local to the registry.
	Store Store
	// StoreTimeout bounds every store operation (together with the
	// caller's context). Default 100ms ([DefaultStoreTimeout]). Used only
	// with Store.
	StoreTimeout time.Duration
	// ResyncInterval is how often every breaker reloads its shared state,
	// the backstop for a lost push; while the store is unreachable, it is
	// also how often the registry tries it again. A breaker opened elsewhere
	// is seen here within ResyncInterval + StoreTimeout at worst (a push
	// usually brings it within one round trip). Default 1s
	// ([DefaultResyncInterval]). Used only with Store.
	ResyncInterval time.Duration
	// OnStoreStatus, when set, is called when the store becomes
	// unreachable (a store operation failed) and when it is reachable
	// again (a resync succeeded), and when one breaker's record becomes
	// unusable or sane again, from the registry's own goroutine, in order.
	// A panic in it is recovered and logged on Logger at Error with its
	// stack; the registry goes on. Default nil. Used only with Store.
	OnStoreStatus func(StoreStatus)
	// Listeners are called with every state change of every breaker in
	// the registry, in the order given. Listeners are called outside every
	// lock, one transition at a time, in the order the transitions
	// happened, exactly once each; a listener may call back into the
	// registry (State, States, Reset, Trip, Update) without deadlock. A
	// listener must not block for long: it delays the delivery of later
	// transitions of the same breaker. Nil entries are ignored.
	//
	// Listeners run on the goroutine that caused the change: the caller's,
	// for a change a call makes (Allow, Done, State, Snapshot, States,
	// Reset, Trip, Update: an open breaker half-opens at the first of these
	// after ResetTimeout), and the goroutine of the breaker's timer for the
	// move to half-open when no call comes first (and, with a Store, the
	// registry's goroutine that follows the store for a change another
	// replica made).
	//
	// A listener that panics hides nothing and corrupts nothing: every
	// other listener and subscriber still hears that change and every later
	// one. On the caller's goroutine the breaker first gives back what the
	// call holds (a half-open probe slot), then the first panic goes on up
	// to the caller; on the library's goroutines it is logged on Logger at
	// Error with its stack and the breaker goes on. A breaker shared
	// through a Store logs a listener's panic on every goroutine.
	Listeners []func(StateChange)
	// Logger is where the registry logs a panic of a listener, a
	// subscriber or OnStoreStatus on the library's own goroutines. Default
	// nil: [slog.Default].
	Logger *slog.Logger
	// MaxBreakers caps the number of names the registry holds. The cap is
	// one for breakers and rate limiters ([Registry.Limiter]) alike: each
	// breaker and each limiter is one name, so a cap of 2 holds two
	// breakers, or two limiters, or one of each. A new name past the cap is
	// refused with [ErrTooManyBreakers], so names taken from request data
	// cannot grow memory without bound. Default 0: [DefaultMaxBreakers];
	// a negative value means no cap.
	MaxBreakers int
}

// Registry holds circuit breakers by name. The same name always gives the
// same [*Breaker]; asking for a name that exists with other [Settings] is an
// error ([ErrConflict]), never a silent first-wins. A Registry is safe for
// concurrent use. The zero Registry is not usable: make one with [New].
type Registry struct {
	max       int
	listeners []func(StateChange)
	log       *slog.Logger
	link      *storeLink // nil without a Store

	mu       sync.RWMutex
	breakers map[string]*Breaker

	limiters limiters // named rate limiters, see Limiter
}

// New returns an empty registry configured by cfg (the zero Config gives
// the defaults). With cfg.Store set, it starts the registry's goroutine
// that follows the store: stop it with [Registry.Close].
func New(cfg Config) *Registry {
	r := &Registry{max: cfg.MaxBreakers, log: cfg.Logger, breakers: make(map[string]*Breaker)}
	switch {
	case r.max == 0:
		r.max = DefaultMaxBreakers
	case r.max < 0:
		r.max = math.MaxInt
	}
	for _, fn := range cfg.Listeners {
		if fn != nil {
			r.listeners = append(r.listeners, fn)
		}
	}
	if cfg.Store != nil {
		sc := storeConfig{Timeout: cfg.StoreTimeout, ResyncInterval: cfg.ResyncInterval, OnStatus: cfg.OnStoreStatus, Logger: cfg.Logger}
		if sc.Timeout <= 0 {
			sc.Timeout = DefaultStoreTimeout
		}
		if sc.ResyncInterval <= 0 {
			sc.ResyncInterval = DefaultResyncInterval
		}
		r.link = &storeLink{st: cfg.Store, cfg: sc, reg: r}
		r.link.start()
	}
	return r
}

// Close stops the goroutine that follows the registry's [Store] (see
// [Config.Store]) and returns nil. The breakers go on working, deciding
// locally. Close does nothing for a registry without a store, and may be
// called more than once.
func (r *Registry) Close() error {
	if r.link != nil {
		r.link.close()
	}
	return nil
}

// StoreStats returns the counters of the registry's [Store] and true, or
// the zero StoreStats and false for a registry without a store.
func (r *Registry) StoreStats() (StoreStats, bool) {
	if r.link == nil {
		return StoreStats{}, false
	}
	return r.link.stats(), true
}

// CheckName returns nil if name is acceptable as a breaker name, and else
// an error matching [ErrInvalidName] that says why: a name must be non-empty,
// at most [MaxNameLen] bytes of valid UTF-8, and hold only printable
// characters (letters, marks, numbers, punctuation, symbols and the ASCII
// space).
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrInvalidName, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidName, name)
	}
	for i, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %q has a non-printable character %U at byte %d", ErrInvalidName, name, r, i)
		}
	}
	return nil
}

// check validates s for this registry: in range, and, with a store, no
// rule the store does not share (the windowed rules are local).
func (r *Registry) check(s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	switch {
	case r.link != nil && s.FailureRatio > 0:
		return fmt.Errorf("%w: FailureRatio = %v, the ratio rule is not shared through a store (use the consecutive rule)", ErrInvalidSettings, s.FailureRatio)
	case r.link != nil && s.SlowCallRatio > 0:
		return fmt.Errorf("%w: SlowCallRatio = %v, the slow-call rule is not shared through a store", ErrInvalidSettings, s.SlowCallRatio)
	case r.link != nil && s.MaxResetTimeout > 0:
		return fmt.Errorf("%w: MaxResetTimeout = %v, a growing open duration is not shared through a store", ErrInvalidSettings, s.MaxResetTimeout)
	case r.link != nil && s.ResetJitter > 0:
		return fmt.Errorf("%w: ResetJitter = %v, a jittered open duration is not shared through a store (its replicas share one spell)", ErrInvalidSettings, s.ResetJitter)
	}
	return nil
}

// Breaker returns the breaker called name, creating it with settings s if
// the registry has none of that name. It returns an error, and no breaker,
// when the name fails [CheckName] ([ErrInvalidName]), when s is out of
// range ([ErrInvalidSettings]), when the name exists with other settings
// ([ErrConflict]; settings are compared after defaults are applied, so a
// zero field and its default are the same), or when the name is new and the
// registry is full ([ErrTooManyBreakers]).
func (r *Registry) Breaker(name string, s Settings) (*Breaker, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := r.check(s); err != nil {
		return nil, err
	}
	s = s.WithDefaults()
	r.mu.RLock()
	b := r.breakers[name]
	n := len(r.breakers)
	r.mu.RUnlock()
	if b == nil {
		if n >= r.max {
			return nil, fmt.Errorf("%w: %q would be name %d, the cap is %d", ErrTooManyBreakers, name, n+1, r.max)
		}
		nb := r.newBreaker(name, s)
		// The cap is checked with both tables locked, in the order
		// Limiter locks them (limiters, then breakers), so that breakers
		// and limiters together never pass it.
		r.limiters.mu.Lock()
		r.mu.Lock()
		b = r.breakers[name]
		if b == nil {
			if n := len(r.breakers) + len(r.limiters.m); n >= r.max {
				r.mu.Unlock()
				r.limiters.mu.Unlock()
				return nil, fmt.Errorf("%w: %q would be name %d, the cap is %d", ErrTooManyBreakers, name, n+1, r.max)
			}
			b = nb
			r.breakers[name] = b
		}
		r.mu.Unlock()
		r.limiters.mu.Unlock()
	}
	if have := b.Settings(); have != s {
		return nil, fmt.Errorf("%w: breaker %q exists with settings %v, asked for %v", ErrConflict, name, have, s)
	}
	return b, nil
}

// Update gives the breaker called name the settings s in place, and
// returns it: the way to change a breaker's thresholds (a policy reload),
// where [Registry.Breaker] with other settings is [ErrConflict]. A name
// the registry has no breaker of is created with s, as by Breaker. The
// errors are Breaker's, except ErrConflict.
//
// The breaker keeps its state, failure streak and open spell, and its
// listeners and subscribers hear nothing (Update is no state change). The
// new FailureThreshold and ratio rule apply from the next outcome (a
// streak already at or past a lowered FailureThreshold opens the breaker
// at the next failure; a new Window or WindowBuckets starts the window
// afresh). A new ResetTimeout, MaxResetTimeout, ResetBackoff or
// ResetJitter applies from the next open spell: the current one ends when
// it was due to. For a local breaker, a new SuccessThreshold, ResetTimeout
// or ResetJitter given while it is open or half-open takes effect when it
// next closes (gobreaker holds them); given while it
// is closed, at once, with a fresh gobreaker whose calls in flight are
// not counted. For a shared breaker (a registry with a [Config.Store]),
// all of them apply at once to this replica; the store keeps the record
// it has, written with the old settings' [Settings.Fingerprint]: this
// replica's next store operation on the breaker is refused with a
// [*KeyError] matching [ErrConflict] (reported through
// [Config.OnStoreStatus]) and the breaker decides locally until the
// record is written with the new settings (it expires, or is removed),
// while replicas with the old settings stay shared. Update every replica.
func (r *Registry) Update(name string, s Settings) (*Breaker, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := r.check(s); err != nil {
		return nil, err
	}
	d := s.WithDefaults()
	b, ok := r.Get(name)
	if !ok {
		return r.Breaker(name, s)
	}
	b.mu.Lock()
	if b.settings != d || b.next != nil {
		b.setSettings(d)
	}
	b.updateGate()
	raise(b.unlockAndDeliver())
	return b, nil
}

// newBreaker makes a breaker; a shared one starts from the store's state
// (or closed, when the store does not answer within its timeout).
func (r *Registry) newBreaker(name string, s Settings) *Breaker {
	if r.link == nil {
		b := newBreaker(name, s, r.listeners)
		b.log = r.log
		return b
	}
	b := newSharedBreaker(name, s, r.listeners, r.link)
	b.log = r.log
	if !r.link.down.Load() {
		ss, err := r.link.load(context.Background(), []string{name})
		if err != nil {
			r.link.failed(err)
		} else {
			b.mu.Lock()
			b.adopt(ss[0], true)
			b.pending = nil // what it finds is not a change
			b.updateGate()
			b.mu.Unlock()
		}
	}
	return b
}

// Get returns the breaker called name and true, or nil and false if the
// registry has no breaker of that name (the guide's CircuitBreaker.get).
func (r *Registry) Get(name string) (*Breaker, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b, ok := r.breakers[name]
	return b, ok
}

// Remove takes the breaker called name out of the registry and reports
// whether there was one: Get, Names and States no longer show it, it no
// longer counts against [Config.MaxBreakers], and the next Breaker of that
// name is a new one, closed. The removed *Breaker goes on working for
// whoever holds it (it is not closed), but a registry with a store no
// longer resyncs it. For names that come and go, such as the instances of
// a discovered service (package balancer removes an instance's breaker when
// the instance leaves).
func (r *Registry) Remove(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.breakers[name]
	delete(r.breakers, name)
	return ok
}

// breakerCount returns the number of breakers, without sorting their names
// as Names does: what Limiter's check of the cap needs.
func (r *Registry) breakerCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.breakers)
}

// Names returns the names of the registry's breakers, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	names := make([]string, 0, len(r.breakers))
	for n := range r.breakers {
		names = append(names, n)
	}
	r.mu.RUnlock()
	slices.Sort(names)
	return names
}

// States returns a snapshot of every breaker, by name (the guide's
// CircuitBreaker.get_all_states). Each snapshot's state is the one current
// at the call: a breaker whose reset timeout has ended shows half-open, never
// a stale open.
func (r *Registry) States() map[string]Snapshot {
	list := r.list()
	out := make(map[string]Snapshot, len(list))
	for _, b := range list {
		out[b.name] = b.Snapshot()
	}
	return out
}

// Reset closes the breaker called name and clears its counts (see
// [Breaker.Reset]). It reports whether the registry has such a breaker.
func (r *Registry) Reset(name string) bool {
	b, ok := r.Get(name)
	if ok {
		b.Reset()
	}
	return ok
}

// ResetAll resets every breaker of the registry.
func (r *Registry) ResetAll() {
	for _, b := range r.list() {
		b.Reset()
	}
}

func (r *Registry) list() []*Breaker {
	r.mu.RLock()
	list := make([]*Breaker, 0, len(r.breakers))
	for _, b := range r.breakers {
		list = append(list, b)
	}
	r.mu.RUnlock()
	return list
}
