package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/resiliencekit/resilience/internal/keyed"
)

// Defaults and bounds of [KeyedConfig].
const (
	// DefaultKeyedMax is the default KeyedConfig.MaxKeys.
	DefaultKeyedMax = 10000
	// MaxKeyedMax is the largest KeyedConfig.MaxKeys accepted.
	MaxKeyedMax = 1 << 24
	// DefaultKeyedTTL is the default KeyedConfig.TTL.
	DefaultKeyedTTL = 10 * time.Minute
)

// ErrTooManyKeys is returned by [Keyed.Breaker] for a new key when the
// Keyed holds its MaxKeys and none of the least recently used may be
// evicted (their breakers are open, or half-open and in use). It is a
// rejection of the toolkit's own: middleware never retries it and never
// counts it as a failure.
var ErrTooManyKeys = errors.New("registry: too many keys in use")

// KeyedConfig configures a [Keyed]. The zero value is the defaults.
type KeyedConfig struct {
	// Settings are every key's breaker's settings. Default: the guide's
	// breaker. The windowed rules (FailureRatio, SlowCallRatio) work as for
	// any local breaker.
	Settings Settings
	// MaxKeys is the most keys, so breakers, held at once. Default
	// [DefaultKeyedMax]; at most [MaxKeyedMax]. When it is reached, a new
	// key evicts the least recently used key that may go.
	MaxKeys int
	// TTL is how long a key may go unused before its breaker is evicted.
	// Default [DefaultKeyedTTL]; at least 1ms and at most [MaxDuration].
	TTL time.Duration
	// Listeners are called with each state change of every key's breaker,
	// as [Config.Listeners] are (StateChange.Name is the key).
	Listeners []func(StateChange)
	// Logger receives a listener's panic on the library's goroutines.
	// Default nil: [slog.Default].
	Logger *slog.Logger
}

// Validate returns nil if c is valid, and else an error matching
// [ErrInvalidSettings] naming each bad field.
func (c KeyedConfig) Validate() error {
	var errs []error
	bad := func(field string, v any, reason string) {
		errs = append(errs, &SettingsError{Field: "KeyedConfig." + field, Value: v, Reason: reason})
	}
	if err := c.Settings.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxKeys < 0 || c.MaxKeys > MaxKeyedMax {
		bad("MaxKeys", c.MaxKeys, fmt.Sprintf("must be 0 (the default, %d) or between 1 and %d", DefaultKeyedMax, MaxKeyedMax))
	}
	if c.TTL != 0 && (c.TTL < time.Millisecond || c.TTL > MaxDuration) {
		bad("TTL", c.TTL, fmt.Sprintf("must be 0 (the default, %v) or between 1ms and %v", DefaultKeyedTTL, MaxDuration))
	}
	return errors.Join(errs...)
}

// Keyed holds one circuit breaker per key, for breakers chosen by request
// data (a tenant, a host, a route), with the memory a key may take bounded:
// at most MaxKeys breakers, the least recently used evicted for a new key,
// and keys unused for the TTL forgotten. Eviction never drops a breaker
// whose state would outlive it: an open or half-open breaker stays until
// the TTL has passed since its reset timeout ended, and a breaker an
// operator set a manual mode on is kept. An evicted key comes back as a new, closed breaker. Make one with
// [NewKeyed]. Safe for concurrent use.
type Keyed struct {
	settings  Settings
	listeners []func(StateChange)
	log       *slog.Logger
	store     *keyed.Store[*Breaker]
	ttl       time.Duration
}

// NewKeyed returns a Keyed configured by cfg, or cfg.Validate's error.
func NewKeyed(cfg KeyedConfig) (*Keyed, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultKeyedMax
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultKeyedTTL
	}
	k := &Keyed{settings: cfg.Settings.WithDefaults(), log: cfg.Logger, ttl: cfg.TTL}
	for _, fn := range cfg.Listeners {
		if fn != nil {
			k.listeners = append(k.listeners, fn)
		}
	}
	k.store = keyed.New(keyed.Config[*Breaker]{
		Max: cfg.MaxKeys,
		TTL: cfg.TTL,
		New: func(key string) (*Breaker, error) {
			b := newBreaker(key, k.settings, k.listeners)
			b.log = k.log
			return b, nil
		},
		Evictable: func(b *Breaker, now time.Time) bool { return b.evictable(now, k.ttl) },
		Evicted:   func(_ string, b *Breaker) { b.evict() },
	})
	return k, nil
}

// Breaker returns the breaker of key, creating it if the Keyed has none.
// It returns an error matching [ErrInvalidName] for a key [CheckName]
// refuses, and [ErrTooManyKeys] when no key can make room for it.
func (k *Keyed) Breaker(key string) (*Breaker, error) {
	if err := CheckName(key); err != nil {
		return nil, err
	}
	b, err := k.store.Get(key)
	if errors.Is(err, keyed.ErrFull) {
		return nil, fmt.Errorf("%w: %d breakers, none of them evictable", ErrTooManyKeys, k.store.Len())
	}
	return b, err
}

// Get returns the breaker of key and true, or nil and false if the Keyed
// holds none (it never creates one, nor marks the key used).
func (k *Keyed) Get(key string) (*Breaker, bool) { return k.store.Lookup(key) }

// Len returns how many keys, so breakers, the Keyed holds.
func (k *Keyed) Len() int { return k.store.Len() }

// Settings returns every key's breaker's settings, defaults applied.
func (k *Keyed) Settings() Settings { return k.settings }

// evictable reports whether b may be evicted at now: closed, or open or
// half-open once ttl has passed since its reset timeout ended (an open
// breaker whose spell has ended is half-open, whether or not its timer has
// run yet). It reads b's state under its lock and runs no user code, so a
// store may call it under its own lock.
func (b *Breaker) evictable(now time.Time, ttl time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mode.Load() != uint32(ModeNormal) {
		return false // an operator's mode is kept
	}
	if b.state == StateClosed {
		return true
	}
	return !now.Before(b.halfOpenAt.Add(ttl))
}

// evict stops b's timers: it is no longer reachable from its Keyed.
func (b *Breaker) evict() {
	b.mu.Lock()
	b.stopTimer()
	b.mu.Unlock()
}
