package middleware

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/registry"

	"github.com/resiliencekit/resilience/endpoint"
)

// RateLimitConfig configures [RateLimit]: a token bucket from
// golang.org/x/time/rate that fills at Rate tokens per second up to Burst
// tokens, one token per call. The zero value is not usable on its own: set
// Rate and Burst, or Limiter. Every other field's zero value is the default
// (reject at once when no token is free).
type RateLimitConfig struct {
	// Rate is how many calls per second the layer admits, sustained. It must
	// be greater than 0 and finite; there is no default. It must be zero when
	// Limiter is set.
	Rate float64

	// Burst is how many calls the layer admits at once, after a quiet spell:
	// the bucket's size. It must be at least 1; there is no default (a burst
	// of 0 would reject every call, so it is an error rather than a limiter
	// that never admits). It must be zero when Limiter is set.
	Burst int

	// Wait makes a call that finds no token wait for one, up to the
	// context's deadline and MaxWait, instead of being rejected at once. A
	// call whose wait would reach the deadline, or pass MaxWait, is rejected
	// at once, without waiting. Default false: reject at once (go-kit's
	// NewErroringLimiter).
	Wait bool

	// MaxWait bounds how long a waiting call (Wait) may wait for its token,
	// whatever its context's deadline (or lack of one): a call whose token
	// would come more than MaxWait after it arrived is rejected at once, so
	// no wait books a token further ahead. Default 0:
	// defaultRateLimitMaxWait (10s). Negative, above
	// maxRateLimitMaxWait (24h), or set without Wait is an error.
	MaxWait time.Duration

	// Limiter, when set, is the limiter the layer draws its tokens from, in
	// place of one built from Rate and Burst: give several layers (on
	// several endpoints, or in several stacks) the same Limiter to share one
	// budget between them. Its limit and burst are its own and may be changed
	// while it is in use (SetLimit, SetBurst); a limit of 0 with no tokens
	// left rejects every call. Default nil: a limiter of the layer's own.
	Limiter *rate.Limiter

	// Name names the layer in its events and errors. Default "".
	Name string

	// Shared makes Name name a limiter in Registry: every shared
	// rate-limit layer of one name draws from one limiter (one budget, for
	// every endpoint and stack that names it), as circuit breakers of one
	// name share one breaker. The same name with another Rate or Burst is a
	// config error, never a silent first-wins. Requires Name; not with
	// Limiter. Default false: a limiter of the layer's own.
	Shared bool

	// Registry holds the shared limiters. Default nil: [registry.Default].
	Registry *registry.Registry

	// Observer receives the layer's events: [EventRejected] for each call
	// turned away. Default nil: a [LogObserver] on [slog.Default].
	Observer Observer
}

// Bounds of [RateLimitConfig.MaxWait].
const (
	// defaultRateLimitMaxWait is the MaxWait of a waiting rate limit whose
	// MaxWait is zero.
	defaultRateLimitMaxWait = 10 * time.Second
	// maxRateLimitMaxWait is the largest MaxWait accepted.
	maxRateLimitMaxWait = 24 * time.Hour
)

// WaitBound returns how long a call may wait for its token: MaxWait, or
// defaultRateLimitMaxWait when it is zero. Meaningful with Wait only.
func (c RateLimitConfig) WaitBound() time.Duration {
	if c.MaxWait == 0 {
		return defaultRateLimitMaxWait
	}
	return c.MaxWait
}

