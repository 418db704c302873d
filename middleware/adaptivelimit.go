package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/callctx"
)

// ErrLimited is matched by the error of a call an [AdaptiveLimit] layer
// turned away: the limit of calls in flight was reached (and its queue, if
// any, was full or the wait ran out). The error carries a Retry-After hint
// (about one call's latency) that transport/http writes as a Retry-After
// header. It is load shedding: never retried and never a breaker failure.
var ErrLimited = errors.New("middleware: concurrency limit reached")

// The algorithms of [AdaptiveLimitConfig].Algorithm.
const (
	// LimitGradient moves the limit by the gradient between the latency
	// with no load and the latency now (Netflix concurrency-limits'
	// Gradient2): while calls are no slower than Tolerance times the
	// no-load latency the limit grows by its square root each window;
	// slower, it shrinks in proportion, at most by half a window.
	LimitGradient = "gradient"
	// LimitAIMD adds one to the limit each window in which calls were no
	// slower than Tolerance times the no-load latency and none timed out,
	// and takes a tenth off otherwise: additive increase, multiplicative
	// decrease.
	LimitAIMD = "aimd"
)

// AdaptiveLimitConfig configures [AdaptiveLimit]. The zero value is the
// default: the gradient algorithm from a limit of 20 calls in flight, kept
// within [1, 1000], with no queue.
type AdaptiveLimitConfig struct {
	// Algorithm is LimitGradient or LimitAIMD. Default (""): LimitGradient.
	Algorithm string

	// InitialLimit is the limit before the first window. Default (0): 20.
	InitialLimit int
	// MinLimit and MaxLimit bound the limit. Defaults (0): 1 and 1000.
	// MinLimit <= InitialLimit <= MaxLimit, else an error.
	MinLimit, MaxLimit int

	// Tolerance is how much slower than with no load calls may get before
	// the limit stops growing: 1.5 keeps the latency within about one and
	// a half times the no-load latency. Default (0): 1.5. Less than 1,
	// NaN or infinite is an error.
	Tolerance float64

	// Window is how often the limit is recomputed, from the calls that
	// ended in the window (at least 10 of them). Default (0): 100ms.
	// Negative is an error.
	Window time.Duration

	// MaxQueue is how many calls over the limit may wait for a slot, for at
	// most MaxWait; a call that would be one more is rejected at once.
	// Default (0): no queue, a call over the limit is rejected at once.
	// Negative is an error, and so is one without the other.
	MaxQueue int
	MaxWait  time.Duration

	// Name names the layer in its events. Default "".
	Name string

	// Observer receives the layer's events: [EventRejected] for each call
	// turned away, [EventLimit] when the limit changes (Event.Limit is the
	// new limit). Default nil: a [LogObserver] on [slog.Default].
	Observer Observer
}

// Validate returns every problem in c at once, each a [*ConfigError]
// matching [ErrInvalidConfig] and naming the field (as
// "adaptive_limit.min_limit"); nil when c is valid.
func (c AdaptiveLimitConfig) Validate() error {
	p := problems{layer: "adaptive_limit", goType: "AdaptiveLimitConfig"}
	switch c.Algorithm {
	case "", LimitGradient, LimitAIMD:
	default:
		p.add("algorithm", "Algorithm", c.Algorithm, fmt.Sprintf("must be %q or %q (empty means %q)", LimitGradient, LimitAIMD, LimitGradient))
	}
	d := c.withDefaults()
	if c.MinLimit < 0 {
		p.add("min_limit", "MinLimit", c.MinLimit, "must not be negative (0 means the default 1)")
	}
	if c.MaxLimit < 0 {
		p.add("max_limit", "MaxLimit", c.MaxLimit, "must not be negative (0 means the default 1000)")
	}
	if c.InitialLimit < 0 {
		p.add("initial_limit", "InitialLimit", c.InitialLimit, "must not be negative (0 means the default 20)")
	}
	if c.MinLimit >= 0 && c.MaxLimit >= 0 && c.InitialLimit >= 0 {
		switch {
		case d.MinLimit > d.MaxLimit:
			p.add("min_limit", "MinLimit", c.MinLimit, fmt.Sprintf("must not be above max_limit (%d)", d.MaxLimit))
		case c.InitialLimit != 0 && (c.InitialLimit < d.MinLimit || c.InitialLimit > d.MaxLimit):
			p.add("initial_limit", "InitialLimit", c.InitialLimit, fmt.Sprintf("must be within [min_limit, max_limit] = [%d, %d]", d.MinLimit, d.MaxLimit))
		}
	}
	if math.IsNaN(c.Tolerance) || math.IsInf(c.Tolerance, 0) || (c.Tolerance != 0 && c.Tolerance < 1) {
		p.add("tolerance", "Tolerance", c.Tolerance, "must be a finite number of at least 1 (0 means the default 1.5)")
	}
	if c.Window < 0 {
		p.add("window", "Window", c.Window, "must not be negative (0 means the default 100ms)")
	}
	switch {
	case c.MaxQueue < 0:
		p.add("max_queue", "MaxQueue", c.MaxQueue, "must not be negative (0 means no queue)")
	case c.MaxWait < 0:
		p.add("max_wait", "MaxWait", c.MaxWait, "must not be negative")
	case c.MaxQueue > 0 && c.MaxWait == 0:
		p.add("max_wait", "MaxWait", c.MaxWait, "must be set with max_queue: how long a queued call may wait")
	case c.MaxQueue == 0 && c.MaxWait > 0:
		p.add("max_queue", "MaxQueue", c.MaxQueue, "must be set with max_wait: how many calls may wait")
	}
	validateObserver(&p, c.Observer)
	return p.err()
}

