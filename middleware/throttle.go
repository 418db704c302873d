package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/callctx"
)

// ErrThrottled is matched by the error a [Throttle] layer returns when it
// rejects a call locally. It is a load-shedding rejection: [Retry] never
// retries it and a circuit breaker never counts it as a failure. It does
// not match [ErrRateLimited]: the throttle sheds by the service's observed
// acceptance, not by a fixed budget.
var ErrThrottled = errors.New("middleware: throttled")

// Defaults of [ThrottleConfig].
const (
	// defaultThrottleK is the K of a ThrottleConfig whose K is zero.
	defaultThrottleK = 2.0
	// defaultThrottleWindow is the Window of a ThrottleConfig whose Window
	// is zero: 60 s (the SRE book uses 2 minutes; 60 s recovers faster).
	defaultThrottleWindow = 60 * time.Second
	// throttleBuckets is how many buckets the rolling window is cut into.
	throttleBuckets = 10
)

// ThrottleConfig configures [Throttle]: client-side adaptive throttling
// after the Google SRE book's "Handling Overload". Over a rolling Window the
// layer counts requests and accepts and rejects a call locally with
// probability max(0, (requests - K*accepts) / (requests + 1)). The zero
// value is usable: K 2, Window 60 s in 10 buckets, MinRequests 0.
type ThrottleConfig struct {
	// K is the multiplier of accepts: the client sends up to about K times
	// as many requests as the service accepts. Default 0: 2. Must be at
	// least 1 and finite.
	K float64

	// Window is the span of the rolling window, cut into 10 buckets.
	// Default 0: 60 s. Negative, or from 0 to 10 ms exclusive, is an error.
	Window time.Duration

	// MinRequests is how many requests the window must hold before the
	// layer rejects any. Default 0: no minimum. Negative is an error.
	MinRequests int

	// Accepted reports whether a call that returned err counts as accepted
	// by the service. Default nil: a call is accepted when err is nil; any
	// other error is not accepted, except that a caller-gone cancellation
	// (see internal/callctx) is not counted at all. When set it is called
	// for every call that is counted, errors or not; a panic in it goes on
	// to the caller, the call counted as a request only.
	Accepted func(err error) bool

	// Rand returns a number in [0, 1) for the rejection draw. Default nil:
	// math/rand/v2's Float64. Set it for reproducible tests.
	Rand func() float64

	// Name names the layer in its events and errors. Default "".
	Name string

	// Observer receives the layer's events: [EventRejected] for each call
	// throttled. Default nil: a [LogObserver] on [slog.Default].
	Observer Observer
}

// kOrDefault returns K, or 2 when K is zero.
func (c ThrottleConfig) kOrDefault() float64 {
	if c.K == 0 {
		return defaultThrottleK
	}
	return c.K
}

// windowOrDefault returns Window, or 60 s when Window is zero.
func (c ThrottleConfig) windowOrDefault() time.Duration {
	if c.Window == 0 {
		return defaultThrottleWindow
	}
	return c.Window
}

// Validate returns every problem in c at once, joined with [errors.Join],
// each a [*ConfigError] matching [ErrInvalidConfig] and naming the field (as
// "throttle.k" and "ThrottleConfig.K"); or nil when c is valid.
func (c ThrottleConfig) Validate() error {
	p := problems{layer: "throttle", goType: "ThrottleConfig"}
	validateObserver(&p, c.Observer)
	switch {
	case math.IsNaN(c.K) || math.IsInf(c.K, 0):
		p.add("k", "K", c.K, "must be a finite number")
	case c.K != 0 && c.K < 1:
		p.add("k", "K", c.K, "must be at least 1 (0 means the default, 2)")
	}
	switch {
	case c.Window < 0:
		p.add("window", "Window", c.Window, "must not be negative (0 means the default, "+defaultThrottleWindow.String()+")")
	case c.Window > 0 && c.Window < 10*time.Millisecond:
		p.add("window", "Window", c.Window, "must be at least 10ms")
	}
	if c.MinRequests < 0 {
		p.add("min_requests", "MinRequests", c.MinRequests, "must not be negative")
	}
	return p.err()
}

// ThrottleError is returned by a [Throttle] layer for a call it rejects
// locally. It matches [ErrThrottled].
type ThrottleError struct {
	// Name is the layer's configured name.
	Name string
	// Probability is the rejection probability at the time of the call.
	Probability float64
}

// Error returns a message naming the layer.
func (e *ThrottleError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("middleware: throttled (reject probability %.3f)", e.Probability)
	}
	return fmt.Sprintf("middleware: throttled %q (reject probability %.3f)", e.Name, e.Probability)
}

