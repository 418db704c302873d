package middleware

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/callctx"
)

// RetryConfig configures [Retry]. The zero value is the guide's default: three
// attempts in all, waits of 1s then 2s (doubling, capped at 60s), each
// jittered by ±50%, retrying every error except the ones Retry never retries
// (see [Retry]).
//
// The wait after attempt k fails is min(Delay·Backoff^(k-1), MaxDelay), then
// multiplied by a random factor in [0.5, 1.5) unless DisableJitter is set,
// and capped at MaxDelay again. [RetryConfig.DelayFor] computes it.
type RetryConfig struct {
	// MaxAttempts is the number of calls in all, including the first.
	// Default (0): 3. 1 means no retries. Negative is an error.
	MaxAttempts int

	// Delay is the wait after the first failed attempt, before jitter.
	// Default (0): 1s; set NoDelay to retry without waiting. Negative is an
	// error.
	Delay time.Duration

	// NoDelay makes Retry retry at once, without waiting. Default: false. It
	// is an error to set it with a nonzero Delay.
	NoDelay bool

	// Backoff multiplies the delay after each further failed attempt.
	// Default (0): 2.0. 1 keeps the delay constant. Less than 1, NaN or
	// infinite is an error.
	Backoff float64

	// MaxDelay caps every wait, before and after jitter. Default (0): 60s,
	// or Delay when Delay is longer. Negative, or set below the first delay
	// (Delay, or its default 1s), is an error.
	MaxDelay time.Duration

	// DisableJitter turns off the random spread of each wait, so the waits
	// are exactly Delay, Delay·Backoff, ... Default: false (jitter on, each
	// wait spread over [0.5, 1.5) times its base delay, so that clients
	// failing together do not retry together).
	DisableJitter bool

	// RetryOn lists the errors to retry, each matched with [errors.Is].
	// Default (empty): with RetryIf also unset, every error is retried.
	// When RetryOn and RetryIf are both set, an error is retried if it
	// matches either. A nil entry is an error. Retry keeps a copy.
	RetryOn []error

	// RetryIf reports whether an error should be retried. Default (nil):
	// with RetryOn also empty, every error is retried. It is called on the
	// caller's goroutine and must be safe for concurrent use.
	RetryIf func(err error) bool

	// RetryBusinessErrors makes a response that implements go-kit's
	// endpoint.Failer with a non-nil Failed() a failure to retry (subject to
	// RetryOn and RetryIf like any error). When the retries
	// run out, the last response is returned as it is, with a nil error, as
	// go-kit's convention wants. Default: false, business errors are
	// outcomes, not faults, and are never retried.
	RetryBusinessErrors bool

	// OnRetry, when set, is called before each wait with the error of the
	// attempt that just failed and that attempt's number: 1 before the first
	// wait, 2 before the second. It is not called when Retry gives up. It is
	// called on the caller's goroutine and must be safe for concurrent use.
	// Default: nil.
	OnRetry func(err error, attempt int)

	// Budget, when set, bounds this layer's retries, with those of every
	// other layer sharing it, to a ratio of their calls ([RetryBudget]). A
	// retry the budget refuses ends the call at once with a [*RetryError]
	// matching the last attempt's error and [ErrRetryBudgetExhausted], and
	// the EventRetry of giving up. Default nil: no budget.
	Budget *RetryBudget

	// Name names this layer in its events (Event.Name). Default: "".
	Name string

	// Observer receives the layer's events: [EventRetry] before each wait
	// and when Retry gives up (Err a [*RetryError]).
	// Default (nil): a [LogObserver] on [slog.Default].
	Observer Observer
}

