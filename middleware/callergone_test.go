package middleware_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

var (
	errSibling = errors.New("sibling failed")
	errMine    = errors.New("caller's own deadline")
	errReset   = errors.New("connection reset by peer")
)

// hangCause is an endpoint that waits for its context and then fails the way
// net/http does: with the context's cause, wrapped in a *url.Error.
func hangCause(ctx context.Context, _ any) (any, error) {
	<-ctx.Done()
	return nil, &url.Error{Op: "Get", URL: "http://upstream", Err: context.Cause(ctx)}
}

// hangErr waits for its context and returns ctx.Err().
func hangErr(ctx context.Context, _ any) (any, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// hangOther waits for its context and then returns an error that says
// nothing about contexts: what a transport may return once its caller left.
func hangOther(ctx context.Context, _ any) (any, error) {
	<-ctx.Done()
	return nil, errReset
}

// callerEnd is one way a call ends, as the sweep below makes it.
type callerEnd struct {
	name string
	// caller returns the caller's context, ended (or not) 1s into the call.
	caller func(t *testing.T) context.Context
	// endpoint is the dependency; it hangs until its context ends.
	endpoint endpoint.Endpoint
	// budget and timeout are the stack's own deadlines (0: none).
	budget, timeout time.Duration
	// failure: the outcome is a verdict on the service (a failure); else it
	// is neutral (the caller has gone).
	failure bool
	// retried: a Retry of 2 attempts makes the second.
	retried bool
	// wantErr is matched by the error the caller gets, when set.
	wantErr []error
}

// afterCancel returns a context cancelled 1s from now by a goroutine.
func afterCancel(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(time.Second, cancel)
	t.Cleanup(cancel)
	return ctx
}

// afterCancelCause returns a context cancelled 1s from now with errSibling.
func afterCancelCause(t *testing.T) context.Context {
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(time.Second, func() { cancel(errSibling) })
	t.Cleanup(func() { cancel(nil) })
	return ctx
}

// group is errgroup.WithContext as golang.org/x/sync/errgroup makes it: a
// context cancelled, with the first error as its cause, when one of the
// group's functions fails.
type group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGroup(parent context.Context) *group {
	ctx, cancel := context.WithCancelCause(parent)
	return &group{ctx: ctx, cancel: cancel}
}

func (g *group) Go(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.once.Do(func() { g.err = err; g.cancel(err) })
		}
	})
}

func (g *group) Wait() error { g.wg.Wait(); g.cancel(g.err); return g.err }

// siblingFails returns the context of an errgroup whose other member fails
// 1s from now.
func siblingFails(t *testing.T) context.Context {
	g := newGroup(t.Context())
	g.Go(func() error { time.Sleep(time.Second); return errSibling })
	t.Cleanup(func() { _ = g.Wait() })
	return g.ctx
}

func afterTimeoutCause(cause error) func(t *testing.T) context.Context {
	return func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeoutCause(t.Context(), time.Second, cause)
		t.Cleanup(cancel)
		return ctx
	}
}

func afterDeadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	t.Cleanup(cancel)
	return ctx
}

func alive(t *testing.T) context.Context { return t.Context() }

