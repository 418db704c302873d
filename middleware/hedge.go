package middleware

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
)

// HedgeConfig configures [Hedge]. Delay or Quantile must be set, and so
// must Idempotent: a hedged call is sent more than once.
type HedgeConfig struct {
	// Delay is how long the first attempt runs before a hedge is sent, and
	// then between hedges. With Quantile set, it is the delay used until
	// the layer has seen 100 calls. Negative is an error.
	Delay time.Duration

	// Quantile, when set, makes the delay the given quantile of the
	// latencies of the layer's recent successful attempts (0.95: hedge the
	// slowest 5% of calls), never below Delay. It must be in (0, 1).
	Quantile float64

	// MaxHedges is how many hedges a call may send beside its first
	// attempt. Default (0): 1. Negative is an error.
	MaxHedges int

	// Idempotent reports whether a call may be sent more than once: only
	// those calls are hedged, the others go through once, untouched. It is
	// required: func(context.Context, any) bool { return true } hedges
	// every call. It is called on the caller's goroutine.
	Idempotent func(ctx context.Context, req any) bool

	// Budget, when set, counts every hedge against a [RetryBudget] (the one
	// the stack's Retry shares, say): a hedge the budget refuses is not
	// sent. Default nil: no budget.
	Budget *RetryBudget

	// Name names the layer in its events. Default "".
	Name string

	// Observer receives the layer's events: [EventHedge] for each hedge
	// sent. Default nil: a [LogObserver] on [slog.Default].
	Observer Observer
}

// Validate returns every problem in c at once, each a [*ConfigError]
// matching [ErrInvalidConfig] and naming the field (as "hedge.delay"); nil
// when c is valid.
func (c HedgeConfig) Validate() error {
	p := problems{layer: "hedge", goType: "HedgeConfig"}
	switch {
	case c.Delay < 0:
		p.add("delay", "Delay", c.Delay, "must not be negative")
	case c.Delay == 0 && c.Quantile == 0:
		p.add("delay", "Delay", c.Delay, "must be set, or quantile (Quantile): when to send a hedge")
	}
	if math.IsNaN(c.Quantile) || c.Quantile < 0 || c.Quantile >= 1 {
		p.add("quantile", "Quantile", c.Quantile, "must be in (0, 1), or 0 for a fixed delay")
	}
	if c.MaxHedges < 0 {
		p.add("max_hedges", "MaxHedges", c.MaxHedges, "must not be negative (0 means the default 1)")
	}
	if c.Idempotent == nil {
		p.add("idempotent", "Idempotent", nil, "must be set: only the calls it approves are sent more than once (return true to hedge every call)")
	}
	validateObserver(&p, c.Observer)
	return p.err()
}

// Hedge returns a middleware that sends a call again, to race the first
// attempt, when the first has not answered within a delay (a fixed Delay, or
// a Quantile of recent latencies): up to MaxHedges hedges, one per delay.
// The first success is returned at once and every other attempt is
// canceled (its context canceled; the layer does not wait for it). An
// attempt that fails while no other is running sends the next hedge at once;
// one that is rejected (an open circuit, a throttle: load shedding) ends the
// call with its rejection. When every attempt fails, the last failure is
// returned. A call that
// Idempotent does not approve goes through once, untouched; so does every
// call when a hedge would not fit before the caller's deadline.
//
// Hedging cuts the tail latency a slow instance or a slow request causes,
// at the cost of extra calls: with Quantile 0.95 about 5% of calls are
// hedged while latencies keep their shape. A Budget bounds the extra calls
// however the latencies move. Each attempt runs on a goroutine of its own,
// so the layer costs a goroutine and a timer per hedged call (measured in
// bench/ and middleware's benchmarks). A panic in an attempt is re-raised
// on the caller's goroutine, as if the endpoint had been called directly,
// after the other attempts are canceled.
//
// In a [Stack] it sits inside Retry and outside Throttle and Timeout, so
// that each hedge is a request the throttle counts and has an attempt
// timeout of its own. It panics with cfg.Validate's error (matching
// [ErrInvalidConfig]) when cfg is not valid.
func Hedge(cfg HedgeConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	h := &hedger{cfg: cfg, obs: observer(cfg.Observer), max: cfg.MaxHedges}
	if h.max == 0 {
		h.max = 1
	}
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("hedge", next)
		return func(ctx context.Context, req any) (any, error) {
			if !h.cfg.Idempotent(ctx, req) {
				return next(ctx, req)
			}
			delay := h.delay()
			if dl, ok := ctx.Deadline(); ok && !time.Now().Add(delay).Before(dl) {
				return next(ctx, req) // no hedge could be sent in time
			}
			return h.call(ctx, next, req, delay)
		}
	}
}

// hedger is a Hedge layer's configuration and its latency record.
type hedger struct {
	cfg HedgeConfig
	obs Observer
	max int

	lat latencies
}

type hedgeResult struct {
	resp     any
	err      error
	panicked bool
	value    any // the panic's
	took     time.Duration
	attempt  int
}

