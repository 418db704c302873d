package middleware

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/registry"
)

// Stack declares the layers to put around an endpoint, one optional field per
// layer. Whatever order the fields are written in, [Stack.Build] always
// composes the layers in the guide's order:
//
//	caller → Fallback → Bulkhead → RateLimit → CircuitBreaker → Retry → Timeout → endpoint
//
// A nil field is no layer and costs nothing at run time. The same struct,
// with its json tags, is the policy-file format that [LoadStacks] reads.
//
// A Stack is a plain value: build it as often as you like. Breakers are
// shared by name through their registry, so two endpoints built from stacks
// naming the same breaker share it, as the guide's "chromadb" breaker is
// shared.
type Stack struct {
	// Name names the stack: it is the default Name of every layer that
	// sets none (in events, logs and metrics), and so of its circuit
	// breaker. LoadStacks sets it to the stack's key in the file when the
	// file does not. Default "".
	Name string `json:"name,omitempty"`

	// Fallback, outermost: serves a value, a function's result or another
	// endpoint when everything inside failed.
	Fallback *FallbackConfig `json:"fallback,omitempty"`
	// Measure, just inside the fallback, reports every call with its
	// outcome and latency ([Measure]), for metrics: the calls the fallback
	// then serves count as failures or rejections here.
	Measure *MeasureConfig `json:"measure,omitempty"`
	// Bulkhead bounds the calls in flight.
	Bulkhead *BulkheadConfig `json:"bulkhead,omitempty"`
	// RateLimit bounds the call rate.
	RateLimit *RateLimitConfig `json:"rate_limit,omitempty"`
	// CircuitBreaker stops calls to a failing service. Its Name names the
	// breaker in the registry and is required here.
	CircuitBreaker *BreakerConfig `json:"circuit_breaker,omitempty"`
	// Retry retries transient failures; the breaker sees one outcome per
	// logical call, after the retries.
	Retry *RetryConfig `json:"retry,omitempty"`
	// Timeout bounds each attempt.
	Timeout *TimeoutConfig `json:"timeout,omitempty"`

	// Budget bounds the whole call, retries and waits included: a deadline
	// applied just inside the fallback (so the fallback can still serve
	// when it ends). Build rejects an attempt timeout that is not shorter
	// than the budget, and retries that cannot fit in it. Default: 0, no
	// budget (the caller's context decides).
	Budget time.Duration `json:"budget,omitempty"`

	// Observer receives the events of every layer that sets neither its own
	// Observer nor its own Logger. Default: a LogObserver on Logger.
	Observer Observer `json:"-"`
	// Logger logs the events of every layer that sets neither its own
	// Observer nor its own Logger, when Observer is nil. Default:
	// slog.Default().
	Logger *slog.Logger `json:"-"`

	// Registry holds the stack's circuit breaker and shared rate limit,
	// unless their configs set a Registry of their own. Default nil: the
	// layers' default, [registry.Default]. A test gives each run a fresh
	// registry (endpointtest.Registry) so that no breaker state leaks from
	// one test, or one synctest bubble, to the next.
	Registry *registry.Registry `json:"-"`
}

// layer is one configured layer of a stack, in the guide's order.
type layer struct {
	name  string // file-format name: "retry"
	desc  string // what String prints
	valid func() error
	build func() endpoint.Middleware
}

// layers returns the stack's configured layers, outermost first, with the
// stack's Observer and Logger given to the layers that set neither.
func (s Stack) layers() []layer {
	var ls []layer
	inherit := func(o *Observer, l **slog.Logger, name *string) {
		if *o == nil && *l == nil {
			*o, *l = s.Observer, s.Logger
		}
		if *name == "" {
			*name = s.Name
		}
	}
	if s.Fallback != nil {
		c := *s.Fallback
		inherit(&c.Observer, &c.Logger, &c.Name)
		ls = append(ls, layer{"fallback", describeFallback(c), c.Validate, func() endpoint.Middleware { return FallbackWith(c) }})
	}
	if s.Measure != nil {
		c := *s.Measure
		inherit(&c.Observer, &c.Logger, &c.Name)
		ls = append(ls, layer{"measure", "measure", func() error { return nil }, func() endpoint.Middleware { return Measure(c) }})
	}
	if s.Budget > 0 {
		c := TimeoutConfig{Timeout: s.Budget, Name: "budget", Observer: s.Observer, Logger: s.Logger}
		ls = append(ls, layer{"budget", fmt.Sprintf("budget(%s)", s.Budget), c.Validate, func() endpoint.Middleware { return TimeoutWith(c) }})
	}
	if s.Bulkhead != nil {
		c := *s.Bulkhead
		inherit(&c.Observer, &c.Logger, &c.Name)
		ls = append(ls, layer{"bulkhead", fmt.Sprintf("bulkhead(max_concurrent %d)", c.MaxConcurrent), c.Validate, func() endpoint.Middleware { return Bulkhead(c) }})
	}
	if s.RateLimit != nil {
		c := *s.RateLimit
		inherit(&c.Observer, &c.Logger, &c.Name)
		if c.Registry == nil {
			c.Registry = s.Registry
		}
		ls = append(ls, layer{"rate_limit", fmt.Sprintf("rate_limit(%g/s, burst %d)", c.Rate, c.Burst), c.Validate, func() endpoint.Middleware { return RateLimit(c) }})
	}
	if s.CircuitBreaker != nil {
		c := *s.CircuitBreaker
		inherit(&c.Observer, &c.Logger, &c.Name)
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
	if s.Retry != nil {
		c := *s.Retry
		inherit(&c.Observer, &c.Logger, &c.Name)
		ls = append(ls, layer{"retry", describeRetry(c), c.Validate, func() endpoint.Middleware { return Retry(c) }})
	}
	if s.Timeout != nil {
		c := *s.Timeout
		inherit(&c.Observer, &c.Logger, &c.Name)
		ls = append(ls, layer{"timeout", describeTimeout(c), c.Validate, func() endpoint.Middleware { return TimeoutWith(c) }})
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
// ([Stack.Warnings]) with the stack's Logger.
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
		return func(next endpoint.Endpoint) endpoint.Endpoint { return next }, nil
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
	v, err := json.Marshal(c.Value)
	if err != nil || len(v) > 40 {
		return "fallback(value)"
	}
	return "fallback(value " + string(v) + ")"
}

func describeBreaker(c BreakerConfig) string {
	return fmt.Sprintf("circuit_breaker(%s)", c.Name)
}

func describeRetry(c RetryConfig) string {
	n := c.MaxAttempts
	if n == 0 {
		n = retryDefaultMaxAttempts
	}
	return fmt.Sprintf("retry(%d attempts)", n)
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
//
//	stacks, _ := middleware.LoadStacks("policies.yaml")
//	s := stacks["embedding_api"].WithFallback(cacheEndpoint)
func (s Stack) WithFallback(fb endpoint.Endpoint) Stack {
	var c FallbackConfig
	if s.Fallback != nil {
		c = *s.Fallback
	}
	c.Value, c.Func, c.Endpoint = nil, nil, fb
	s.Fallback = &c
	return s
}
