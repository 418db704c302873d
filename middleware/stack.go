package middleware

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/registry"
)

// Stack declares the layers to put around an endpoint, one field per layer.
// Whatever order the fields are written in, [Stack.Build] always composes the
// layers in this order:
//
//	caller → Fallback → Measure → Budget → Bulkhead → AdaptiveLimit → RateLimit → CircuitBreaker → Retry → Hedge → Throttle → Timeout → Recover → endpoint
//
// A layer is in the stack when its field is set: a config that is not its
// type's zero value, Measure or Recover true, Budget above zero. A field left zero is
// no layer and costs nothing at run time. (So a retry with every default is
// written RetryConfig{MaxAttempts: 3}, or with any other field set.)
//
// A Stack is a value: its layers are held by value, so a copy is a stack of
// its own, and changing a copy's layers never changes the original. Build it
// as often as you like. Breakers are shared by name through their registry,
// so two endpoints built from stacks naming the same breaker share it.
type Stack struct {
	// Name names the stack: it is the default Name of every layer that
	// sets none (in events, logs and metrics), and so of its circuit
	// breaker. Default "".
	Name string

	// Fallback, outermost: serves a value, a function's result or another
	// endpoint when everything inside failed.
	Fallback FallbackConfig
	// Measure, just inside the fallback, reports every call with its
	// outcome and latency ([Measure], with the stack's Name and Observer),
	// for metrics: the calls the fallback then serves count as failures or
	// rejections here. Default false.
	Measure bool
	// Bulkhead bounds the calls in flight.
	Bulkhead BulkheadConfig
	// AdaptiveLimit bounds the calls in flight by a limit found from their
	// latency: for a server shedding the load it cannot serve.
	AdaptiveLimit AdaptiveLimitConfig
	// RateLimit bounds the call rate.
	RateLimit RateLimitConfig
	// CircuitBreaker stops calls to a failing service. Its Name (or the
	// stack's) names the breaker in the registry and is required.
	CircuitBreaker BreakerConfig
	// Retry retries transient failures; the breaker sees one outcome per
	// logical call, after the retries.
	Retry RetryConfig
	// Hedge, inside the retry, races a slow attempt with hedges, for the
	// calls its Idempotent approves: each hedge then goes through the
	// throttle and the attempt timeout of its own.
	Hedge HedgeConfig
	// Throttle, inside the retry and the hedge, throttles each attempt on the client's
	// side when the service accepts fewer than it is sent (the SRE book's
	// adaptive throttling): every attempt is a request to the service, and
	// a throttled attempt ends the retries (a rejection is never retried).
	Throttle ThrottleConfig
	// Timeout bounds each attempt.
	Timeout TimeoutConfig
	// Recover, innermost, turns a panic of the endpoint into a
	// [*PanicError] ([Recover], reporting to the stack's Observer with the
	// stack's Name), so the layers above see it as a failure: counted by
	// the breaker, retried, served by the fallback. Default false: a
	// panic goes on up, the layers releasing what they hold.
	Recover bool

	// Budget bounds the whole call, retries and waits included: a deadline
	// applied just inside the fallback (so the fallback can still serve
	// when it ends). Build rejects an attempt timeout that is not shorter
	// than the budget, and retries that cannot fit in it. Default: 0, no
	// budget (the caller's context decides).
	Budget time.Duration

	// Observer receives the events of every layer that sets no Observer
	// of its own, and the stack's warnings at Build. Default nil: a
	// [LogObserver] on [slog.Default].
	Observer Observer

	// Registry holds the stack's circuit breaker and shared rate limit,
	// unless their configs set a Registry of their own. Default nil: the
	// layers' default, [registry.Default]. A test gives each run a fresh
	// registry (endpointtest.Registry) so that no breaker state leaks from
	// one test, or one synctest bubble, to the next.
	Registry *registry.Registry
}

// The zero tests of the configs, for Stack: a layer is in a stack when its
// config is not the zero value.