// call runs a hedged call.
func (h *hedger) call(ctx context.Context, next endpoint.Endpoint, req any, delay time.Duration) (any, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()                             // the losers
	results := make(chan hedgeResult, h.max+1) // never blocks a loser
	launch := func(n int) {
		go func() {
			start := time.Now()
			r := hedgeResult{attempt: n}
			defer func() {
				if v := recover(); v != nil {
					r.panicked, r.value = true, v
				}
				r.took = time.Since(start)
				results <- r
			}()
			r.resp, r.err = next(actx, req)
		}()
	}
	launch(0)
	timer := time.NewTimer(delay)
	defer timer.Stop()
	outstanding, sent := 1, 0
	var last hedgeResult
	// handle takes one attempt's result and reports whether the call is
	// over, with what it returns.
	handle := func(r hedgeResult) (over bool, resp any, err error) {
		outstanding--
		if r.panicked {
			cancel()
			panic(r.value)
		}
		if r.err == nil {
			if r.attempt == 0 {
				h.lat.add(r.took)
			}
			return true, r.resp, nil
		}
		last = r
		if rejection(r.err) {
			return true, r.resp, r.err // load shedding: sending more would not help
		}
		if outstanding == 0 {
			if sent == h.max || ctx.Err() != nil || !h.send(ctx, &sent, r.err) {
				return true, last.resp, last.err
			}
			outstanding++
			launch(sent)
			timer.Reset(delay)
		}
		return false, nil, nil
	}
	// A result ready at the same instant as the timer or the context's
	// end is taken first (select alone picks at random), so that a run in
	// fake time repeats.
	ready := func() (over bool, resp any, err error) {
		for {
			select {
			case r := <-results:
				if over, resp, err = handle(r); over {
					return over, resp, err
				}
			default:
				return false, nil, nil
			}
		}
	}
	for {
		select {
		case r := <-results:
			if over, resp, err := handle(r); over {
				return resp, err
			}
		case <-timer.C:
			if over, resp, err := ready(); over {
				return resp, err
			}
			if sent < h.max && outstanding > 0 && h.send(ctx, &sent, nil) {
				outstanding++
				launch(sent)
				if sent < h.max {
					timer.Reset(delay)
				}
			}
		case <-ctx.Done():
			if over, resp, err := ready(); over {
				return resp, err
			}
			// The caller has gone, or its deadline passed: the attempts'
			// own answer to that (their contexts end too) comes at once
			// from an endpoint that honours its context; do not wait for
			// one that does not.
			return nil, ctx.Err()
		}
	}
}

// send takes a hedge from the budget, if any, counts it and reports it.
func (h *hedger) send(ctx context.Context, sent *int, after error) bool {
	if h.cfg.Budget != nil && !h.cfg.Budget.take() {
		return false
	}
	*sent++
	h.obs.Observe(ctx, Event{Kind: EventHedge, Layer: "hedge", Name: h.cfg.Name, Attempt: *sent + 1, Err: after})
	return true
}

// delay is the wait before a hedge: Delay, or the Quantile of recent
// latencies once there are enough of them, never below Delay.
func (h *hedger) delay() time.Duration {
	if h.cfg.Quantile == 0 {
		return h.cfg.Delay
	}
	if q, ok := h.lat.quantile(h.cfg.Quantile); ok {
		return max(q, h.cfg.Delay)
	}
	return h.cfg.Delay
}

// latencies is a decaying histogram of latencies in buckets a quarter of a
// power of two wide, from 1µs: when it holds 2,000 samples, every count is
// halved, so it follows the recent calls.
type latencies struct {
	mu     sync.Mutex
	counts [latencyBuckets]int64
	total  int64
	ready  atomic.Bool // the histogram has had 100 samples: quantile's test without the lock
}

const latencyBuckets = 4 * 40 // 1µs × 2^40 is about 12 days

func latencyBucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	return min(latencyBuckets-1, int(4*math.Log2(us)))
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.counts[latencyBucket(d)]++
	l.total++
	if l.total >= 2000 {
		l.total = 0
		for i := range l.counts {
			l.counts[i] /= 2
			l.total += l.counts[i]
		}
	}
	enough := l.total >= 100
	l.mu.Unlock()
	if enough {
		l.ready.Store(true)
	}
}

// quantile returns the upper edge of the bucket holding quantile q, and
// false until 100 samples have been seen.
func (l *latencies) quantile(q float64) (time.Duration, bool) {
	if !l.ready.Load() {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	want := int64(math.Ceil(q * float64(l.total)))
	var seen int64
	for i, c := range l.counts {
		if seen += c; seen >= want {
			return time.Duration(math.Exp2(float64(i+1)/4) * float64(time.Microsecond)), true
		}
	}
	return time.Duration(math.Exp2(latencyBuckets/4) * float64(time.Microsecond)), true
}

// describeHedge is the layer in String.
func describeHedge(c HedgeConfig) string {
	n := c.MaxHedges
	if n == 0 {
		n = 1
	}
	if c.Quantile > 0 {
		return fmt.Sprintf("hedge(p%g, up to %d)", 100*c.Quantile, n)
	}
	return fmt.Sprintf("hedge(after %s, up to %d)", c.Delay, n)
}