// Validate returns every problem in c at once, joined with [errors.Join],
// each a [*ConfigError] matching [ErrInvalidConfig] and naming the field (as
// "rate_limit.burst" and "RateLimitConfig.Burst"); or nil when c is valid.
func (c RateLimitConfig) Validate() error {
	p := problems{layer: "rate_limit", goType: "RateLimitConfig"}
	validateObserver(&p, c.Observer)
	switch {
	case c.MaxWait < 0:
		p.add("max_wait", "MaxWait", c.MaxWait, "must not be negative (0 means the default, "+defaultRateLimitMaxWait.String()+")")
	case c.MaxWait > maxRateLimitMaxWait:
		p.add("max_wait", "MaxWait", c.MaxWait, "must be at most "+maxRateLimitMaxWait.String())
	case c.MaxWait > 0 && !c.Wait:
		p.add("max_wait", "MaxWait", c.MaxWait, "must be zero unless wait is true (no call waits)")
	}
	if c.Shared && c.Name == "" {
		p.add("name", "Name", nil, "must be set when shared is true: it names the shared limiter")
	}
	if c.Shared && c.Limiter != nil {
		p.add("shared", "Shared", true, "must be false when Limiter is set (the layer already has its limiter)")
	}
	if c.Shared && c.Name != "" {
		if err := registry.CheckName(c.Name); err != nil {
			p.add("name", "Name", c.Name, err.Error())
		}
	}
	if c.Limiter != nil {
		if c.Rate != 0 {
			p.add("rate", "Rate", c.Rate, "must be zero when Limiter is set (the shared limiter has its own rate)")
		}
		if c.Burst != 0 {
			p.add("burst", "Burst", c.Burst, "must be zero when Limiter is set (the shared limiter has its own burst)")
		}
		return p.err()
	}
	switch {
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		p.add("rate", "Rate", c.Rate, "must be a finite number of calls per second")
	case c.Rate <= 0:
		p.add("rate", "Rate", c.Rate, "must be greater than 0 (calls per second; there is no default)")
	}
	if c.Burst < 1 {
		p.add("burst", "Burst", c.Burst, "must be at least 1 (there is no default)")
	}
	return p.err()
}

// RateLimit returns a middleware that admits calls at cfg.Rate per second,
// with bursts of up to cfg.Burst, and turns the others away with an error
// matching [ErrRateLimited], without calling the endpoint. It panics with
// cfg.Validate's error (matching [ErrInvalidConfig]) when cfg is not valid,
// and the middleware panics, matching it too, when given a nil endpoint.
//
// The limiter belongs to the middleware: every endpoint one RateLimit
// middleware wraps draws from the same limiter, as with go-kit's
// NewErroringLimiter. Call RateLimit once per endpoint for separate budgets,
// or set cfg.Limiter to share one limiter between separately built layers.
// The middleware, and every endpoint it returns, is safe for concurrent use.
//
// A call that finds a token is passed on at once, allocating nothing. A call
// that finds none is, by default,
// rejected at once with a [*RateLimitError] whose RetryAfter is the time
// until a token will be free. With cfg.Wait the call instead waits for its
// token, in turn with the other waiting calls of the layer (they are served
// in order of arrival), and then proceeds; if the token would come at or
// after the context's deadline, the call is rejected at once, without
// waiting, with a [*RateLimitError] that matches both ErrRateLimited and
// [context.DeadlineExceeded] (unlike x/time/rate's own Wait, whose error
// matches neither); if it would come more than cfg.MaxWait after the call
// arrived, the call is rejected at once with a *RateLimitError matching
// ErrRateLimited. Only the first waiting call holds a reservation of the
// limiter (the others wait their turn behind it), so no token is booked
// ahead for a caller that may leave: if the context ends during the wait,
// the call returns the context's error and its turn passes on, whatever
// the order in which waiting callers leave (x/time/rate restores the token
// of a cancelled reservation only when no later one was made). Each
// rejection is reported once as [EventRejected] with Layer "rate_limit"; a
// caller giving up during a wait is not a rejection and is not reported.
//
// Rejections are the toolkit's own load shedding, not a fault of the
// endpoint: [Retry] never retries them, and a circuit breaker does not count
// them as failures.
func RateLimit(cfg RateLimitConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	l := &rateLimiter{
		lim:     cfg.Limiter,
		name:    cfg.Name,
		obs:     observer(cfg.Observer),
		maxWait: cfg.WaitBound(),
	}
	if cfg.Shared {
		reg := cfg.Registry
		if reg == nil {
			reg = registry.Default
		}
		lim, err := reg.Limiter(cfg.Name, rate.Limit(cfg.Rate), cfg.Burst)
		if err != nil {
			panic(fmt.Errorf("%w: rate_limit.name: %w", ErrInvalidConfig, err))
		}
		l.lim = lim
	}
	if l.lim == nil {
		l.lim = rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)
	}
	wait := cfg.Wait
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		if next == nil {
			panic(fmt.Errorf("%w: rate_limit: nil endpoint", ErrInvalidConfig))
		}
		if wait {
			return func(ctx context.Context, req any) (any, error) {
				if l.queued.Load() != 0 || !l.lim.Allow() {
					if err := l.wait(ctx); err != nil {
						return nil, err
					}
				}
				return next(ctx, req)
			}
		}
		return func(ctx context.Context, req any) (any, error) {
			if !l.lim.Allow() {
				return nil, l.reject(ctx, time.Now())
			}
			return next(ctx, req)
		}
	}
}