func (c FallbackConfig) isZero() bool {
	return c.Value == nil && c.Endpoint == nil && c.Func == nil && len(c.FallbackOn) == 0 &&
		c.FallbackIf == nil && c.Name == "" && c.Observer == nil
}

func (c BulkheadConfig) isZero() bool {
	return c.MaxConcurrent == 0 && c.MaxWait == 0 && c.MaxQueue == 0 && c.Name == "" && c.Observer == nil
}

func (c AdaptiveLimitConfig) isZero() bool {
	return c.Algorithm == "" && c.InitialLimit == 0 && c.MinLimit == 0 && c.MaxLimit == 0 && c.Tolerance == 0 &&
		c.Window == 0 && c.MaxQueue == 0 && c.MaxWait == 0 && c.Name == "" && c.Observer == nil
}

func (c RateLimitConfig) isZero() bool {
	return c.Rate == 0 && c.Burst == 0 && !c.Wait && c.MaxWait == 0 && c.Limiter == nil &&
		c.Name == "" && !c.Shared && c.Registry == nil && c.Observer == nil
}

func (c BreakerConfig) isZero() bool {
	return c.Name == "" && c.FailureThreshold == 0 && c.SuccessThreshold == 0 && c.ResetTimeout == 0 &&
		len(c.FailOn) == 0 && c.FailIf == nil && !c.CountBusinessErrors && c.FailureRatio == 0 &&
		c.MinRequests == 0 && c.Window == 0 && c.WindowBuckets == 0 && c.SlowCallDuration == 0 && c.SlowCallRatio == 0 &&
		c.MaxResetTimeout == 0 && c.ResetBackoff == 0 && c.ResetJitter == 0 &&
		c.Registry == nil && c.Observer == nil
}

func (c RetryConfig) isZero() bool {
	return c.MaxAttempts == 0 && c.Delay == 0 && !c.NoDelay && c.Backoff == 0 && c.MaxDelay == 0 &&
		!c.DisableJitter && len(c.RetryOn) == 0 && c.RetryIf == nil && !c.RetryBusinessErrors &&
		c.OnRetry == nil && c.Budget == nil && c.Name == "" && c.Observer == nil
}

func (c HedgeConfig) isZero() bool {
	return c.Delay == 0 && c.Quantile == 0 && c.MaxHedges == 0 && c.Idempotent == nil && c.Budget == nil &&
		c.Name == "" && c.Observer == nil
}

func (c ThrottleConfig) isZero() bool {
	return c.K == 0 && c.Window == 0 && c.MinRequests == 0 && c.Accepted == nil && c.Rand == nil &&
		c.Name == "" && c.Observer == nil
}

func (c TimeoutConfig) isZero() bool {
	return c.Timeout == 0 && !c.Abandon && c.MaxAbandoned == 0 && c.Default == nil && !c.ReturnDefault &&
		c.Name == "" && c.Observer == nil
}

// layer is one configured layer of a stack, in the guide's order.
type layer struct {
	name  string // file-format name: "retry"
	desc  string // what String prints
	valid func() error
	build func() endpoint.Middleware
}

// inherit gives a layer the stack's Observer and Name where it sets none.
func (s Stack) inherit(o *Observer, name *string) {
	if *o == nil {
		*o = s.Observer
	}
	if *name == "" {
		*name = s.Name
	}
}

