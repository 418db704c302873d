package chaos

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

// ErrInjected is the error a [Chaos] layer injects when its config sets no
// Error of its own, and the value it panics with when it sets no PanicValue.
var ErrInjected = errors.New("chaos: injected fault")

// chaosDefaultLatency is Polly's default injected latency.
const chaosDefaultLatency = 30 * time.Second

// Config configures a [Chaos] layer: which faults it injects and how
// often. The zero value injects nothing. Each rate is the fraction of calls,
// from 0 (never) to 1 (every call), that get that fault; the three draws are
// independent, made in the order latency, panic, error.
type Config struct {
	// ErrorRate is the fraction of calls that fail with Error without
	// reaching the endpoint. Between 0 and 1. Default 0.
	ErrorRate float64
	// Error is the error injected, returned as it is (so that classifiers
	// such as errclass.Connection see it: inject a [*net.OpError] or
	// [io.ErrUnexpectedEOF] to rehearse a connection failure). Default nil:
	// [ErrInjected].
	Error error
	// LatencyRate is the fraction of calls delayed by Latency before they
	// go on (to the panic and error draws, then the endpoint). The wait
	// honours the context: when it ends first, the call returns ctx.Err()
	// without reaching the endpoint. Between 0 and 1. Default 0.
	LatencyRate float64
	// Latency is the delay injected. Default 0: 30s, as in Polly. Negative
	// is an error.
	Latency time.Duration
	// PanicRate is the fraction of calls that panic with PanicValue without
	// reaching the endpoint. Between 0 and 1. Default 0.
	PanicRate float64
	// PanicValue is the value injected panics carry. Default nil:
	// [ErrInjected].
	PanicValue any
	// Seed, when not zero, makes the draws a fixed sequence: the n-th draw
	// after construction (or after [Chaos.Set]) is the same on every run, so
	// a sequential test or scenario sees the same faults every time. Draws
	// are made only for rates strictly between 0 and 1. Default 0: draws
	// from math/rand/v2's global source.
	Seed uint64
	// Rand, when set, supplies the draws: numbers in [0, 1), a draw below a
	// rate injecting that fault. It must be safe for concurrent use. It is
	// an error to set both Rand and Seed. Default nil (see Seed).
	Rand func() float64
	// Name names the layer in its events (Event.Name). Default "".
	Name string
	// Observer receives a [middleware.EventChaos] for every fault
	// injected. Default nil: a [middleware.LogObserver] on [slog.Default].
	Observer middleware.Observer
}

// Validate returns nil if c is valid, and else every problem at once: an
// [errors.Join] of [*middleware.ConfigError], each matching
// [middleware.ErrInvalidConfig] and naming the field.
func (c Config) Validate() error {
	var errs []error
	add := func(path, field string, v any, reason string) {
		errs = append(errs, &middleware.ConfigError{Path: "chaos." + path, Field: "chaos.Config." + field, Value: v, Reason: reason})
	}
	rate := func(path, field string, v float64) {
		if math.IsNaN(v) || v < 0 || v > 1 {
			add(path, field, v, "must be between 0 and 1")
		}
	}
	rate("error_rate", "ErrorRate", c.ErrorRate)
	rate("latency_rate", "LatencyRate", c.LatencyRate)
	rate("panic_rate", "PanicRate", c.PanicRate)
	if c.Latency < 0 {
		add("latency", "Latency", c.Latency, "must not be negative (0 means the default 30s)")
	}
	if c.Seed != 0 && c.Rand != nil {
		add("seed", "Seed", c.Seed, "must be zero when Rand is set")
	}
	if f, ok := c.Observer.(middleware.ObserverFunc); ok && f == nil {
		add("observer", "Observer", nil, "is a nil ObserverFunc (leave it nil for the default)")
	}
	return errors.Join(errs...)
}

// Chaos injects faults into the calls of the endpoints its [Chaos.Middleware]
// wraps, in the manner of Polly's chaos strategies: errors, latency and
// panics, each at its own rate (see [Config]). Use it to rehearse
// failure on purpose: in your own tests, to drive the resilience layers
// above it through their failure paths with real (not scripted) endpoints,
// and on game days, to degrade one dependency of a running service and watch
// its breakers, fallbacks and dashboards respond.
//
// Put it innermost, right around the endpoint it degrades, so that every
// layer above sees its faults as the endpoint's:
//
//	c := chaos.New(chaos.Config{ErrorRate: 0.2})
//	ep = mw(c.Middleware()(ep))
//
// Its rates change at run time with [Chaos.Set], and [Chaos.Disable] turns
// it off at once (an off or all-zero Chaos allocates nothing). A Chaos is safe for concurrent use: calls in
// flight keep the configuration they started with.
type Chaos struct {
	state   atomic.Pointer[chaosState]
	enabled atomic.Bool
}

