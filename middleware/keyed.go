package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/keyed"
	"github.com/resiliencekit/resilience/registry"
)

// ErrKeyRejected is matched by the error a keyed layer ([KeyedCircuitBreaker],
// [KeyedRateLimit]) returns when it cannot hold the call's key: the key is
// not a valid name (empty, longer than [registry.MaxNameLen] bytes, not
// printable: it is request data), or every key the layer holds is in use
// and none may be evicted. It is a rejection of the toolkit's own: never
// retried, never a breaker failure. The error also matches the registry's
// reason (registry.ErrInvalidName or registry.ErrTooManyKeys).
var ErrKeyRejected = errors.New("middleware: key rejected")

// KeyFunc returns the key of a call: a tenant, a host, a route, taken from
// the request or its context. It runs on the caller's goroutine, on every
// call; a panic in it goes on up to the caller before the layer holds
// anything.
type KeyFunc func(ctx context.Context, req any) string

// keyRejected wraps err, the registry's reason, as a keyed layer's
// rejection of key.
func keyRejected(layer, key string, err error) error {
	if len(key) > 64 {
		key = key[:64] + "..."
	}
	return fmt.Errorf("%w: %s: key %q: %w", ErrKeyRejected, layer, key, err)
}

// KeyedBreakerConfig configures [KeyedCircuitBreaker]. Key is required; the
// other fields' zero values are the defaults.
type KeyedBreakerConfig struct {
	// Key chooses the breaker of each call. Required.
	Key KeyFunc
	// Breaker is every key's breaker's rules: thresholds, ResetTimeout and
	// its growth, the ratio and slow-call rules, FailOn, FailIf,
	// CountBusinessErrors, Observer. Its Name names the layer in events
	// (Event.Name; Event.Key is the key); its Registry is not used.
	Breaker BreakerConfig
	// MaxKeys is the most keys, so breakers, held at once. Default
	// [registry.DefaultKeyedMax]; at most [registry.MaxKeyedMax].
	MaxKeys int
	// TTL is how long a key may go unused before its breaker is
	// forgotten. Default [registry.DefaultKeyedTTL].
	TTL time.Duration
}

// Validate returns nil if c is valid, and else every problem at once, each
// a [*ConfigError] matching [ErrInvalidConfig].
func (c KeyedBreakerConfig) Validate() error {
	p := problems{layer: "keyed_circuit_breaker", goType: "KeyedBreakerConfig"}
	if c.Key == nil {
		p.add("key", "Key", nil, "must be set: the function that chooses each call's breaker")
	}
	validateKeyBounds(&p, c.MaxKeys, c.TTL)
	bc := c.Breaker
	bc.Registry = nil
	if err := bc.Validate(); err != nil {
		p.errs = append(p.errs, err)
	}
	return p.err()
}

func validateKeyBounds(p *problems, maxKeys int, ttl time.Duration) {
	if maxKeys < 0 || maxKeys > registry.MaxKeyedMax {
		p.add("max_keys", "MaxKeys", maxKeys, fmt.Sprintf("must be 0 (the default, %d) or between 1 and %d", registry.DefaultKeyedMax, registry.MaxKeyedMax))
	}
	if ttl != 0 && (ttl < time.Millisecond || ttl > registry.MaxDuration) {
		p.add("ttl", "TTL", ttl, fmt.Sprintf("must be 0 (the default, %v) or between 1ms and %v", registry.DefaultKeyedTTL, registry.MaxDuration))
	}
}

// KeyedCircuitBreaker returns a middleware that guards each call with the
// circuit breaker of its key (cfg.Key), in a [registry.Keyed] of its own:
// a breaker per tenant, host or route, each one as [CircuitBreaker] guards
// a call, with the keys held bounded by cfg.MaxKeys and cfg.TTL (see
// [registry.Keyed] for what eviction keeps). A call whose key cannot be
// held gets an error matching [ErrKeyRejected] and does not reach the
// endpoint. State changes are reported to cfg.Breaker.Observer with Name
// the layer's name and Key the breaker's key, so metrics keep one series
// per layer. It panics with cfg.Validate's error when cfg is not valid,
// and the middleware panics, matching [ErrInvalidConfig], when given a nil
// endpoint. Every endpoint one KeyedCircuitBreaker wraps shares its
// breakers. Safe for concurrent use.
func KeyedCircuitBreaker(cfg KeyedBreakerConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	obs := observer(cfg.Breaker.Observer)
	name := cfg.Breaker.Name
	k, err := registry.NewKeyed(registry.KeyedConfig{
		Settings: cfg.Breaker.Settings(),
		MaxKeys:  cfg.MaxKeys,
		TTL:      cfg.TTL,
		Listeners: []func(registry.StateChange){func(c registry.StateChange) {
			obs.Observe(context.Background(), Event{Kind: EventStateChange, Layer: "circuit_breaker", Name: name, Key: c.Name, From: c.From, To: c.To})
		}},
	})
	if err != nil {
		panic(fmt.Errorf("%w: keyed_circuit_breaker: %w", ErrInvalidConfig, err))
	}
	cl := &classifier{filter: newFilter(cfg.Breaker.FailOn, cfg.Breaker.FailIf),
		business: cfg.Breaker.CountBusinessErrors, slow: cfg.Breaker.SlowCallDuration}
	key := cfg.Key
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("keyed_circuit_breaker", next)
		return func(ctx context.Context, req any) (any, error) {
			kk := key(ctx, req)
			b, err := k.Breaker(kk)
			if err != nil {
				err = keyRejected("keyed_circuit_breaker", kk, err)
				obs.Observe(ctx, Event{Kind: EventRejected, Layer: "circuit_breaker", Name: name, Key: kk, Err: err})
				return nil, err
			}
			return cl.call(ctx, b, next, req)
		}
	}
}