// layers returns the stack's configured layers, outermost first, with the
// stack's Observer and Name given to the layers that set none.
func (s Stack) layers() []layer {
	var ls []layer
	if c := s.Fallback; !c.isZero() {
		s.inherit(&c.Observer, &c.Name)
		ls = append(ls, layer{"fallback", describeFallback(c), c.Validate, func() endpoint.Middleware { return FallbackWith(c) }})
	}
	if s.Measure {
		c := MeasureConfig{Name: s.Name, Observer: s.Observer}
		ls = append(ls, layer{"measure", "measure", func() error { return nil }, func() endpoint.Middleware { return Measure(c) }})
	}
	if s.Budget > 0 {
		c := TimeoutConfig{Timeout: s.Budget, Name: "budget", Observer: s.Observer}
		ls = append(ls, layer{"budget", fmt.Sprintf("budget(%s)", s.Budget), c.Validate, func() endpoint.Middleware { return TimeoutWith(c) }})
	}
	if c := s.Bulkhead; !c.isZero() {
		s.inherit(&c.Observer, &c.Name)
		ls = append(ls, layer{"bulkhead", fmt.Sprintf("bulkhead(max_concurrent %d)", c.MaxConcurrent), c.Validate, func() endpoint.Middleware { return Bulkhead(c) }})
	}
	if c := s.AdaptiveLimit; !c.isZero() {
		s.inherit(&c.Observer, &c.Name)
		ls = append(ls, layer{"adaptive_limit", describeAdaptiveLimit(c), c.Validate, func() endpoint.Middleware { return AdaptiveLimit(c) }})
	}
	if c := s.RateLimit; !c.isZero() {
		s.inherit(&c.Observer, &c.Name)
		if c.Registry == nil {
			c.Registry = s.Registry
		}
		ls = append(ls, layer{"rate_limit", fmt.Sprintf("rate_limit(%g/s, burst %d)", c.Rate, c.Burst), c.Validate, func() endpoint.Middleware { return RateLimit(c) }})
	}
	if c := s.CircuitBreaker; !c.isZero() {
		s.inherit(&c.Observer, &c.Name)
		if c.Registry == nil {
			c.Registry = s.Registry
		}
		valid := func() error {
			if c.Name == "" {
				return errors.Join(&ConfigError{Path: "circuit_breaker.name", Field: "BreakerConfig.Name", Reason: "must be set (or the stack's Name): it names the breaker in the registry"}, c.Validate())
			}
			return c.Validate()
		}
		ls = append(ls, layer{"circuit_breaker", describeBreaker(c), valid, func() endpoint.Middleware { return CircuitBreaker(c.Name, c) }})
	}
	if c := s.Retry; !c.isZero() {
		s.inherit(&c.Observer, &c.Name)
		ls = append(ls, layer{"retry", describeRetry(c), c.Validate, func() endpoint.Middleware { return Retry(c) }})
	}
	if c := s.Hedge; !c.isZero() {
		s.inherit(&c.Observer, &c.Name)
		ls = append(ls, layer{"hedge", describeHedge(c), c.Validate, func() endpoint.Middleware { return Hedge(c) }})
	}
	if c := s.Throttle; !c.isZero() {
		s.inherit(&c.Observer, &c.Name)
		ls = append(ls, layer{"throttle", fmt.Sprintf("throttle(k %g)", c.kOrDefault()), c.Validate, func() endpoint.Middleware { return Throttle(c) }})
	}
	if c := s.Timeout; !c.isZero() {
		s.inherit(&c.Observer, &c.Name)
		ls = append(ls, layer{"timeout", describeTimeout(c), c.Validate, func() endpoint.Middleware { return TimeoutWith(c) }})
	}
	if s.Recover {
		name, obs := s.Name, s.Observer
		valid := func() error { // recoverWith does not check: a nil ObserverFunc would panic at the first panic
			p := problems{layer: "recover", goType: "Stack"}
			validateObserver(&p, obs)
			return p.err()
		}
		ls = append(ls, layer{"recover", "recover", valid, func() endpoint.Middleware { return recoverWith(name, obs) }})
	}
	return ls
}

// Validate reports every problem of every layer at once, each a
// [*ConfigError] naming its path ("retry.max_attempts") and matching
// [ErrInvalidConfig]; nil when the stack can be built.
func (s Stack) Validate() error {
	var errs []error
	for _, l := range s.layers() {
		errs = append(errs, l.valid())
	}
	errs = append(errs, s.crossErrors())
	return errors.Join(errs...)
}

