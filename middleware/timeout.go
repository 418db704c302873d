package middleware

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/callback"
	"github.com/resiliencekit/resilience/internal/callctx"
)

// defaultMaxAbandoned is the cap on abandoned calls still running that a
// [TimeoutConfig] with MaxAbandoned 0 uses.
const defaultMaxAbandoned = 1000

// TimeoutConfig configures [TimeoutWith]. The zero value is not usable on its
// own: Timeout has no default and must be set. Every other field's zero value
// is the guide's default (raise on timeout, cooperative).
type TimeoutConfig struct {
	// Timeout bounds each call: the guide's with_timeout(seconds). It must
	// be greater than 0; there is no default.
	Timeout time.Duration

	// Abandon makes the layer stop waiting at the deadline even when the
	// endpoint ignores its context: the endpoint runs in a goroutine of its
	// own, which is left running ("abandoned") when the deadline passes, and
	// whose late result is dropped: a goroutine per call. Default false: cooperative, no goroutine, and the
	// endpoint must honour its context.
	Abandon bool

	// MaxAbandoned caps the abandoned calls still running, per wrapped
	// endpoint, in abandon mode: once that many are running, new calls are
	// rejected at once with an error matching [ErrBulkheadFull], not queued. Default 0
	// means defaultMaxAbandoned (1000); negative is an error. Ignored
	// unless Abandon is set.
	MaxAbandoned int

	// Default is the response returned, with a nil error, in place of the
	// timeout error when ReturnDefault is set: the guide's default=...
	// Default nil (the guide's default=None). Setting it without
	// ReturnDefault is an error, since it would never be returned.
	Default any

	// ReturnDefault makes the layer's own timeout return (Default, nil)
	// instead of an error: the guide's raise_on_timeout=False. The timeout
	// is still reported to the Observer. It never applies when the caller's
	// context ended first. Default false: a timeout returns an error.
	ReturnDefault bool

	// Name names the layer in its events. Default "".
	Name string

	// Observer receives the layer's events: [EventTimeout],
	// [EventRejected] and, in abandon mode, [EventPanic]. Default nil:
	// a [LogObserver] on [slog.Default].
	Observer Observer
}

// Validate returns every problem in c at once, joined with [errors.Join],
// each a [*ConfigError] matching [ErrInvalidConfig]; or nil when c is valid.
func (c TimeoutConfig) Validate() error {
	p := problems{layer: "timeout", goType: "TimeoutConfig"}
	if c.Timeout <= 0 {
		p.add("timeout", "Timeout", c.Timeout, "must be greater than 0")
	}
	if c.MaxAbandoned < 0 {
		p.add("max_abandoned", "MaxAbandoned", c.MaxAbandoned,
			fmt.Sprintf("must not be negative (0 means the default, %d)", defaultMaxAbandoned))
	}
	if c.Default != nil && !c.ReturnDefault {
		p.add("default", "Default", c.Default, "is set but return_default is false, so it would never be returned")
	}
	validateObserver(&p, c.Observer)
	return p.err()
}

// Timeout returns a middleware that bounds each call to d. It is
// TimeoutWith(TimeoutConfig{Timeout: d}): cooperative,
// so the endpoint must honour its context. A call that outlives d fails with
// an error matching [ErrTimeout] and [context.DeadlineExceeded]; see
// [TimeoutWith] for the details. Timeout panics with an error matching
// [ErrInvalidConfig] if d is not greater than 0.
func Timeout(d time.Duration) endpoint.Middleware {
	return TimeoutWith(TimeoutConfig{Timeout: d})
}

