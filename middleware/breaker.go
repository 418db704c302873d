package middleware

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/callctx"
	"github.com/resiliencekit/resilience/registry"
)

// CircuitOpenError is the error a [CircuitBreaker] returns when its breaker
// rejects a call without making it: the breaker is open, or half-open with
// every probe slot taken. It is [registry.CircuitOpenError] (a type alias):
// Service names the breaker, State is the state that rejected the call,
// HalfOpenAt is when the breaker half-opens and the RetryAfter method returns
// the time left until then. It matches [ErrCircuitOpen] and unwraps to
// gobreaker's ErrOpenState or ErrTooManyRequests. One value is shared by every
// call rejected in one open spell: treat it as read-only.
type CircuitOpenError = registry.CircuitOpenError

// BreakerConfig configures a [CircuitBreaker]. The zero value is the guide's
// breaker: open on the 5th consecutive failure, half-open 60s later, close
// after 2 successful probes, every error a failure, registered in
// [registry.Default], state changes logged with [slog.Default].
//
// The fields that shape the breaker (thresholds, timeout, ratio rule) are
// its settings: every CircuitBreaker of one name in one registry must give
// the same ones. FailOn and FailIf belong to each CircuitBreaker, not to the
// shared breaker: they classify the calls of that middleware only, so two
// middlewares may share a breaker with different filters.
type BreakerConfig struct {
	// Name is the breaker's name in its registry, used when the name given
	// to CircuitBreaker is empty. Default none: one of the two must be set.
	Name string
	// FailureThreshold is the number of consecutive failures that opens the
	// breaker: it opens on the FailureThreshold-th. Default 5.
	FailureThreshold int
	// SuccessThreshold is the number of successful probes that close a
	// half-open breaker, and how many probes half-open admits at once.
	// Default 2.
	SuccessThreshold int
	// ResetTimeout is how long the breaker stays open: at exactly
	// ResetTimeout after opening it is half-open, to the nanosecond.
	// Default 60s; 0 or between 2ns and 100 years (gobreaker half-opens
	// strictly after its own timeout, so 1ns cannot be exact and is
	// refused).
	ResetTimeout time.Duration
	// FailOn lists the errors that count as failures, matched with
	// [errors.Is] (the guide's exceptions). Default: every error, unless
	// FailIf is set. An error that matches neither FailOn nor FailIf is
	// returned to the caller and counts neither as a success nor as a
	// failure.
	FailOn []error
	// FailIf reports whether an error counts as a failure; an error counts
	// when it matches FailOn or FailIf. Default nil (see FailOn).
	FailIf func(error) bool

	// CountBusinessErrors makes a response that implements go-kit's
	// endpoint.Failer with a non-nil Failed() count as a call's outcome,
	// classified by FailOn and FailIf like an error; the response still
	// reaches the caller unchanged. Default: false, business errors are
	// successes to the breaker (go-kit's convention: they are outcomes, not
	// faults of the service).
	CountBusinessErrors bool

	// FailureRatio, when above zero, adds the ratio rule for busy services:
	// the breaker also opens when failures / (successes + failures) over the
	// rolling Window reaches FailureRatio with at least MinRequests finished
	// calls in the window. Between 0 and 1. Default 0: the consecutive rule
	// alone. With the ratio rule every call goes through gobreaker, under
	// the breaker's lock (the consecutive rule has a lock-free fast path).
	FailureRatio float64
	// MinRequests is the number of finished calls the window must hold
	// before the ratio rule may trip. Default 10.
	MinRequests int
	// Window is the length of the ratio rule's rolling window. Default 60s.
	Window time.Duration
	// WindowBuckets is how many buckets the window rolls by: at least 2.
	// Default 10.
	WindowBuckets int
	// SlowCallDuration and SlowCallRatio add the slow-call rule
	// (resilience4j, sentinel): a call that succeeds but takes
	// SlowCallDuration or longer is slow, and the breaker also opens when
	// the share of slow calls among the finished calls of the rolling
	// Window (with at least MinRequests of them) reaches SlowCallRatio. A
	// slow call is still returned to the caller as the success it is; a
	// slow half-open probe opens the breaker again. Both or neither;
	// SlowCallRatio in (0, 1]. Default: off. With it each call reads the
	// clock twice and goes through the breaker's lock; a store-shared
	// breaker refuses it.
	SlowCallDuration time.Duration
	SlowCallRatio    float64
	// MaxResetTimeout, when above zero, makes the open duration grow on
	// repeated opens: each time a half-open breaker opens again (a probe
	// failed), its next spell is the previous one's times ResetBackoff, up
	// to MaxResetTimeout; after the breaker closes, the first spell is
	// ResetTimeout again (Polly's BreakDurationGenerator). At least
	// ResetTimeout. Default 0: every spell is ResetTimeout. A store-shared
	// breaker refuses it.
	MaxResetTimeout time.Duration
	// ResetBackoff is the factor of each repeated open, between 1 and 1000;
	// used only with MaxResetTimeout. Default 2.
	ResetBackoff float64
	// ResetJitter, when above zero, shortens each open spell by a random
	// share of up to ResetJitter of it, drawn afresh per spell, so that
	// replicas that opened together do not half-open in step; the spell
	// still ends exactly at the [registry.CircuitOpenError]'s HalfOpenAt.
	// At least 0, below 1. Default 0. A store-shared breaker refuses it.
	ResetJitter float64
	// Registry holds the breaker. Default nil: [registry.Default].
	Registry *registry.Registry
	// Observer receives an [EventStateChange] for each state change of the
	// breaker (Layer "circuit_breaker", Name, From and To: "closed", "open",
	// "half-open"). Default nil: a [LogObserver] on [slog.Default].
	Observer Observer
}