// Build validates the stack and returns the middleware that applies its
// layers in the guide's order. It returns every problem at once (see
// [Stack.Validate]) and never panics on a bad configuration. A stack with no
// layers builds a middleware that returns the endpoint unchanged.
//
// Build also checks the layers against each other ([Stack.Validate] reports
// what can never work as errors) and logs what is merely risky
// ([Stack.Warnings]) to the stack's Observer.
func (s Stack) Build() (endpoint.Middleware, error) {
	ls := s.layers()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s.logWarnings(s.Warnings())
	var errs []error
	mws := make([]endpoint.Middleware, 0, len(ls))
	for _, l := range ls {
		mw, err := construct(l.build)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		mws = append(mws, mw)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	switch len(mws) {
	case 0:
		return func(next endpoint.Endpoint) endpoint.Endpoint {
			mustEndpoint("stack", next)
			return next
		}, nil
	case 1:
		return mws[0], nil
	}
	return endpoint.Chain(mws[0], mws[1:]...), nil
}

// Apply builds the stack and applies it to next.
func (s Stack) Apply(next endpoint.Endpoint) (endpoint.Endpoint, error) {
	if next == nil {
		return nil, &ConfigError{Path: "endpoint", Reason: "must not be nil"}
	}
	mw, err := s.Build()
	if err != nil {
		return nil, err
	}
	return mw(next), nil
}

// construct calls build, turning a constructor's configuration panic (one
// that only Build-time state can cause, such as a breaker name already taken
// with other settings) into an error.
func construct(build func() endpoint.Middleware) (mw endpoint.Middleware, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok && errors.Is(e, ErrInvalidConfig) {
				err = e
				return
			}
			panic(r)
		}
	}()
	return build(), nil
}

// String returns the stack's layers in the order they run, for example
// "fallback(value) → circuit_breaker(embedding_api) → retry(3 attempts) → endpoint".
func (s Stack) String() string {
	var b strings.Builder
	for _, l := range s.layers() {
		b.WriteString(l.desc)
		b.WriteString(" → ")
	}
	b.WriteString("endpoint")
	return b.String()
}

func describeFallback(c FallbackConfig) string {
	switch {
	case c.Endpoint != nil:
		return "fallback(endpoint)"
	case c.Func != nil:
		return "fallback(func)"
	}
	if v := describeValue(c.Value, ""); v != "" {
		return "fallback(value " + v + ")"
	}
	return "fallback(value)"
}

func describeBreaker(c BreakerConfig) string {
	return fmt.Sprintf("circuit_breaker(%s)", c.Name)
}

func describeRetry(c RetryConfig) string {
	n := c.MaxAttempts
	if n == 0 {
		n = retryDefaultMaxAttempts
	}
	if c.Budget != nil {
		return fmt.Sprintf("retry(%d attempts, %s)", n, c.Budget)
	}
	return fmt.Sprintf("retry(%d attempts)", n)
}

func describeAdaptiveLimit(c AdaptiveLimitConfig) string {
	d := c.withDefaults()
	return fmt.Sprintf("adaptive_limit(%s, %d in [%d, %d])", d.Algorithm, d.InitialLimit, d.MinLimit, d.MaxLimit)
}

func describeTimeout(c TimeoutConfig) string {
	mode := ""
	if c.Abandon {
		mode = ", abandon"
	}
	return fmt.Sprintf("timeout(%s%s)", c.Timeout, mode)
}

// WithFallback returns a copy of s whose fallback calls fb in place of a
// fallback value: how a fallback endpoint, which a policy file cannot hold,
// is supplied in code to a stack loaded by name. The fallback's other
// settings (filters, name, observer) are kept; a stack with no fallback gets
// one that falls back on every error.
func (s Stack) WithFallback(fb endpoint.Endpoint) Stack {
	c := s.Fallback
	c.Value, c.Func, c.Endpoint = nil, nil, fb
	s.Fallback = c
	return s
}