func (c AdaptiveLimitConfig) withDefaults() AdaptiveLimitConfig {
	if c.Algorithm == "" {
		c.Algorithm = LimitGradient
	}
	if c.MinLimit == 0 {
		c.MinLimit = 1
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = max(1000, c.MinLimit)
	}
	if c.InitialLimit == 0 {
		c.InitialLimit = min(max(20, c.MinLimit), c.MaxLimit)
	}
	if c.Tolerance == 0 {
		c.Tolerance = 1.5
	}
	if c.Window == 0 {
		c.Window = 100 * time.Millisecond
	}
	return c
}

// AdaptiveLimit returns a middleware that bounds the calls in flight by a
// limit it finds from their latency, for a server protecting itself from
// more load than it can serve (Netflix concurrency-limits). Where a fixed
// [Bulkhead] needs its size guessed, AdaptiveLimit measures: it learns the
// latency with no load (the lowest the windows' smoothed average latency has
// been, drifting up by a thousandth per window so that a lasting change is
// followed), and
// keeps the latency within Tolerance times it. Under overload the queue
// that would build in front of the service is kept out: the calls over the
// limit are rejected at once with an error matching [ErrLimited] that
// carries a Retry-After hint, and the calls admitted are served about as
// fast as with no load.
//
// A call that succeeds is a latency sample for the limit (every call once
// the calls in flight reach a quarter of the limit, one in 32 below that), and a call whose
// deadline passed counts as one that took too long; a call that fails
// otherwise, or that its caller canceled, is no sample (a fast error says
// nothing of how long a call takes). The limit
// only grows while the calls in flight reach half of it (a service with
// little traffic does not raise its limit without a test), and never past
// twice the most calls a window had in flight. A rejection is
// load shedding: [Retry] never retries it, a circuit breaker never counts
// it. The slot of a call is given back however it ends, a panic included.
//
// It panics with cfg.Validate's error (matching [ErrInvalidConfig]) when
// cfg is not valid. Each middleware keeps one limit, shared by every
// endpoint it wraps.
func AdaptiveLimit(cfg AdaptiveLimitConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	l := newLimiter(cfg.withDefaults())
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("adaptive_limit", next)
		return func(ctx context.Context, req any) (any, error) {
			n, seq, ok := l.acquire()
			if !ok {
				if err := l.wait(ctx); err != nil {
					return nil, err
				}
			}
			if !l.sampled(n, seq) {
				defer l.release() // a panic too
				return next(ctx, req)
			}
			start := time.Now()
			done := false
			defer func() {
				if !done { // a panic: the slot back, no sample
					l.release()
				}
			}()
			resp, err := next(ctx, req)
			done = true
			l.ended(ctx, err, start)
			return resp, err
		}
	}
}