// Validate returns nil if c is valid, and else every problem at once: an
// [errors.Join] of [*ConfigError], each matching [ErrInvalidConfig]. The
// name is checked only when set (see [CircuitBreaker] for the empty name).
func (c BreakerConfig) Validate() error {
	p := problems{layer: "circuit_breaker", goType: "BreakerConfig"}
	c.validate(&p)
	return p.err()
}

func (c BreakerConfig) validate(p *problems) {
	if c.Name != "" {
		if err := registry.CheckName(c.Name); err != nil {
			p.add("name", "Name", c.Name, fmt.Sprintf("must be printable and at most %d bytes (%v)", registry.MaxNameLen, err))
		}
	}
	if c.FailureThreshold < 0 {
		p.add("failure_threshold", "FailureThreshold", c.FailureThreshold, "must not be negative")
	}
	if c.SuccessThreshold < 0 || c.SuccessThreshold > math.MaxUint32 {
		p.add("success_threshold", "SuccessThreshold", c.SuccessThreshold, "must be between 0 and 4294967295")
	}
	if c.ResetTimeout < 0 || c.ResetTimeout == 1 || c.ResetTimeout > registry.MaxDuration {
		p.add("reset_timeout", "ResetTimeout", c.ResetTimeout, fmt.Sprintf("must be 0 (the default) or between 2ns and %v", registry.MaxDuration))
	}
	for i, e := range c.FailOn {
		if e == nil {
			p.add(fmt.Sprintf("fail_on[%d]", i), fmt.Sprintf("FailOn[%d]", i), nil, "must not be nil")
		}
	}
	if math.IsNaN(c.FailureRatio) || c.FailureRatio < 0 || c.FailureRatio > 1 {
		p.add("failure_ratio", "FailureRatio", c.FailureRatio, "must be between 0 and 1")
	}
	if c.MinRequests < 0 {
		p.add("min_requests", "MinRequests", c.MinRequests, "must not be negative")
	}
	if c.Window < 0 || c.Window > registry.MaxDuration {
		p.add("window", "Window", c.Window, fmt.Sprintf("must be between 0 and %v", registry.MaxDuration))
	}
	if c.WindowBuckets < 0 || c.WindowBuckets == 1 || c.WindowBuckets > registry.MaxWindowBuckets {
		p.add("window_buckets", "WindowBuckets", c.WindowBuckets, fmt.Sprintf("must be 0 (the default) or between 2 and %d", registry.MaxWindowBuckets))
	}
	switch {
	case math.IsNaN(c.SlowCallRatio) || c.SlowCallRatio < 0 || c.SlowCallRatio > 1:
		p.add("slow_call_ratio", "SlowCallRatio", c.SlowCallRatio, "must be between 0 and 1")
	case c.SlowCallDuration < 0 || c.SlowCallDuration > registry.MaxDuration:
		p.add("slow_call_duration", "SlowCallDuration", c.SlowCallDuration, fmt.Sprintf("must be between 0 and %v", registry.MaxDuration))
	case c.SlowCallRatio > 0 && c.SlowCallDuration == 0:
		p.add("slow_call_duration", "SlowCallDuration", c.SlowCallDuration, "must be set with slow_call_ratio: the latency from which a call is slow")
	case c.SlowCallRatio == 0 && c.SlowCallDuration > 0:
		p.add("slow_call_ratio", "SlowCallRatio", c.SlowCallRatio, "must be set with slow_call_duration: the share of slow calls that opens the breaker")
	}
	if c.MaxResetTimeout < 0 || c.MaxResetTimeout > registry.MaxDuration {
		p.add("max_reset_timeout", "MaxResetTimeout", c.MaxResetTimeout, fmt.Sprintf("must be between 0 and %v", registry.MaxDuration))
	} else if rt := c.Settings().WithDefaults().ResetTimeout; c.MaxResetTimeout > 0 && c.MaxResetTimeout < rt {
		p.add("max_reset_timeout", "MaxResetTimeout", c.MaxResetTimeout, fmt.Sprintf("must be 0 (off) or at least reset_timeout (%v)", rt))
	}
	switch {
	case math.IsNaN(c.ResetBackoff) || (c.ResetBackoff != 0 && (c.ResetBackoff < 1 || c.ResetBackoff > registry.MaxResetBackoff)):
		p.add("reset_backoff", "ResetBackoff", c.ResetBackoff, fmt.Sprintf("must be 0 (the default, 2) or between 1 and %d", registry.MaxResetBackoff))
	case c.ResetBackoff != 0 && c.MaxResetTimeout == 0:
		p.add("reset_backoff", "ResetBackoff", c.ResetBackoff, "is used only with max_reset_timeout: set the longest open duration too")
	}
	if math.IsNaN(c.ResetJitter) || c.ResetJitter < 0 || c.ResetJitter >= 1 {
		p.add("reset_jitter", "ResetJitter", c.ResetJitter, "must be at least 0 and below 1")
	}
	validateObserver(p, c.Observer)
	if len(p.errs) == 0 {
		if err := c.Settings().Validate(); err != nil {
			p.add("window", "Window", c.Window, fmt.Sprintf("must be at least window_buckets nanoseconds (%v)", err))
		}
	}
}