// TimeoutWith returns a middleware that bounds each call to cfg.Timeout. It
// panics with cfg.Validate's error (matching [ErrInvalidConfig]) when cfg is
// not valid, and the middleware panics, matching it too, when given a nil
// endpoint. The returned endpoints are safe for concurrent use.
//
// # Cooperative (the default)
//
// The endpoint is called on the caller's goroutine with a context whose
// deadline is cfg.Timeout away (or the caller's deadline, if earlier),
// made with [context.WithTimeoutCause]; no goroutine is started. The endpoint must honour its
// context: return soon after ctx.Done() is closed. One that ignores it keeps
// the caller waiting until it returns; use Abandon for such endpoints. A
// success is returned as is, even one that came after the deadline.
//
// # Abandon mode
//
// With cfg.Abandon the endpoint runs in a goroutine of its own (a goroutine
// and a few allocations per call) and the caller stops waiting at the
// deadline whatever the endpoint does. The worker goroutine is then
// "abandoned": it keeps running with a cancelled context, and its result is
// dropped when it comes. A panic in the worker is re-raised in the caller's
// goroutine with the original panic value, after an [EventPanic] whose Err is
// a [*PanicError] carrying the worker's stack; a panic in an already abandoned
// worker has no caller left to reach, so it is reported as [EventPanic] (from
// the worker's goroutine, the library's own: a panic of the Observer there is
// recovered and logged at Error with its stack, with cfg.Logger or
// [slog.Default]) and dropped. A call whose context has already ended
// returns the context's error without starting a worker.
//
// Abandoned workers still running are counted per wrapped endpoint. Once there
// are cfg.MaxAbandoned of them (default defaultMaxAbandoned), new calls are
// rejected at once with an error matching [ErrBulkheadFull], without calling the endpoint,
// and reported as [EventRejected]; calls are admitted again as
// abandoned workers finish. The cap is checked when a call starts, so calls
// already running may take the count past it.
//
// # Errors
//
// When the layer's own deadline ends a call (the endpoint returned an error
// after it passed, or the caller stopped waiting in abandon mode), the error
// matches [ErrTimeout], [context.DeadlineExceeded] and, in cooperative mode or
// when the endpoint returned in time to be heard, the endpoint's own error,
// all with [errors.Is]. Its message reads
// "middleware: timeout after 30s: <endpoint's error>". The response returned
// with it is nil. The timeout is reported as one [EventTimeout] (Delay is
// cfg.Timeout, Err the timeout error); with cfg.ReturnDefault the call then
// returns (cfg.Default, nil) instead.
//
// The layer's deadline carries a cause of the library's own (see
// [context.WithTimeoutCause]), so the layers inside and outside tell it from
// the caller's: a call it cuts is a failure of the service to a
// [CircuitBreaker] and [Measure] inside or outside it, while a caller's
// deadline, even one made with [ErrTimeout] as its cause, is not.
//
// When the caller's own context ends first (its deadline is earlier, or it
// was cancelled), the layer adds nothing: the endpoint's result passes through
// unchanged in cooperative mode, and the caller's ctx.Err() is returned at
// once in abandon mode. [ErrTimeout] does not match, no event is reported,
// and cfg.Default is not returned.
func TimeoutWith(cfg TimeoutConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	s := &timeoutLayer{
		d:             cfg.Timeout,
		def:           cfg.Default,
		returnDefault: cfg.ReturnDefault,
		name:          cfg.Name,
		obs:           observer(cfg.Observer),
		cause:         &callctx.Deadline{Err: ErrTimeout},
	}
	maxAbandoned := int64(cfg.MaxAbandoned)
	if maxAbandoned == 0 {
		maxAbandoned = defaultMaxAbandoned
	}
	abandon := cfg.Abandon
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("timeout", next)
		if abandon {
			a := &abandoningEndpoint{timeoutLayer: s, next: next, max: maxAbandoned}
			return a.call
		}
		return func(ctx context.Context, req any) (any, error) {
			ctx2, cancel := context.WithTimeoutCause(ctx, s.d, s.cause)
			defer cancel()
			resp, err := next(ctx2, req)
			if err == nil {
				return resp, nil
			}
			return s.result(ctx, ctx2, resp, err)
		}
	}
}

// timeoutLayer is the immutable part of a timeout middleware, shared by every
// endpoint it wraps.
type timeoutLayer struct {
	d             time.Duration
	def           any
	returnDefault bool
	name          string
	obs           Observer
	// cause is the cause of this layer's own deadline: the layers beneath,
	// and this one, tell it from the caller's (see internal/callctx).
	cause *callctx.Deadline
}

// result turns a failed call's outcome into the layer's: a timeout when the
// layer's own deadline on ctx2 ended it while the caller's ctx is still live,
// and the outcome unchanged otherwise.
func (s *timeoutLayer) result(ctx, ctx2 context.Context, resp any, err error) (any, error) {
	if ctx.Err() != nil || context.Cause(ctx2) != error(s.cause) {
		return resp, err
	}
	return s.timedOut(ctx, err)
}

// timedOut reports the layer's own timeout and returns its outcome. cause is
// the endpoint's error, or nil when the endpoint was abandoned.
func (s *timeoutLayer) timedOut(ctx context.Context, cause error) (any, error) {
	err := &timeoutAfterError{d: s.d, err: cause}
	s.obs.Observe(ctx, Event{Kind: EventTimeout, Layer: "timeout", Name: s.name, Latency: s.d, Err: err})
	if s.returnDefault {
		return s.def, nil
	}
	return nil, err
}