// limiter is an AdaptiveLimit layer's state.
type limiter struct {
	cfg   AdaptiveLimitConfig
	limit atomic.Int64 // calls allowed in flight
	// slots holds the calls in flight (the low 32 bits) and counts the
	// calls admitted (the high 32, wrapping), so that admitting a call and
	// numbering it for sampling is one compare-and-swap.
	slots atomic.Uint64
	obs   Observer

	// The window's samples, added with atomics; mu is taken only to close
	// a window.
	sum, count, drops atomic.Int64
	peak              atomic.Int64 // most in flight in the window
	windowStart       atomic.Int64 // unix nanos
	mu                sync.Mutex
	noLoad            float64 // ns; 0 until the first window
	smooth            float64 // ns: the windows' averages, smoothed
	exact             float64 // the limit, unrounded
	lastAvg           atomic.Int64

	// The queue: waiters in order, and how many.
	qmu     sync.Mutex
	queue   []*limitWaiter
	waiting atomic.Int64
}

type limitWaiter struct {
	ready   chan struct{}
	granted bool // under qmu
}

func newLimiter(cfg AdaptiveLimitConfig) *limiter {
	l := &limiter{cfg: cfg, obs: observer(cfg.Observer), exact: float64(cfg.InitialLimit)}
	l.limit.Store(int64(cfg.InitialLimit))
	l.windowStart.Store(time.Now().UnixNano())
	return l
}

// slotsInFlight masks the calls in flight out of [limiter.slots]; slotsCall
// is one admitted call in its counter.
const (
	slotsInFlight = 1<<32 - 1
	slotsCall     = 1 << 32
)

// inFlight returns the calls in flight.
func (l *limiter) inFlight() int64 { return int64(l.slots.Load() & slotsInFlight) }

// acquire takes a slot if one is free under the limit, and returns the
// calls in flight with it and the call's number (counting admissions,
// wrapping); without a slot, the calls in flight and false.
func (l *limiter) acquire() (n int64, seq uint32, ok bool) {
	for {
		v := l.slots.Load()
		n := int64(v & slotsInFlight)
		if n >= l.limit.Load() {
			return n, 0, false
		}
		if l.slots.CompareAndSwap(v, v+slotsCall+1) {
			if n+1 > l.peak.Load() {
				l.peak.Store(n + 1) // a racy maximum: a hint for the growth rule
			}
			return n + 1, uint32(v>>32) + 1, true
		}
	}
}

// sampled reports whether a call admitted with n calls in flight as call
// number seq is timed: every call once the calls in flight reach a quarter
// of the limit (where the limit is at stake), and one call in 32 below it,
// so that a lightly loaded layer does not read the clock twice on every
// call. Which calls is decided by their number, not at random, so a run in
// fake time repeats.
func (l *limiter) sampled(n int64, seq uint32) bool {
	return 4*n >= l.limit.Load() || seq&31 == 0
}

// release gives a slot back, or hands it to the first waiter when the
// limit has room for it.
func (l *limiter) release() {
	if l.waiting.Load() > 0 && l.inFlight() <= l.limit.Load() {
		l.qmu.Lock()
		if len(l.queue) > 0 {
			w := l.queue[0]
			l.queue = l.queue[1:]
			w.granted = true
			l.qmu.Unlock()
			close(w.ready) // the slot passes to w: inFlight unchanged
			return
		}
		l.qmu.Unlock()
	}
	l.slots.Add(^uint64(0)) // one call in flight fewer
}

