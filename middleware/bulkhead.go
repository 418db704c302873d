package middleware

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/callctx"
)

// BulkheadConfig configures [Bulkhead]. The zero value is not usable on its
// own: MaxConcurrent has no default and must be set. Every other field's zero
// value is the default: a call that finds every slot taken is rejected at
// once, without waiting.
type BulkheadConfig struct {
	// MaxConcurrent is how many calls may run at once. It must be at least
	// 1; there is no default.
	MaxConcurrent int

	// MaxWait is how long a call that finds every slot taken may wait for
	// one before it is rejected. Default 0: no wait, reject at once.
	// Negative is an error.
	MaxWait time.Duration

	// MaxQueue is how many calls may wait for a slot at once, when MaxWait
	// is set; a call that would be one more is rejected at once. Default 0:
	// MaxConcurrent. Negative is an error, and so is setting it without
	// MaxWait, since no call would ever wait.
	MaxQueue int

	// Name names the layer in its events. Default "".
	Name string

	// Observer receives the layer's events: [EventRejected] for each call
	// turned away. Default nil: a [LogObserver] on [slog.Default].
	Observer Observer
}

// Validate returns every problem in c at once, joined with [errors.Join],
// each a [*ConfigError] matching [ErrInvalidConfig] and naming the field (as
// "bulkhead.max_concurrent" and "BulkheadConfig.MaxConcurrent"); or nil when
// c is valid.
func (c BulkheadConfig) Validate() error {
	p := problems{layer: "bulkhead", goType: "BulkheadConfig"}
	if c.MaxConcurrent < 1 {
		p.add("max_concurrent", "MaxConcurrent", c.MaxConcurrent, "must be at least 1 (there is no default)")
	}
	if c.MaxWait < 0 {
		p.add("max_wait", "MaxWait", c.MaxWait, "must not be negative (0 means reject at once, without waiting)")
	}
	switch {
	case c.MaxQueue < 0:
		p.add("max_queue", "MaxQueue", c.MaxQueue, "must not be negative (0 means the default, max_concurrent)")
	case c.MaxQueue > 0 && c.MaxWait == 0:
		p.add("max_queue", "MaxQueue", c.MaxQueue, "is set but max_wait is 0, so no call would ever wait")
	}
	validateObserver(&p, c.Observer)
	return p.err()
}

// Bulkhead returns a middleware that lets at most cfg.MaxConcurrent calls
// run at once and turns the others away with an error matching
// [ErrBulkheadFull], without calling the endpoint. It panics with
// cfg.Validate's error (matching [ErrInvalidConfig]) when cfg is not valid,
// and the middleware panics, matching it too, when given a nil endpoint.
//
// The slots belong to the middleware: every endpoint one Bulkhead middleware
// wraps shares the same cfg.MaxConcurrent slots, so one compartment can guard
// several endpoints of one downstream. Call Bulkhead once per endpoint for
// separate compartments. The middleware, and every endpoint it returns, is
// safe for concurrent use.
//
// A call that finds a free slot takes it and runs at once, allocating
// nothing. A call that finds none is rejected at
// once with ErrBulkheadFull, unless cfg.MaxWait is set: then it waits up to
// MaxWait for a slot, in turn with the other waiting calls (at most
// cfg.MaxQueue of them; one more is rejected at once). A call still waiting
// when MaxWait passes is rejected with an error matching ErrBulkheadFull; one
// whose caller leaves while it waits (its context is cancelled or passes its
// deadline) returns the context's error, and one cut by a deadline of the
// library's own (a [Stack]'s Budget) is rejected with an error matching
// ErrBulkheadFull. Each
// rejection is reported once as [EventRejected] with Layer "bulkhead" (Delay
// is the time the call waited); a caller giving up is not reported.
//
// A slot is always given back when the call ends, however it ends: with a
// response, an error, a panic (which continues to the caller) or
// runtime.Goexit.
//
// Rejections are the toolkit's own load shedding, not a fault of the
// endpoint: [Retry] never retries them, and a circuit breaker does not count
// them as failures.
func Bulkhead(cfg BulkheadConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	b := &bulkhead{
		slots:   make(chan struct{}, cfg.MaxConcurrent),
		maxWait: cfg.MaxWait,
		name:    cfg.Name,
		obs:     observer(cfg.Observer),
	}
	if cfg.MaxWait > 0 {
		b.maxQueue = int64(cfg.MaxQueue)
		if b.maxQueue == 0 {
			b.maxQueue = int64(cfg.MaxConcurrent)
		}
	}
	b.errFull = bulkheadError(cfg.Name, "")
	b.errQueueFull = bulkheadError(cfg.Name, fmt.Sprintf("%d calls already waiting", b.maxQueue))
	b.errTimedOut = bulkheadError(cfg.Name, fmt.Sprintf("no slot free within %v", cfg.MaxWait))
	b.errCut = bulkheadError(cfg.Name, "no slot free before the deadline")
	if cfg.MaxWait == 0 {
		// No call ever waits, so no queue to keep in order: the slots are a
		// counter, taken and given back with one atomic operation each
		// instead of a channel's lock.
		c := &bulkheadCounter{bulkhead: b, max: int64(cfg.MaxConcurrent)}
		b.slots = nil
		return func(next endpoint.Endpoint) endpoint.Endpoint {
			mustEndpoint("bulkhead", next)
			return func(ctx context.Context, req any) (any, error) {
				if !c.acquire() {
					return nil, b.reject(ctx, b.errFull, 0)
				}
				defer c.release()
				return next(ctx, req)
			}
		}
	}
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("bulkhead", next)
		return func(ctx context.Context, req any) (any, error) {
			select {
			case b.slots <- struct{}{}:
			default:
				if err := b.wait(ctx); err != nil {
					return nil, err
				}
			}
			defer b.release()
			return next(ctx, req)
		}
	}
}