// KeyedRateLimitConfig configures [KeyedRateLimit]. Key, Rate and Burst are
// required.
type KeyedRateLimitConfig struct {
	// Key chooses the limiter of each call. Required.
	Key KeyFunc
	// Rate and Burst are every key's limit: calls per second, sustained,
	// and at once. Rate above 0 and finite, Burst at least 1.
	Rate  float64
	Burst int
	// MaxKeys is the most keys, so limiters, held at once. Default
	// [registry.DefaultKeyedMax]; at most [registry.MaxKeyedMax].
	MaxKeys int
	// TTL is how long a key may go unused before its limiter is
	// forgotten, once its bucket has filled up again. Default
	// [registry.DefaultKeyedTTL].
	TTL time.Duration
	// Name names the layer in its events and errors. Default "".
	Name string
	// Observer receives an [EventRejected] for each call turned away, with
	// Key the call's key. Default nil: a [LogObserver] on [slog.Default].
	Observer Observer
}

// Validate returns nil if c is valid, and else every problem at once, each
// a [*ConfigError] matching [ErrInvalidConfig].
func (c KeyedRateLimitConfig) Validate() error {
	p := problems{layer: "keyed_rate_limit", goType: "KeyedRateLimitConfig"}
	if c.Key == nil {
		p.add("key", "Key", nil, "must be set: the function that chooses each call's limiter")
	}
	if math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate <= 0 {
		p.add("rate", "Rate", c.Rate, "must be above 0 and finite")
	}
	if c.Burst < 1 {
		p.add("burst", "Burst", c.Burst, "must be at least 1")
	}
	validateKeyBounds(&p, c.MaxKeys, c.TTL)
	validateObserver(&p, c.Observer)
	return p.err()
}

// KeyedRateLimit returns a middleware that admits each call by the token
// bucket of its key (cfg.Key): Rate calls per second and Burst at once per
// tenant, host or route, a call over its key's limit rejected at once with
// a [*RateLimitError] (matching [ErrRateLimited], with the delay until its
// key's next token). The keys held are bounded by cfg.MaxKeys and cfg.TTL;
// a key's limiter is evicted only once its bucket is full again, so
// eviction never hands a key a fresh burst it had not earned. A call whose
// key cannot be held gets an error matching [ErrKeyRejected]. It panics
// with cfg.Validate's error when cfg is not valid, and the middleware
// panics, matching [ErrInvalidConfig], when given a nil endpoint. Safe for
// concurrent use.
func KeyedRateLimit(cfg KeyedRateLimitConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = registry.DefaultKeyedMax
	}
	if cfg.TTL == 0 {
		cfg.TTL = registry.DefaultKeyedTTL
	}
	limit, burst := rate.Limit(cfg.Rate), cfg.Burst
	store := keyed.New(keyed.Config[*rate.Limiter]{
		Max: cfg.MaxKeys,
		TTL: cfg.TTL,
		New: func(string) (*rate.Limiter, error) { return rate.NewLimiter(limit, burst), nil },
		Evictable: func(l *rate.Limiter, now time.Time) bool {
			return l.TokensAt(now) >= float64(burst)
		},
	})
	obs := observer(cfg.Observer)
	name, key := cfg.Name, cfg.Key
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("keyed_rate_limit", next)
		return func(ctx context.Context, req any) (any, error) {
			kk := key(ctx, req)
			var lim *rate.Limiter
			err := registry.CheckName(kk)
			if err == nil {
				lim, err = store.Get(kk)
				if errors.Is(err, keyed.ErrFull) {
					err = fmt.Errorf("%w: %d limiters, none of them evictable", registry.ErrTooManyKeys, store.Len())
				}
			}
			if err != nil {
				err = keyRejected("keyed_rate_limit", kk, err)
				obs.Observe(ctx, Event{Kind: EventRejected, Layer: "rate_limit", Name: name, Key: kk, Err: err})
				return nil, err
			}
			now := time.Now()
			if !lim.AllowN(now, 1) {
				l := rateLimiter{lim: lim, name: name}
				err := &RateLimitError{Name: name, Delay: l.untilToken(now)}
				obs.Observe(ctx, Event{Kind: EventRejected, Layer: "rate_limit", Name: name, Key: kk, Err: err})
				return nil, err
			}
			return next(ctx, req)
		}
	}
}