// Is matches [ErrThrottled].
func (e *ThrottleError) Is(target error) bool { return target == ErrThrottled }

// Throttle returns a middleware doing client-side adaptive throttling: it
// rejects calls locally, with an error matching [ErrThrottled] and an
// [EventRejected] with Layer "throttle", with probability
// max(0, (requests - K*accepts) / (requests + 1)) over the rolling window.
// Rejected calls count as requests, so the client converges on sending
// about K times what the service accepts; once the service accepts again,
// the rejections stop within the window. It panics with cfg.Validate's
// error when cfg is not valid, and the middleware panics, matching
// [ErrInvalidConfig], when given a nil endpoint. Every endpoint one
// Throttle middleware wraps shares its window. Safe for concurrent use.
func Throttle(cfg ThrottleConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	t := newThrottler(cfg)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("throttle", next)
		return func(ctx context.Context, req any) (any, error) {
			now := time.Now()
			if p := t.admit(now); p > 0 {
				if t.rand() < p {
					err := &ThrottleError{Name: t.name, Probability: p}
					t.obs.Observe(ctx, Event{Kind: EventRejected, Layer: "throttle", Name: t.name, Err: err})
					return nil, err
				}
			}
			resp, err := next(ctx, req)
			t.done(ctx, now, err)
			return resp, err
		}
	}
}

// throttler is a Throttle layer's resolved configuration and its window.
type throttler struct {
	k        float64
	min      int64
	bucket   int64 // bucket width in ns
	accepted func(error) bool
	rand     func() float64
	name     string
	obs      Observer

	mu     sync.Mutex
	epochs [throttleBuckets]int64 // bucket index (time/width) each slot holds
	req    [throttleBuckets]int64
	acc    [throttleBuckets]int64
}

func newThrottler(cfg ThrottleConfig) *throttler {
	t := &throttler{
		k:        cfg.kOrDefault(),
		min:      int64(cfg.MinRequests),
		bucket:   int64(cfg.windowOrDefault()) / throttleBuckets,
		accepted: cfg.Accepted,
		rand:     cfg.Rand,
		name:     cfg.Name,
		obs:      observer(cfg.Observer),
	}
	if t.rand == nil {
		t.rand = rand.Float64
	}
	for i := range t.epochs {
		t.epochs[i] = math.MinInt64
	}
	return t
}

// slot returns the slot of the bucket holding now, cleared if stale. Holds mu.
func (t *throttler) slot(now time.Time) int {
	e := now.UnixNano() / t.bucket
	i := int(uint64(e) % throttleBuckets)
	if t.epochs[i] != e {
		t.epochs[i], t.req[i], t.acc[i] = e, 0, 0
	}
	return i
}

// admit counts a request at now and returns the rejection probability
// computed before counting it (the book's formula).
func (t *throttler) admit(now time.Time) float64 {
	t.mu.Lock()
	i := t.slot(now)
	e := t.epochs[i]
	var req, acc int64
	for j := range t.epochs {
		if e-t.epochs[j] < throttleBuckets {
			req += t.req[j]
			acc += t.acc[j]
		}
	}
	t.req[i]++
	t.mu.Unlock()
	return throttleProbability(t.k, req, acc, t.min)
}

// throttleProbability is max(0, (req - k*acc) / (req + 1)), 0 when req is
// under min.
func throttleProbability(k float64, req, acc, min int64) float64 {
	if req < min {
		return 0
	}
	p := (float64(req) - k*float64(acc)) / float64(req+1)
	if p < 0 {
		return 0
	}
	return p
}

// done records a call that went to the endpoint at start and ended with
// err: a caller-gone call is taken back out of the requests; an accepted
// one is counted as an accept.
func (t *throttler) done(ctx context.Context, start time.Time, err error) {
	if err != nil && callctx.Neutral(ctx, err) {
		t.mu.Lock()
		e := start.UnixNano() / t.bucket
		if i := int(uint64(e) % throttleBuckets); t.epochs[i] == e && t.req[i] > 0 {
			t.req[i]--
		}
		t.mu.Unlock()
		return
	}
	ok := err == nil
	if t.accepted != nil {
		ok = t.accepted(err)
	}
	if !ok {
		return
	}
	// Counted in the bucket of the call's start, with its request (one
	// clock read a call: time.Now is not free); dropped if that bucket has
	// since left the window.
	e := start.UnixNano() / t.bucket
	i := int(uint64(e) % throttleBuckets)
	t.mu.Lock()
	if t.epochs[i] == e {
		t.acc[i]++
	}
	t.mu.Unlock()
}