// bulkhead is a Bulkhead layer: its slots, and its resolved configuration,
// which is never modified after construction.
type bulkhead struct {
	// slots holds one element per call running: a call takes a slot by
	// sending and gives it back by receiving. A call waiting in a send is
	// handed the next slot given back, in the order they began waiting.
	slots    chan struct{}
	waiting  atomic.Int64 // calls waiting for a slot now
	maxWait  time.Duration
	maxQueue int64
	name     string
	obs      Observer

	// The rejections, built once so that rejecting allocates nothing.
	errFull, errQueueFull, errTimedOut, errCut error
}

// bulkheadError returns the rejection "middleware: bulkhead full: name:
// detail", leaving out what is empty. With neither it is ErrBulkheadFull.
func bulkheadError(name, detail string) error {
	switch {
	case name != "" && detail != "":
		return fmt.Errorf("%w: %s: %s", ErrBulkheadFull, name, detail)
	case name != "" || detail != "":
		return fmt.Errorf("%w: %s", ErrBulkheadFull, name+detail)
	}
	return ErrBulkheadFull
}

func (b *bulkhead) release() { <-b.slots }

// bulkheadCounter is the slots of a bulkhead whose calls never wait: the
// number of calls running.
type bulkheadCounter struct {
	*bulkhead
	running atomic.Int64
	max     int64
}

// acquire takes a slot if one is free. It never counts a call it turns away,
// not even for a moment, so a rejection never makes another call see the
// bulkhead fuller than it is.
func (c *bulkheadCounter) acquire() bool {
	for {
		n := c.running.Load()
		if n >= c.max {
			return false
		}
		if c.running.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (c *bulkheadCounter) release() { c.running.Add(-1) }

// wait waits for a slot, for a call that found none free. It returns nil
// when the call holds a slot, and otherwise the rejection or the context's
// error.
func (b *bulkhead) wait(ctx context.Context) error {
	if b.maxWait == 0 {
		return b.reject(ctx, b.errFull, 0)
	}
	if b.waiting.Add(1) > b.maxQueue {
		b.waiting.Add(-1)
		return b.reject(ctx, b.errQueueFull, 0)
	}
	defer b.waiting.Add(-1)
	if ctx.Err() != nil {
		return b.ended(ctx, 0)
	}
	start := time.Now()
	t := time.NewTimer(b.maxWait)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-t.C:
		return b.reject(ctx, b.errTimedOut, b.maxWait)
	case <-ctx.Done():
		return b.ended(ctx, time.Since(start))
	}
}

// ended returns the error of a wait whose context ended, by the package's
// one rule (internal/callctx): a caller who has gone gets the context's
// error and no event; a wait cut by a deadline of the library's own (a
// stack's Budget) is a rejection, reported like one: no slot came free in
// the time the call had.
func (b *bulkhead) ended(ctx context.Context, waited time.Duration) error {
	if callctx.Gone(ctx) {
		return ctx.Err()
	}
	return b.reject(ctx, b.errCut, waited)
}

func (b *bulkhead) reject(ctx context.Context, err error, waited time.Duration) error {
	b.obs.Observe(ctx, Event{Kind: EventRejected, Layer: "bulkhead", Name: b.name, Wait: waited, Err: err})
	return err
}