// rateLimiter is a RateLimit layer's resolved configuration and its queue
// of waiting calls. Its configuration is never modified after construction;
// the limiter does its own locking, the queue has its own lock.
type rateLimiter struct {
	lim     *rate.Limiter
	name    string
	obs     Observer
	maxWait time.Duration

	mu     sync.Mutex
	queue  []chan struct{} // waiting calls in order of arrival; queue[0] holds the turn
	queued atomic.Int64    // len(queue), read without the lock by arriving calls
}

// join puts a waiting call at the end of the queue. It returns the call's
// turn channel (closed when the call is first in line) and how many calls
// wait before it.
func (l *rateLimiter) join() (chan struct{}, int) {
	turn := make(chan struct{})
	l.mu.Lock()
	ahead := len(l.queue)
	if ahead == 0 {
		close(turn)
	}
	l.queue = append(l.queue, turn)
	l.queued.Store(int64(len(l.queue)))
	l.mu.Unlock()
	return turn, ahead
}

// leave takes a call out of the queue; if it was first in line, the next
// call gets the turn.
func (l *rateLimiter) leave(turn chan struct{}) {
	l.mu.Lock()
	for i, c := range l.queue {
		if c != turn {
			continue
		}
		copy(l.queue[i:], l.queue[i+1:])
		l.queue[len(l.queue)-1] = nil
		l.queue = l.queue[:len(l.queue)-1]
		if i == 0 && len(l.queue) > 0 {
			close(l.queue[0])
		}
		break
	}
	l.queued.Store(int64(len(l.queue)))
	l.mu.Unlock()
}

// reject reports and returns the rejection of a call that found no token at
// now.
func (l *rateLimiter) reject(ctx context.Context, now time.Time) error {
	return l.rejected(ctx, &RateLimitError{Name: l.name, Delay: l.untilToken(now)})
}

func (l *rateLimiter) rejected(ctx context.Context, err *RateLimitError) error {
	l.obs.Observe(ctx, Event{Kind: EventRejected, Layer: "rate_limit", Name: l.name, Err: err})
	return err
}

// untilToken returns how long after now the limiter will have a whole token,
// rounded up to the nanosecond, or infiniteDelay when it never will.
func (l *rateLimiter) untilToken(now time.Time) time.Duration {
	missing := 1 - l.lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	limit := float64(l.lim.Limit())
	if limit <= 0 {
		return infiniteDelay
	}
	d := math.Ceil(missing / limit * float64(time.Second))
	if d >= float64(math.MaxInt64) {
		return infiniteDelay
	}
	return time.Duration(d)
}