// Settings returns the breaker settings c gives the registry: the fields
// that shape the breaker (thresholds, reset timeout, ratio rule). Two
// BreakerConfigs of one name must give the same Settings, or the registry
// refuses the second (see [registry.Registry.Breaker]).
func (c BreakerConfig) Settings() registry.Settings {
	return registry.Settings{
		FailureThreshold: c.FailureThreshold,
		SuccessThreshold: c.SuccessThreshold,
		ResetTimeout:     c.ResetTimeout,
		FailureRatio:     c.FailureRatio,
		MinRequests:      c.MinRequests,
		Window:           c.Window,
		WindowBuckets:    c.WindowBuckets,
		SlowCallRatio:    c.SlowCallRatio,
		SlowCallDuration: c.SlowCallDuration,
		MaxResetTimeout:  c.MaxResetTimeout,
		ResetBackoff:     c.ResetBackoff,
		ResetJitter:      c.ResetJitter,
	}
}

// CircuitBreaker returns a middleware that guards an endpoint with the
// circuit breaker called name in cfg.Registry (default [registry.Default]),
// creating it on first use. Every
// CircuitBreaker of one name shares one breaker. An empty name falls back to
// cfg.Name.
//
// A call the breaker admits reaches the endpoint, and its error (if any) is
// returned unchanged; the breaker counts it as a failure when it matches
// cfg.FailOn or cfg.FailIf (any error when both are unset), and as a success
// when the error is nil. An error that is not a failure counts neither way,
// and so does a call whose caller has gone: once the caller's context is
// done (cancelled, with or without a cause, or past its deadline), whatever
// the error says, and an error matching context.Canceled; a cancelled
// half-open probe frees its slot at once. A call cut by a deadline of the
// library's own (a [Stack]'s Budget, or a [Timeout] layer outside this one)
// is a failure of the service: it is classified as the timeout it is (it
// matches [ErrTimeout] and context.DeadlineExceeded for FailOn and FailIf).
// A panic in the endpoint counts as one failure and goes on up; a panic in
// FailIf, a class's matcher or a business error's Failed method counts
// neither way, frees the ticket (a half-open probe slot) and goes on up. A call the breaker rejects never reaches the endpoint: it
// returns a [*CircuitOpenError], which matches [ErrCircuitOpen] and which the
// retry layer never retries.
//
// Each state change is reported once to cfg.Observer (or logged with
// cfg.Logger) as an [EventStateChange], outside every lock, on the goroutine
// that caused it: the caller's for a change a call makes, the breaker
// timer's for the move to half-open when no call comes first (see
// [registry.Config.Listeners], which also says what a panicking observer does).
// Several CircuitBreakers of one name with the same observer report each
// change once: the same comparable value, the same [ObserverFunc] value, or
// the default logger on the same Logger.
//
// CircuitBreaker panics, at construction, with an error matching
// [ErrInvalidConfig] when cfg is invalid, when both names are empty, when the
// name is refused by the registry (not printable, too long, or past the
// registry's cap on names), or when the name already has a breaker with other
// settings (the message names both).
//
// A construction subscribes its observer to the shared breaker for as long
// as the middleware, or an endpoint it wrapped, is reachable: building a
// middleware (or a [Stack]) again and again multiplies no event, and once
// the garbage collector has found the middlewares unreachable their
// subscriptions are gone. Still, build the middleware once per endpoint, not
// per request. For names taken from request data, use a [registry.Registry]
// directly, which returns errors instead of panicking.
//
// On the success path of a closed breaker with no failure streak, and for
// the rejections of an open breaker, the middleware takes no lock, reads no
// clock and allocates nothing (bench/RESULTS.md has the figures).
func CircuitBreaker(name string, cfg BreakerConfig) endpoint.Middleware {
	if name != "" {
		cfg.Name = name
	}
	name = cfg.Name
	p := problems{layer: "circuit_breaker", goType: "BreakerConfig"}
	if name == "" {
		p.add("name", "Name", nil, "must be set (or pass a name to CircuitBreaker)")
	}
	cfg.validate(&p)
	mustValid(p.err())
	reg := cfg.Registry
	if reg == nil {
		reg = registry.Default
	}
	b, err := reg.Breaker(name, cfg.Settings())
	if err != nil {
		panic(fmt.Errorf("%w: circuit_breaker.name: %w", ErrInvalidConfig, err))
	}
	cl := &classifier{filter: newFilter(cfg.FailOn, cfg.FailIf)}
	// One subscription per observer and breaker (the breaker tells the
	// same observer value apart, an ObserverFunc included), held for as
	// long as this middleware or an endpoint it wrapped is reachable: cl is
	// captured by all of them, and its cleanup cancels the hold.
	obs := observer(cfg.Observer)
	cancel := b.Subscribe(obs, func(c registry.StateChange) {
		obs.Observe(context.Background(), Event{
			Kind:  EventStateChange,
			Layer: "circuit_breaker",
			Name:  c.Name,
			From:  c.From,
			To:    c.To,
		})
	})
	runtime.AddCleanup(cl, func(cancel func()) { cancel() }, cancel)
	// Two closures rather than one with a branch: the common one, below,
	// keeps the success path as short as the benchmark targets need.
	if cfg.CountBusinessErrors || cfg.SlowCallDuration > 0 {
		cl.business, cl.slow = cfg.CountBusinessErrors, cfg.SlowCallDuration
		return func(next endpoint.Endpoint) endpoint.Endpoint {
			mustEndpoint("circuit_breaker", next)
			return func(ctx context.Context, request any) (any, error) {
				return cl.call(ctx, b, next, request)
			}
		}
	}
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("circuit_breaker", next)
		return func(ctx context.Context, request any) (response any, err error) {
			t, ok := b.AllowFast()
			if !ok {
				if t, err = b.AllowContext(ctx); err != nil {
					return nil, err
				}
			}
			// o is what the deferred call records if a panic goes through
			// here, so that the ticket (a half-open probe slot) is always
			// given back and the panic then goes on: a panic of the
			// endpoint is one failure; one of the classifier (FailIf, a
			// class's matcher, a Failed method), once the endpoint has
			// returned, is no verdict. outcomeRecorded: given back already.
			o := registry.Failure
			defer func() {
				if o != outcomeRecorded {
					b.Done(t, o)
				}
			}()
			response, err = next(ctx, request)
			o = registry.Excluded
			if err != nil {
				cl.failed(ctx, b, t, err, &o)
				return
			}
			o = outcomeRecorded
			b.Done(t, registry.Success) // inlined: one atomic load on the fast path
			return
		}
	}
}