// Validate returns nil if c is a usable configuration, or else every problem
// in it at once: an [errors.Join] of [*ConfigError] values, each matching
// [ErrInvalidConfig] and naming the field (as "retry.max_attempts" and
// "RetryConfig.MaxAttempts").
func (c RetryConfig) Validate() error {
	p := problems{layer: "retry", goType: "RetryConfig"}
	if c.MaxAttempts < 0 {
		p.add("max_attempts", "MaxAttempts", c.MaxAttempts, "must not be negative (0 means the default 3)")
	}
	switch {
	case c.Delay < 0:
		p.add("delay", "Delay", c.Delay, "must not be negative (0 means the default 1s)")
	case c.NoDelay && c.Delay != 0:
		p.add("delay", "Delay", c.Delay, "must be zero when no_delay (NoDelay) is set")
	}
	switch {
	case math.IsNaN(c.Backoff) || math.IsInf(c.Backoff, 0):
		p.add("backoff", "Backoff", c.Backoff, "must be a finite number")
	case c.Backoff != 0 && c.Backoff < 1:
		p.add("backoff", "Backoff", c.Backoff, "must be at least 1 (0 means the default 2)")
	}
	switch s := c.schedule(); {
	case c.MaxDelay < 0:
		p.add("max_delay", "MaxDelay", c.MaxDelay, "must not be negative (0 means the default 60s)")
	case c.MaxDelay > 0 && c.MaxDelay < s.delay:
		p.add("max_delay", "MaxDelay", c.MaxDelay,
			fmt.Sprintf("must be at least delay (Delay), which is %v", s.delay))
	}
	validateObserver(&p, c.Observer)
	for i, e := range c.RetryOn {
		if e == nil {
			p.add(fmt.Sprintf("retry_on[%d]", i), fmt.Sprintf("RetryOn[%d]", i), nil, "must not be nil")
		}
	}
	return p.err()
}

// Retry returns a middleware that calls the endpoint again when it fails, up
// to cfg.MaxAttempts calls in all, waiting between calls as [RetryConfig]
// describes. It panics with cfg.Validate's error (matching
// [ErrInvalidConfig]) when cfg is not valid. The middleware, and every
// endpoint it returns, is safe for concurrent use.
//
// An error is retried when it matches cfg.RetryOn or cfg.RetryIf (every
// error when neither is set), except that Retry never retries:
//   - any error once its context is done (the caller cancelled it, with or
//     without a cause, or its deadline or a [Stack]'s Budget passed): there
//     is no time left to retry in;
//   - an error matching [context.Canceled], whoever canceled;
//   - the toolkit's own rejections: [ErrCircuitOpen], [ErrRateLimited],
//     [ErrBulkheadFull].
//
// An attempt's [context.DeadlineExceeded] while the caller's context is still
// alive (a per-attempt timeout, such as an inner [Timeout]) is retried like
// any other error. A Retry-After hint (see retryAfterer) longer than the
// wait is waited out, up to MaxDelay; a longer hint stops retrying.
//
// Retry never waits past the context's deadline: if the next wait would reach
// it, Retry gives up at once, without calling OnRetry, and the result matches
// both the last error and [context.DeadlineExceeded]. If the context ends
// during a wait, Retry returns at once with the context's error.
//
// The endpoint's response and error on success are returned as they are, as
// is the error of a first attempt that is not retried (or of the only
// attempt, when MaxAttempts is 1). Otherwise (more than one attempt, or a
// context that stopped retrying after the first) Retry returns the last
// attempt's response with a [*RetryError] holding the number of attempts,
// the last error and, when the context stopped retrying early, the context's
// error as Cause; errors.Is matches both the last error and the Cause.
// Retry reports an [EventRetry] before each wait, and one with Err a
// [*RetryError] whenever it gives up.
//
// Panics from the endpoint, RetryIf or OnRetry pass through untouched.
func Retry(cfg RetryConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	r := &retrier{
		retrySchedule: cfg.schedule(),
		attempts:      cfg.MaxAttempts,
		filter:        newFilter(cfg.RetryOn, cfg.RetryIf),
		onRetry:       cfg.OnRetry,
		business:      cfg.RetryBusinessErrors,
		budget:        cfg.Budget,
		name:          cfg.Name,
		obs:           observer(cfg.Observer),
	}
	if r.attempts == 0 {
		r.attempts = retryDefaultMaxAttempts
	}
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("retry", next)
		if r.business || r.budget != nil {
			return func(ctx context.Context, req any) (any, error) {
				if r.budget != nil {
					r.budget.called()
				}
				resp, err := next(ctx, req)
				if err == nil && (!r.business || businessError(resp) == nil) {
					return resp, nil
				}
				return r.retry(ctx, next, req, resp, err)
			}
		}
		return func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			if err == nil {
				return resp, nil
			}
			return r.retry(ctx, next, req, resp, err)
		}
	}
}