// chaosState is one configuration of a Chaos, resolved.
type chaosState struct {
	cfg                         Config
	errRate, latRate, panicRate float64
	err                         error
	latency                     time.Duration
	panicValue                  any
	active                      bool // some rate is above zero
	obs                         middleware.Observer
	draws                       atomic.Uint64 // for Seed
}

// New returns an enabled Chaos injecting the faults cfg describes. It
// panics with cfg.Validate's error (matching [middleware.ErrInvalidConfig])
// when cfg is not valid.
func New(cfg Config) *Chaos {
	c := new(Chaos)
	if err := c.Set(cfg); err != nil {
		panic(err)
	}
	c.enabled.Store(true)
	return c
}

// Set replaces the configuration of c, for the calls that start from now
// on, and restarts a seeded sequence of draws. It returns cfg.Validate's
// error, leaving c unchanged, when cfg is not valid.
func (c *Chaos) Set(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s := &chaosState{
		cfg:        cfg,
		errRate:    cfg.ErrorRate,
		latRate:    cfg.LatencyRate,
		panicRate:  cfg.PanicRate,
		err:        cfg.Error,
		latency:    cfg.Latency,
		panicValue: cfg.PanicValue,
		obs:        cfg.Observer,
	}
	if s.obs == nil {
		s.obs = middleware.LogObserver(nil)
	}
	if s.err == nil {
		s.err = ErrInjected
	}
	if s.latency == 0 {
		s.latency = chaosDefaultLatency
	}
	if s.panicValue == nil {
		s.panicValue = ErrInjected
	}
	s.active = s.errRate > 0 || s.latRate > 0 || s.panicRate > 0
	c.state.Store(s)
	return nil
}

// Config returns the configuration c was last given.
func (c *Chaos) Config() Config { return c.state.Load().cfg }

// Enable turns fault injection on (a new Chaos is on).
func (c *Chaos) Enable() { c.enabled.Store(true) }

// Disable turns fault injection off: calls pass straight through until
// [Chaos.Enable]. The configuration is kept.
func (c *Chaos) Disable() { c.enabled.Store(false) }

// Enabled reports whether fault injection is on.
func (c *Chaos) Enabled() bool { return c.enabled.Load() }

// Middleware returns a middleware that injects c's faults, as configured at
// the time of each call, into the calls of the endpoint it wraps. A call that
// draws latency waits (or returns ctx.Err() if the context ends first); one
// that draws a panic panics with the PanicValue; one that draws an error
// returns the Error with a nil response; the others reach the endpoint. Each
// fault is reported once as a [middleware.EventChaos] (Layer "chaos") before
// it takes effect.
func (c *Chaos) Middleware() endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		if next == nil {
			panic(&middleware.ConfigError{Path: "chaos.endpoint", Reason: "must not be nil"})
		}
		return func(ctx context.Context, req any) (any, error) {
			s := c.state.Load()
			if !s.active || !c.enabled.Load() {
				return next(ctx, req)
			}
			return s.call(ctx, next, req)
		}
	}
}

// call injects the faults drawn for one call.
func (s *chaosState) call(ctx context.Context, next endpoint.Endpoint, req any) (any, error) {
	if s.draw(s.latRate) {
		s.obs.Observe(ctx, middleware.Event{Kind: middleware.EventChaos, Layer: "chaos", Name: s.cfg.Name, Wait: s.latency})
		t := time.NewTimer(s.latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if s.draw(s.panicRate) {
		s.obs.Observe(ctx, middleware.Event{Kind: middleware.EventChaos, Layer: "chaos", Name: s.cfg.Name, Err: &middleware.PanicError{Value: s.panicValue}})
		panic(s.panicValue)
	}
	if s.draw(s.errRate) {
		s.obs.Observe(ctx, middleware.Event{Kind: middleware.EventChaos, Layer: "chaos", Name: s.cfg.Name, Err: s.err})
		return nil, s.err
	}
	return next(ctx, req)
}

// draw reports whether a fault of the given rate happens to this call. Rates
// of 0 and 1 decide without a draw.
func (s *chaosState) draw(rate float64) bool {
	switch {
	case rate <= 0:
		return false
	case rate >= 1:
		return true
	case s.cfg.Rand != nil:
		return s.cfg.Rand() < rate
	case s.cfg.Seed != 0:
		return seeded(s.cfg.Seed, s.draws.Add(1)) < rate
	}
	return rand.Float64() < rate
}

// seeded returns the n-th number in [0, 1) of the SplitMix64 sequence of
// seed: a counter-based generator, so concurrent draws need no lock.
func seeded(seed, n uint64) float64 {
	z := seed + n*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}