// classifier turns a call's error into the outcome the breaker records.
type classifier struct {
	filter   filter        // FailOn, FailIf
	business bool          // CountBusinessErrors
	slow     time.Duration // SlowCallDuration; 0: off
}

// call makes one call through b with every rule of the breaker (business
// errors and slow calls included): the general path, which the keyed
// breaker takes too.
func (c *classifier) call(ctx context.Context, b *registry.Breaker, next endpoint.Endpoint, request any) (response any, err error) {
	t, ok := b.AllowFast()
	if !ok {
		if t, err = b.AllowContext(ctx); err != nil {
			return nil, err
		}
	}
	var started time.Time
	if c.slow > 0 {
		started = time.Now()
	}
	o := registry.Failure // what a panic records; see CircuitBreaker's closure
	defer func() {
		if o != outcomeRecorded {
			b.Done(t, o)
		}
	}()
	response, err = next(ctx, request)
	o = registry.Excluded
	if err == nil {
		if c.business {
			err = businessError(response) // the user's Failed(): it may panic
		}
		if err == nil {
			o = outcomeRecorded
			success := registry.Success
			if c.slow > 0 && time.Since(started) >= c.slow {
				success = registry.Slow
			}
			b.Done(t, success)
			return response, nil
		}
		c.failed(ctx, b, t, err, &o)
		return response, nil // the business error stays in the response
	}
	c.failed(ctx, b, t, err, &o)
	return response, err
}