// retrier is a Retry layer's resolved configuration. It is never modified
// after construction.
type retrier struct {
	retrySchedule
	attempts int
	filter   filter // RetryOn, RetryIf
	onRetry  func(error, int)
	business bool
	budget   *RetryBudget
	name     string
	obs      Observer
}

// retry runs the failure path, after attempt 1 returned resp and err != nil.
func (r *retrier) retry(ctx context.Context, next endpoint.Endpoint, req, resp any, err error) (any, error) {
	// failure is what attempt number attempt failed with: err, or the
	// business error of a Failer response when RetryBusinessErrors is set
	// (err is then nil, and giving up returns the response as it is).
	failure := err
	if failure == nil {
		failure = businessError(resp)
	}
	for attempt := 1; ; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			if attempt == 1 || err == nil {
				return resp, err
			}
			return resp, r.giveUp(ctx, attempt, err, cerr)
		}
		if attempt >= r.attempts || callctx.Neutral(ctx, failure) || !r.retryable(failure) {
			if attempt == 1 || err == nil {
				if attempt > 1 {
					r.obs.Observe(ctx, Event{Kind: EventRetry, Layer: "retry", Name: r.name, Attempt: attempt, Err: &RetryError{Attempts: attempt, Err: failure}})
				}
				return resp, err
			}
			return resp, r.giveUp(ctx, attempt, err, nil)
		}
		var rnd float64
		if r.jitter {
			rnd = rand.Float64()
		}
		d := r.delayFor(attempt, rnd)
		if hint, ok := retryAfter(failure); ok && hint > d {
			if hint > r.maxDelay { // the service asks for more than this policy waits: not retried
				if err == nil {
					return resp, nil
				}
				if attempt == 1 {
					return resp, err // a first attempt not retried returns its own error
				}
				return resp, r.giveUp(ctx, attempt, err, nil)
			}
			d = hint
		}
		if deadline, ok := ctx.Deadline(); ok && !time.Now().Add(d).Before(deadline) {
			if err == nil {
				return resp, nil
			}
			return resp, r.giveUp(ctx, attempt, err, context.DeadlineExceeded)
		}
		if r.budget != nil && !r.budget.take() {
			if err == nil {
				return resp, nil
			}
			return resp, r.giveUp(ctx, attempt, err, ErrRetryBudgetExhausted)
		}
		if r.onRetry != nil {
			r.onRetry(failure, attempt)
		}
		r.obs.Observe(ctx, Event{Kind: EventRetry, Layer: "retry", Name: r.name, Attempt: attempt, Wait: d, Err: failure})
		if cerr := sleep(ctx, d); cerr != nil {
			if err == nil {
				return resp, nil
			}
			return resp, r.giveUp(ctx, attempt, err, cerr)
		}
		resp, err = next(ctx, req)
		failure = err
		if err == nil {
			if !r.business {
				return resp, nil
			}
			if failure = businessError(resp); failure == nil {
				return resp, nil
			}
		}
	}
}

// retryable reports whether err may be retried, the caller's context being
// alive and err no cancellation.
func (r *retrier) retryable(err error) bool {
	if rejection(err) {
		return false
	}
	return r.filter.matches(err)
}

// giveUp reports the EventRetry of giving up and returns the *RetryError for
// attempts calls ending in err, stopped early by cause when it is not nil.
func (r *retrier) giveUp(ctx context.Context, attempts int, err, cause error) error {
	re := &RetryError{Attempts: attempts, Err: err, Cause: cause}
	r.obs.Observe(ctx, Event{Kind: EventRetry, Layer: "retry", Name: r.name, Attempt: attempts, Err: re})
	return re
}