// callerEnds lists the ways a call can end: the caller leaving in every way
// it can (neutral), and the stack's own deadlines cutting it (a failure).
var callerEnds = []callerEnd{
	{name: "caller Cancel", caller: afterCancel, endpoint: hangErr},
	{name: "caller Cancel, endpoint returns the cause", caller: afterCancel, endpoint: hangCause},
	{name: "caller CancelCause(custom)", caller: afterCancelCause, endpoint: hangCause},
	{name: "caller WithTimeoutCause(custom)", caller: afterTimeoutCause(errMine), endpoint: hangCause},
	{name: "caller WithTimeoutCause(ErrTimeout)", caller: afterTimeoutCause(middleware.ErrTimeout), endpoint: hangCause},
	{name: "errgroup sibling failure", caller: siblingFails, endpoint: hangCause},
	{name: "caller deadline", caller: afterDeadline, endpoint: hangErr},
	{name: "caller deadline, endpoint returns the cause", caller: afterDeadline, endpoint: hangCause},
	{name: "caller deadline under the stack's longer Budget and Timeout", caller: afterDeadline, endpoint: hangCause, budget: time.Minute, timeout: 30 * time.Second},
	{name: "endpoint returns another error after caller gone", caller: afterCancelCause, endpoint: hangOther},
	{name: "stack Budget cut (hanging endpoint)", caller: alive, endpoint: hangErr, budget: time.Second,
		failure: true, wantErr: []error{middleware.ErrTimeout, context.DeadlineExceeded}},
	{name: "stack Budget cut, endpoint returns the cause", caller: alive, endpoint: hangCause, budget: time.Second,
		failure: true, wantErr: []error{middleware.ErrTimeout, context.DeadlineExceeded}},
	{name: "stack Budget cut before the caller's later deadline", caller: afterTimeoutCause(errMine), endpoint: hangCause, budget: 500 * time.Millisecond,
		failure: true, wantErr: []error{middleware.ErrTimeout, context.DeadlineExceeded}},
	{name: "attempt Timeout cut", caller: alive, endpoint: hangErr, timeout: time.Second,
		failure: true, retried: true, wantErr: []error{middleware.ErrTimeout, context.DeadlineExceeded}},
	{name: "attempt Timeout cut, endpoint returns the cause", caller: alive, endpoint: hangCause, timeout: time.Second,
		failure: true, retried: true, wantErr: []error{middleware.ErrTimeout}},
	{name: "attempt Timeout cut under a Budget", caller: alive, endpoint: hangErr, timeout: time.Second, budget: time.Minute,
		failure: true, retried: true, wantErr: []error{middleware.ErrTimeout}},
}

// stackFor returns the stack of tt's own deadlines with the layers given.
func stackFor(tt callerEnd, s middleware.Stack) middleware.Stack {
	s.Budget = tt.budget
	if tt.timeout > 0 {
		s.Timeout = middleware.TimeoutConfig{Timeout: tt.timeout}
	}
	s.Observer = quiet
	return s
}

func apply(t *testing.T, s middleware.Stack, ep endpoint.Endpoint) endpoint.Endpoint {
	t.Helper()
	e, err := s.Apply(ep)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return e
}

// TestCallerGoneSweep: every way a call can end, against every layer that
// turns an outcome into a verdict. A call whose caller has gone is never a
// verdict on the service (breaker streak 0, Measure "canceled", no retry, no
// fallback); a call cut by the stack's own Budget or Timeout is a failure
// (breaker streak 1, Measure "failure", a fallback served) and its error
// matches ErrTimeout.
func TestCallerGoneSweep(t *testing.T) {
	for _, tt := range callerEnds {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("breaker", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					reg := registry.New(registry.Config{})
					e := apply(t, stackFor(tt, middleware.Stack{
						CircuitBreaker: middleware.BreakerConfig{Name: "svc", Registry: reg},
					}), tt.endpoint)
					_, err := e(tt.caller(t), nil)
					for _, want := range tt.wantErr {
						if !errors.Is(err, want) {
							t.Errorf("err = %v, want it to match %v", err, want)
						}
					}
					b, _ := reg.Get("svc")
					s := b.Snapshot()
					want := 0
					if tt.failure {
						want = 1
					}
					if s.ConsecutiveFailures != want {
						t.Errorf("failure streak = %d, want %d (err %v)", s.ConsecutiveFailures, want, err)
					}
				})
			})
			t.Run("measure", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var rec recorder
					s := stackFor(tt, middleware.Stack{Name: "svc", Measure: true})
					s.Observer = &rec // Measure reports to the stack's Observer
					e := apply(t, s, tt.endpoint)
					_, _ = e(tt.caller(t), nil)
					want := middleware.OutcomeCanceled
					if tt.failure {
						want = middleware.OutcomeFailure
					}
					var got []middleware.Outcome
					for _, ev := range rec.Events() {
						if ev.Kind == middleware.EventCall {
							got = append(got, ev.Outcome)
						}
					}
					if len(got) != 1 || got[0] != want {
						t.Errorf("outcomes = %v, want [%s]", got, want)
					}
				})
			})
			t.Run("retry", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var calls atomic.Int64
					ep := func(ctx context.Context, req any) (any, error) {
						calls.Add(1)
						return tt.endpoint(ctx, req)
					}
					e := apply(t, stackFor(tt, middleware.Stack{
						Retry: middleware.RetryConfig{MaxAttempts: 2, NoDelay: true},
					}), ep)
					_, _ = e(tt.caller(t), nil)
					want := int64(1)
					if tt.retried {
						want = 2
					}
					if got := calls.Load(); got != want {
						t.Errorf("calls = %d, want %d", got, want)
					}
				})
			})
			t.Run("fallback", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					e := apply(t, stackFor(tt, middleware.Stack{
						Fallback: middleware.FallbackConfig{Value: "fallback"},
					}), tt.endpoint)
					resp, err := e(tt.caller(t), nil)
					served := resp == "fallback" && err == nil
					if served != tt.failure {
						t.Errorf("fallback served = %v, want %v (err %v)", served, tt.failure, err)
					}
				})
			})
		})
	}
}