// timeoutAfterError is the error of a call ended by the layer's own deadline.
// It matches ErrTimeout (and so context.DeadlineExceeded) and the endpoint's
// error, if any.
type timeoutAfterError struct {
	d   time.Duration
	err error // the endpoint's error; nil when it was abandoned
}

func (e *timeoutAfterError) Error() string {
	msg := ErrTimeout.Error() + " after " + e.d.String()
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *timeoutAfterError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrTimeout}
	}
	return []error{ErrTimeout, e.err}
}

// Timeout reports true, as net.Error's Timeout does.
func (e *timeoutAfterError) Timeout() bool { return true }

// States of an abandon-mode call. Exactly one of the caller (running →
// abandoned) and the worker (running → done) wins the CompareAndSwap, so an
// abandoned worker is counted once and uncounted once.
const (
	callRunning int32 = iota
	callDone
	callAbandoned
)

// abandoningEndpoint is one endpoint wrapped by an abandon-mode timeout.
type abandoningEndpoint struct {
	*timeoutLayer
	next      endpoint.Endpoint
	max       int64
	abandoned atomic.Int64 // abandoned workers still running
}

// timeoutCall is the state one abandon-mode call shares with its worker.
type timeoutCall struct {
	state atomic.Int32
	done  chan workResult // capacity 1: the worker never blocks sending
}

// workResult is what a worker hands back to its caller.
type workResult struct {
	resp  any
	err   error
	value any         // the panic value, when panic is set
	panic *PanicError // set when the endpoint panicked
	exit  bool        // set when the endpoint called runtime.Goexit
}

func (a *abandoningEndpoint) call(ctx context.Context, req any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if a.abandoned.Load() >= a.max {
		a.obs.Observe(ctx, Event{Kind: EventRejected, Layer: "timeout", Name: a.name, Err: errTooManyAbandoned})
		return nil, errTooManyAbandoned
	}
	ctx2, cancel := context.WithTimeoutCause(ctx, a.d, a.cause)
	defer cancel()
	c := &timeoutCall{done: make(chan workResult, 1)}
	go a.work(ctx2, req, c)
	select {
	case r := <-c.done:
		return a.finish(ctx, ctx2, r)
	case <-ctx2.Done():
	}
	if !c.state.CompareAndSwap(callRunning, callAbandoned) {
		// The worker finished at the same instant and won: its result is
		// already in the buffer.
		return a.finish(ctx, ctx2, <-c.done)
	}
	a.abandoned.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return a.timedOut(ctx, nil)
}

// finish returns the outcome of a worker that finished before its caller gave
// up on it, re-raising its panic or Goexit in the caller's goroutine.
func (a *abandoningEndpoint) finish(ctx, ctx2 context.Context, r workResult) (any, error) {
	switch {
	case r.panic != nil:
		a.obs.Observe(ctx, Event{Kind: EventPanic, Layer: "timeout", Name: a.name, Err: r.panic})
		panic(r.value)
	case r.exit:
		runtime.Goexit()
	case r.err == nil:
		return r.resp, nil
	}
	return a.result(ctx, ctx2, r.resp, r.err)
}

// work runs the endpoint in a worker goroutine and hands its outcome to the
// caller, or drops it when the caller has abandoned the call.
func (a *abandoningEndpoint) work(ctx context.Context, req any, c *timeoutCall) {
	var r workResult
	returned := false
	defer func() {
		if !returned {
			if v := recover(); v != nil {
				r.value, r.panic = v, newPanicError(v)
			} else {
				r.exit = true // runtime.Goexit: recover returns nil
			}
		}
		c.done <- r
		if c.state.CompareAndSwap(callRunning, callDone) {
			return
		}
		// Abandoned: nobody will read r. Uncount the worker first, so that a
		// panicking Observer cannot leak its place under the cap; the
		// Observer runs on this goroutine of the library's own, so its panic
		// is logged, not raised.
		a.abandoned.Add(-1)
		if r.panic != nil {
			callback.Log(nil, callback.Call("timeout observer", func() {
				a.obs.Observe(context.WithoutCancel(ctx), Event{Kind: EventPanic, Layer: "timeout", Name: a.name, Err: r.panic})
			}))
		}
	}()
	r.resp, r.err = a.next(ctx, req)
	returned = true
}