// outcomeRecorded marks a ticket already given back, in the closures above.
const outcomeRecorded registry.Outcome = 255

// failed records the outcome of a call that returned err, and sets *o to
// outcomeRecorded just before, once the classifier has decided (it calls
// user code, which may panic: the closure's deferred call then gives the
// ticket back). It is kept out of line, so that the success path stays
// small.
//
//go:noinline
func (c *classifier) failed(ctx context.Context, b *registry.Breaker, t registry.Ticket, err error, o *registry.Outcome) {
	out := c.outcome(ctx, err)
	*o = outcomeRecorded
	b.Done(t, out)
}

// outcome classifies a failed call by the package's one rule
// (internal/callctx): no verdict when the caller has gone, whatever err
// says, or on a cancellation; no verdict on the toolkit's own rejections;
// and a call cut by a deadline of the library's own (a stack's Budget, an
// inner Timeout) is classified as the timeout it is, so it counts as a
// failure unless FailOn and FailIf exclude timeouts.
func (c *classifier) outcome(ctx context.Context, err error) registry.Outcome {
	if callctx.Neutral(ctx, err) {
		return registry.Excluded // the caller gave up: no verdict on the service
	}
	if rejection(err) {
		return registry.Excluded // our own load shedding (an inner limiter, bulkhead or breaker), not a fault of the service
	}
	if c.filter.matches(err) || (callctx.Own(ctx) && c.filter.matches(context.Cause(ctx))) {
		return registry.Failure
	}
	return registry.Excluded
}