// TestErrgroupRoundsKeepHealthyBreakersClosed is the scenario: three
// errgroup rounds in which one sibling fails must not open the breakers of
// the two healthy siblings, whose calls the group cancelled (with the
// failing sibling's error as the cause, which net/http returns).
func TestErrgroupRoundsKeepHealthyBreakersClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New(registry.Config{})
		cfg := middleware.BreakerConfig{Registry: reg, FailureThreshold: 3, Observer: quiet}
		failing := middleware.CircuitBreaker("failing", cfg)(func(context.Context, any) (any, error) {
			time.Sleep(10 * time.Millisecond)
			return nil, errSibling
		})
		healthy := []endpoint.Endpoint{
			middleware.CircuitBreaker("healthy-a", cfg)(hangCause),
			middleware.CircuitBreaker("healthy-b", cfg)(hangCause),
		}
		for range 3 {
			g := newGroup(t.Context())
			g.Go(func() error { _, err := failing(g.ctx, nil); return err })
			for _, h := range healthy {
				g.Go(func() error { _, err := h(g.ctx, nil); return err })
			}
			if err := g.Wait(); !errors.Is(err, errSibling) {
				t.Fatalf("group = %v, want %v", err, errSibling)
			}
		}
		for _, name := range []string{"healthy-a", "healthy-b"} {
			b, _ := reg.Get(name)
			if s := b.Snapshot(); s.State != registry.StateClosed || s.ConsecutiveFailures != 0 {
				t.Errorf("%s: state %v, streak %d; want closed, 0", name, s.State, s.ConsecutiveFailures)
			}
		}
		if b, _ := reg.Get("failing"); b.Snapshot().State != registry.StateOpen {
			t.Errorf("failing: state %v, want open", b.Snapshot().State)
		}
	})
}

// TestBudgetOpensBreakerAgainstHangingEndpoint is the converse: a
// Budget with no attempt timeout, against an endpoint that hangs until its
// context ends, opens the breaker on the FailureThreshold-th call; and a
// Budget shorter than the retries' worst case does too.
func TestBudgetOpensBreakerAgainstHangingEndpoint(t *testing.T) {
	tests := []struct {
		name  string
		retry middleware.RetryConfig
	}{
		{name: "no retry, no attempt timeout"},
		{name: "budget shorter than the retries", retry: middleware.RetryConfig{MaxAttempts: 3, Delay: 10 * time.Second, DisableJitter: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := registry.New(registry.Config{})
				const threshold = 5
				var calls atomic.Int64
				e := apply(t, middleware.Stack{
					Budget:         time.Second,
					CircuitBreaker: middleware.BreakerConfig{Name: "hang", Registry: reg, FailureThreshold: threshold},
					Retry:          tt.retry,
					Observer:       quiet,
				}, func(ctx context.Context, req any) (any, error) {
					calls.Add(1)
					return hangErr(ctx, req)
				})
				for i := range threshold {
					_, err := e(t.Context(), nil)
					if !errors.Is(err, middleware.ErrTimeout) {
						t.Fatalf("call %d: err = %v, want ErrTimeout", i+1, err)
					}
				}
				if _, err := e(t.Context(), nil); !errors.Is(err, middleware.ErrCircuitOpen) {
					t.Errorf("call %d: err = %v, want ErrCircuitOpen", threshold+1, err)
				}
				if got := calls.Load(); got != threshold {
					t.Errorf("endpoint calls = %d, want %d", got, threshold)
				}
			})
		})
	}
}