// wait queues a call over the limit, when the config has a queue, and
// returns nil once it holds a slot; otherwise the rejection.
func (l *limiter) wait(ctx context.Context) error {
	if l.cfg.MaxQueue == 0 {
		return l.reject(ctx, 0)
	}
	if l.waiting.Add(1) > int64(l.cfg.MaxQueue) {
		l.waiting.Add(-1)
		return l.reject(ctx, 0)
	}
	defer l.waiting.Add(-1)
	w := &limitWaiter{ready: make(chan struct{})}
	l.qmu.Lock()
	l.queue = append(l.queue, w)
	l.qmu.Unlock()
	if _, _, ok := l.acquire(); ok { // a slot came free before we were queued
		l.qmu.Lock()
		if !w.granted {
			l.dequeue(w)
			l.qmu.Unlock()
			return nil
		}
		l.qmu.Unlock()
		l.release() // we hold two: give one back
		return nil
	}
	start := time.Now()
	t := time.NewTimer(l.cfg.MaxWait)
	defer t.Stop()
	select {
	case <-w.ready:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	l.qmu.Lock()
	if w.granted { // granted as we gave up: the slot is ours to give back
		l.qmu.Unlock()
		l.release()
	} else {
		l.dequeue(w)
		l.qmu.Unlock()
	}
	if ctx.Err() != nil && callctx.Gone(ctx) {
		return ctx.Err()
	}
	return l.reject(ctx, time.Since(start))
}

func (l *limiter) dequeue(w *limitWaiter) {
	for i, q := range l.queue {
		if q == w {
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
			return
		}
	}
}

func (l *limiter) reject(ctx context.Context, waited time.Duration) error {
	err := &limitError{name: l.cfg.Name, limit: int(l.limit.Load()), after: max(time.Duration(l.lastAvg.Load()), time.Millisecond)}
	l.obs.Observe(ctx, Event{Kind: EventRejected, Layer: "adaptive_limit", Name: l.cfg.Name, Wait: waited, Err: err})
	return err
}

// ended takes a finished call's sample, gives its slot back, and closes the
// window when it is due.
func (l *limiter) ended(ctx context.Context, err error, start time.Time) {
	end := time.Now()
	rtt := end.Sub(start)
	switch {
	case ctx.Err() == nil && err == nil:
		l.sum.Add(int64(rtt))
		l.count.Add(1)
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		l.sum.Add(int64(rtt))
		l.count.Add(1)
		l.drops.Add(1)
	}
	l.release()
	now := end.UnixNano()
	if now-l.windowStart.Load() < int64(l.cfg.Window) || l.count.Load() < 10 || !l.mu.TryLock() {
		return
	}
	change, limit := l.update(now)
	l.mu.Unlock()
	if change {
		l.obs.Observe(ctx, Event{Kind: EventLimit, Layer: "adaptive_limit", Name: l.cfg.Name, Limit: limit, Latency: time.Duration(l.lastAvg.Load())})
	}
}

// update closes the window and moves the limit. l.mu is held.
func (l *limiter) update(now int64) (changed bool, limit int) {
	if now-l.windowStart.Load() < int64(l.cfg.Window) {
		return false, 0 // another caller closed it
	}
	n, sum, drops, peak := l.count.Swap(0), l.sum.Swap(0), l.drops.Swap(0), l.peak.Swap(l.inFlight())
	l.windowStart.Store(now)
	if n == 0 {
		return false, 0
	}
	avg := float64(sum) / float64(n)
	l.lastAvg.Store(int64(avg))
	// The no-load latency is the lowest a smoothed window average has
	// been (one window's average is too noisy to take its minimum),
	// drifting up by a thousandth per window.
	if l.smooth == 0 {
		l.smooth = avg
	} else {
		l.smooth = 0.8*l.smooth + 0.2*avg
	}
	if l.noLoad == 0 || l.smooth < l.noLoad {
		l.noLoad = l.smooth
	} else {
		l.noLoad *= 1.001
	}
	old := int(l.limit.Load())
	cur := l.exact
	target := l.cfg.Tolerance * l.noLoad
	appLimited := float64(peak) < cur/2
	switch l.cfg.Algorithm {
	case LimitAIMD:
		switch {
		case drops > 0 || avg > target:
			cur *= 0.9
		case !appLimited:
			cur++
		}
	default: // gradient
		g := max(0.5, min(1, target/avg))
		next := cur*g + math.Sqrt(cur)
		switch {
		case g < 1 || drops > 0:
			if drops > 0 {
				g = min(g, 0.9)
				next = min(next, cur*g)
			}
			cur = next
		case !appLimited:
			cur = cur*0.8 + next*0.2
		}
	}
	// Never grow past twice the most calls the window had in flight: a
	// limit far above the load has not been tested, and would let a queue
	// build when the load comes.
	if grown := 2 * float64(peak); cur > float64(old) && cur > grown {
		cur = max(float64(old), grown)
	}
	cur = max(float64(l.cfg.MinLimit), min(float64(l.cfg.MaxLimit), cur))
	l.exact = cur
	nl := int(math.Round(cur))
	nl = max(l.cfg.MinLimit, min(l.cfg.MaxLimit, nl))
	l.limit.Store(int64(nl))
	return nl != old, nl
}

// limitError is an AdaptiveLimit rejection: it matches ErrLimited and
// says when to try again.
type limitError struct {
	name  string
	limit int
	after time.Duration
}

func (e *limitError) Error() string {
	if e.name != "" {
		return fmt.Sprintf("middleware: concurrency limit reached: %s: limit %d", e.name, e.limit)
	}
	return fmt.Sprintf("middleware: concurrency limit reached: limit %d", e.limit)
}

func (e *limitError) Is(target error) bool { return target == ErrLimited }

// RetryAfter is about one call's latency: when a slot is likely free.
func (e *limitError) RetryAfter() time.Duration { return e.after }
