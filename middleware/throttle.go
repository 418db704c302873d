package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
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
//
// A call reads no clock: the window rolls on a timer, one bucket
// (Window/10) at a time, which runs only while the window holds a count
// and stops once it is empty (so an idle layer holds no timer). A call
// counts, as a request and maybe an accept, when it ends (a rejected one
// when it is rejected): a call still in flight is not in the window yet.
func Throttle(cfg ThrottleConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	t := newThrottler(cfg)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("throttle", next)
		return func(ctx context.Context, req any) (any, error) {
			if p := t.probability(); p > 0 {
				if t.rand() < p {
					t.buckets[t.slot()].Add(throttleReq) // a rejected call is a request too
					err := &ThrottleError{Name: t.name, Probability: p}
					t.obs.Observe(ctx, Event{Kind: EventRejected, Layer: "throttle", Name: t.name, Err: err})
					return nil, err
				}
			}
			resp, err := next(ctx, req)
			t.done(ctx, err)
			return resp, err
		}
	}
}

// throttler is a Throttle layer's resolved configuration and its window:
// throttleBuckets buckets, each one atomic word holding its requests (the
// high 32 bits) and accepts (the low 32), so that a call takes no lock and
// makes one atomic add, as it ends (a rejected call as it is rejected).
type throttler struct {
	k        float64
	min      int64
	width    time.Duration // of a bucket
	accepted func(error) bool
	rand     func() float64
	name     string
	obs      Observer

	cur     atomic.Int64 // the current bucket's number, counting rolls
	rolling atomic.Bool  // the roll timer runs
	buckets [throttleBuckets]atomic.Uint64

	mu    sync.Mutex // held to start and run a roll
	timer *time.Timer
}

// throttleReq is one request in a bucket's word; one accept is 1.
const throttleReq = 1 << 32

func newThrottler(cfg ThrottleConfig) *throttler {
	t := &throttler{
		k:        cfg.kOrDefault(),
		min:      int64(cfg.MinRequests),
		width:    cfg.windowOrDefault() / throttleBuckets,
		accepted: cfg.Accepted,
		rand:     cfg.Rand,
		name:     cfg.Name,
		obs:      observer(cfg.Observer),
	}
	if t.rand == nil {
		t.rand = rand.Float64
	}
	return t
}

// slot returns the index of the current bucket, starting the roll timer
// if it is stopped.
func (t *throttler) slot() int {
	if !t.rolling.Load() {
		t.start()
	}
	return int(uint64(t.cur.Load()) % throttleBuckets)
}

// start starts the roll timer, unless a concurrent call did.
func (t *throttler) start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rolling.Load() {
		return
	}
	t.rolling.Store(true)
	t.timer = time.AfterFunc(t.width, t.roll)
}

// roll moves the window on by one bucket: the oldest bucket is cleared and
// becomes the current one. With the window empty, the timer stops; the
// next call starts it again.
func (t *throttler) roll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := t.cur.Load() + 1
	t.buckets[uint64(next)%throttleBuckets].Store(0)
	t.cur.Store(next)
	if req, acc := t.sums(); req == 0 && acc == 0 {
		t.rolling.Store(false)
		return
	}
	t.timer.Reset(t.width)
}

// sums returns the requests and accepts in the window.
func (t *throttler) sums() (req, acc int64) {
	for i := range t.buckets {
		v := t.buckets[i].Load()
		req += int64(v >> 32)
		acc += int64(v & (throttleReq - 1))
	}
	return req, acc
}

// probability returns the rejection probability of a call now (the book's
// formula over the window).
func (t *throttler) probability() float64 {
	if !t.rolling.Load() {
		return 0 // the window is empty
	}
	req, acc := t.sums()
	return throttleProbability(t.k, req, acc, t.min)
}

// throttleProbability is max(0, (req - k*acc) / (req + 1)), 0 when req is
// under min.
func throttleProbability(k float64, req, acc, min int64) float64 {
	n := float64(req) - k*float64(acc)
	if req < min || n <= 0 {
		return 0
	}
	return n / float64(req+1)
}

// done counts a call the endpoint answered with err, in one atomic add: a
// request, and an accept if the service accepted it. A caller-gone call is
// not counted at all.
func (t *throttler) done(ctx context.Context, err error) {
	if err != nil && callctx.Neutral(ctx, err) {
		return
	}
	ok := err == nil
	if t.accepted != nil {
		ok = t.accepted(err)
	}
	d := uint64(throttleReq)
	if ok {
		d++
	}
	t.buckets[t.slot()].Add(d)
}