// wait waits for the call's turn among the layer's waiting calls, then
// reserves a token and waits until it is due. It returns nil when the call
// may proceed, and otherwise the rejection or the context's error, having
// given back its reservation and its turn.
//
// Only the call first in line holds a reservation, and it is the latest
// one the layer made, so cancelling it gives its token back; the calls
// behind it hold nothing. A call is rejected at once when its token would
// come at or after the context's deadline or more than maxWait after it
// arrived, estimated from its place in line, and checked again once it has
// its reservation.
func (l *rateLimiter) wait(ctx context.Context) error {
	arrived := time.Now()
	if l.untilToken(arrived) >= infiniteDelay {
		// No token will ever come (a shared limiter whose limit was set to
		// 0), or not within the range of a time.Duration: a reservation
		// would be due past the end of time.
		return l.rejected(ctx, &RateLimitError{Name: l.name, Delay: infiniteDelay})
	}
	turn, ahead := l.join()
	defer l.leave(turn)
	if ahead > 0 {
		// The first in line holds the next token; each call between it and
		// this one takes one interval more.
		est := l.untilToken(arrived)
		if limit := float64(l.lim.Limit()); limit > 0 {
			est += time.Duration(min(float64(ahead-1)/limit*float64(time.Second), float64(infiniteDelay-est)))
		}
		if err := l.beyond(ctx, arrived, est); err != nil {
			return err
		}
		select {
		case <-turn:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := time.Now()
	r := l.lim.ReserveN(now, 1)
	if !r.OK() {
		// A shared limiter whose burst was set below 1.
		return l.rejected(ctx, &RateLimitError{Name: l.name, Delay: infiniteDelay})
	}
	d := r.DelayFrom(now)
	if d == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		r.CancelAt(now)
		return err
	}
	if err := l.beyond(ctx, arrived, now.Sub(arrived)+d); err != nil {
		r.CancelAt(now)
		return err
	}
	if err := sleep(ctx, d); err != nil {
		r.Cancel()
		return err
	}
	return nil
}

// beyond returns the rejection of a call that arrived at arrived and whose
// token would come wait later: at or after the context's deadline, or past
// maxWait; nil when the call may wait for it.
func (l *rateLimiter) beyond(ctx context.Context, arrived time.Time, wait time.Duration) error {
	left := time.Since(arrived)
	if deadline, ok := ctx.Deadline(); ok && !arrived.Add(wait).Before(deadline) {
		return l.rejected(ctx, &RateLimitError{Name: l.name, Delay: wait - left, Cause: context.DeadlineExceeded})
	}
	if wait > l.maxWait {
		return l.rejected(ctx, &RateLimitError{Name: l.name, Delay: wait - left})
	}
	return nil
}

// infiniteDelay is the RetryAfter of a [*RateLimitError] from a limiter that
// will never have a token again (a shared limiter whose limit was set to 0).
// It is the longest [time.Duration], as x/time/rate's InfDuration.
const infiniteDelay = time.Duration(math.MaxInt64)

// RateLimitError is the error a [RateLimit] layer returns when it turns a
// call away. It matches [ErrRateLimited] and, when the layer waits for tokens
// and the wait would have reached the context's deadline, also
// [context.DeadlineExceeded].
type RateLimitError struct {
	// Name is the layer's configured name, or "".
	Name string
	// Delay is how long after the rejection the limiter expected a token to
	// be free for this call: at least that long, since other callers may take
	// it first. infiniteDelay when no token will ever come.
	Delay time.Duration
	// Cause is [context.DeadlineExceeded] when a waiting layer rejected the
	// call because its wait would have reached the context's deadline, and
	// nil when a rejecting layer found no token.
	Cause error
}

// Error implements error: "middleware: rate limited: api (next token in
// 100ms)", or "middleware: rate limited: api (waiting 100ms for a token would
// pass the context deadline)".
func (e *RateLimitError) Error() string {
	msg := ErrRateLimited.Error()
	if e.Name != "" {
		msg += ": " + e.Name
	}
	switch {
	case e.Delay >= infiniteDelay:
		return msg + " (no token will come)"
	case e.Cause != nil:
		return msg + " (waiting " + e.Delay.String() + " for a token would pass the context deadline)"
	}
	return msg + " (next token in " + e.Delay.String() + ")"
}

// Is reports whether target is [ErrRateLimited].
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Unwrap returns Cause, which may be nil.
func (e *RateLimitError) Unwrap() error { return e.Cause }

// RetryAfter returns Delay: how long to wait before calling again.
func (e *RateLimitError) RetryAfter() time.Duration { return e.Delay }
