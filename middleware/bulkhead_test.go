package middleware_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

// bulkheadHold is an endpoint that blocks until the request, when it is a
// channel, is closed, or the context ends; that runs for the request, when it
// is a duration; and that returns at once otherwise.
func bulkheadHold(ctx context.Context, req any) (any, error) {
	switch req := req.(type) {
	case chan struct{}:
		select {
		case <-req:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case time.Duration:
		time.Sleep(req)
	}
	return "ok", nil
}

// TestBulkheadNeverExceedsMax runs 64 goroutines of many calls each through
// a waiting bulkhead, in fake time: every call is admitted in turn, never
// more than MaxConcurrent at once, and the whole run takes exactly as long
// as MaxConcurrent lanes need.
func TestBulkheadNeverExceedsMax(t *testing.T) {
	const (
		goroutines = 64
		calls      = 20
		work       = time.Millisecond
	)
	tests := []struct {
		name string
		max  int
	}{
		{name: "1", max: 1},
		{name: "4", max: 4},
		{name: "16", max: 16},
		{name: "64", max: 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				counter := endpointtest.Count(endpointtest.New(endpointtest.Slow(work, "ok")).Endpoint())
				ep := middleware.Bulkhead(middleware.BulkheadConfig{
					MaxConcurrent: tt.max, MaxWait: time.Hour, MaxQueue: goroutines,
				})(counter.Endpoint())
				start := time.Now()
				var wg sync.WaitGroup
				for range goroutines {
					wg.Go(func() {
						for range calls {
							if _, err := ep(t.Context(), nil); err != nil {
								t.Errorf("err = %v, want nil", err)
							}
						}
					})
				}
				wg.Wait()
				if got, want := counter.Calls(), goroutines*calls; got != want {
					t.Errorf("calls = %d, want %d", got, want)
				}
				if got, want := counter.MaxInFlight(), tt.max; got != want {
					t.Errorf("max in flight = %d, want %d", got, want)
				}
				if got, want := time.Since(start), time.Duration(goroutines*calls/tt.max)*work; got != want {
					t.Errorf("elapsed = %v, want %v", got, want)
				}
			})
		})
	}
}

// TestBulkheadNeverExceedsMaxRace hammers a bulkhead from 64 goroutines in
// real time, for the race detector: calls are admitted or rejected with
// ErrBulkheadFull, and never more than MaxConcurrent run at once.
func TestBulkheadNeverExceedsMaxRace(t *testing.T) {
	const (
		goroutines = 64
		calls      = 200
	)
	tests := []struct {
		name string
		cfg  middleware.BulkheadConfig
	}{
		{name: "rejecting, 1", cfg: middleware.BulkheadConfig{MaxConcurrent: 1}},
		{name: "rejecting, 8", cfg: middleware.BulkheadConfig{MaxConcurrent: 8}},
		{name: "waiting, 4, queue 8", cfg: middleware.BulkheadConfig{MaxConcurrent: 4, MaxWait: time.Millisecond, MaxQueue: 8}},
		{name: "waiting, 8, unbounded wait", cfg: middleware.BulkheadConfig{MaxConcurrent: 8, MaxWait: time.Hour, MaxQueue: goroutines}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events recorder
			tt.cfg.Observer = &events
			counter := endpointtest.Count(func(context.Context, any) (any, error) {
				runtime.Gosched()
				return "ok", nil
			})
			ep := middleware.Bulkhead(tt.cfg)(counter.Endpoint())
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				rejected int
			)
			for range goroutines {
				wg.Go(func() {
					for range calls {
						_, err := ep(t.Context(), nil)
						if err == nil {
							continue
						}
						if !errors.Is(err, middleware.ErrBulkheadFull) {
							t.Errorf("err = %v, want nil or ErrBulkheadFull", err)
						}
						mu.Lock()
						rejected++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if got, max := counter.MaxInFlight(), tt.cfg.MaxConcurrent; got > max || got < 1 {
				t.Errorf("max in flight = %d, want 1 to %d", got, max)
			}
			if got, want := counter.Calls()+rejected, goroutines*calls; got != want {
				t.Errorf("admitted + rejected = %d, want %d", got, want)
			}
			if got, want := len(events.Events()), rejected; got != want {
				t.Errorf("events = %d, want %d (one per rejection)", got, want)
			}
			if got := counter.InFlight(); got != 0 {
				t.Errorf("in flight after the run = %d, want 0", got)
			}
		})
	}
}

// bulkheadCaller is one call in a bulkhead scenario.
type bulkheadCaller struct {
	startAt     time.Duration // when the call is made
	run         time.Duration // how long the call runs once admitted
	deadline    time.Duration // its context's timeout; 0 for none
	cancelAfter time.Duration // cancel its context this long after it starts; 0 for never
	wantErrs    []error
	notErrs     []error
	wantElapsed time.Duration
}

// TestBulkheadWait fills the bulkhead with holding calls, frees one of them
// at freeAt (if set), and makes the callers' calls, in order, each starting
// at its startAt; it checks each call's outcome and exact fake duration.
func TestBulkheadWait(t *testing.T) {
	full := []error{middleware.ErrBulkheadFull}
	tests := []struct {
		name       string
		cfg        middleware.BulkheadConfig
		freeAt     time.Duration // when one holding call returns; 0 for never
		callers    []bulkheadCaller
		wantDelays []time.Duration // the Delay of each rejection event, in order
	}{
		{
			name:       "no wait: rejected at once",
			cfg:        middleware.BulkheadConfig{MaxConcurrent: 2},
			freeAt:     10 * time.Millisecond,
			callers:    []bulkheadCaller{{wantErrs: full}},
			wantDelays: []time.Duration{0},
		},
		{
			name:       "wait times out exactly at MaxWait",
			cfg:        middleware.BulkheadConfig{MaxConcurrent: 2, MaxWait: 100 * time.Millisecond},
			callers:    []bulkheadCaller{{wantErrs: full, wantElapsed: 100 * time.Millisecond}},
			wantDelays: []time.Duration{100 * time.Millisecond},
		},
		{
			name:    "slot freed during the wait: admitted then",
			cfg:     middleware.BulkheadConfig{MaxConcurrent: 2, MaxWait: 100 * time.Millisecond},
			freeAt:  40 * time.Millisecond,
			callers: []bulkheadCaller{{wantElapsed: 40 * time.Millisecond}},
		},
		{
			name:   "slot freed: first waiter first",
			cfg:    middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: 100 * time.Millisecond, MaxQueue: 2},
			freeAt: 40 * time.Millisecond,
			callers: []bulkheadCaller{
				{run: 100 * time.Millisecond, wantElapsed: 140 * time.Millisecond},
				{wantErrs: full, wantElapsed: 100 * time.Millisecond},
			},
			wantDelays: []time.Duration{100 * time.Millisecond},
		},
		{
			name: "queue full: rejected at once",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 2, MaxWait: 100 * time.Millisecond, MaxQueue: 1},
			callers: []bulkheadCaller{
				{wantErrs: full, wantElapsed: 100 * time.Millisecond},
				{wantErrs: full},
			},
			wantDelays: []time.Duration{0, 100 * time.Millisecond},
		},
		{
			name: "default queue is MaxConcurrent",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 2, MaxWait: 100 * time.Millisecond},
			callers: []bulkheadCaller{
				{wantErrs: full, wantElapsed: 100 * time.Millisecond},
				{wantErrs: full, wantElapsed: 100 * time.Millisecond},
				{wantErrs: full},
			},
			wantDelays: []time.Duration{0, 100 * time.Millisecond, 100 * time.Millisecond},
		},
		{
			name: "a place in the queue frees when its waiter gives up",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: time.Second, MaxQueue: 1},
			callers: []bulkheadCaller{
				{cancelAfter: 10 * time.Millisecond, wantErrs: []error{context.Canceled}, notErrs: full, wantElapsed: 10 * time.Millisecond},
				{startAt: 5 * time.Millisecond, wantErrs: full},
				{startAt: 20 * time.Millisecond, wantErrs: full, wantElapsed: time.Second},
			},
			wantDelays: []time.Duration{0, time.Second},
		},
		{
			name: "caller's deadline during the wait: caller's error",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: time.Second},
			callers: []bulkheadCaller{{
				deadline: 30 * time.Millisecond, wantErrs: []error{context.DeadlineExceeded},
				notErrs: full, wantElapsed: 30 * time.Millisecond,
			}},
		},
		{
			name: "caller canceled during the wait: caller's error",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: time.Second},
			callers: []bulkheadCaller{{
				cancelAfter: 30 * time.Millisecond, wantErrs: []error{context.Canceled},
				notErrs: full, wantElapsed: 30 * time.Millisecond,
			}},
		},
		{
			name: "caller's deadline after MaxWait: rejected at MaxWait",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: 50 * time.Millisecond},
			callers: []bulkheadCaller{{
				deadline: time.Second, wantErrs: full, notErrs: []error{context.DeadlineExceeded},
				wantElapsed: 50 * time.Millisecond,
			}},
			wantDelays: []time.Duration{50 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var events recorder
				cfg := tt.cfg
				cfg.Name = "db"
				cfg.Observer = &events
				ep := middleware.Bulkhead(cfg)(bulkheadHold)

				holds := make([]chan struct{}, tt.cfg.MaxConcurrent)
				var holders sync.WaitGroup
				for i := range holds {
					holds[i] = make(chan struct{})
					holders.Go(func() {
						if _, err := ep(t.Context(), holds[i]); err != nil {
							t.Errorf("holding call %d: err = %v", i, err)
						}
					})
				}
				synctest.Wait() // every slot is taken
				if tt.freeAt > 0 {
					time.AfterFunc(tt.freeAt, func() { close(holds[0]) })
				}

				errs := make([]error, len(tt.callers))
				elapsed := make([]time.Duration, len(tt.callers))
				var callers sync.WaitGroup
				for i, c := range tt.callers {
					callers.Go(func() {
						time.Sleep(c.startAt)
						ctx, cancel := context.WithCancel(t.Context())
						defer cancel()
						if c.deadline > 0 {
							ctx, cancel = context.WithTimeout(ctx, c.deadline)
							defer cancel()
						}
						if c.cancelAfter > 0 {
							time.AfterFunc(c.cancelAfter, cancel)
						}
						start := time.Now()
						_, errs[i] = ep(ctx, c.run)
						elapsed[i] = time.Since(start)
					})
					synctest.Wait() // caller i is waiting, or done
				}
				callers.Wait()
				for i, c := range tt.callers {
					checkErrs(t, errs[i], c.wantErrs, c.notErrs)
					if got, want := elapsed[i], c.wantElapsed; got != want {
						t.Errorf("caller %d: elapsed = %v, want %v", i, got, want)
					}
				}
				var delays []time.Duration
				for _, e := range events.Events() {
					if e.Kind != middleware.EventRejected || e.Layer != "bulkhead" || e.Name != "db" ||
						!errors.Is(e.Err, middleware.ErrBulkheadFull) {
						t.Errorf("event = %+v, want rejected by bulkhead db with ErrBulkheadFull", e)
					}
					delays = append(delays, e.Wait)
				}
				if !reflect.DeepEqual(delays, tt.wantDelays) {
					t.Errorf("rejection delays = %v, want %v", delays, tt.wantDelays)
				}

				for i, ch := range holds {
					if i != 0 || tt.freeAt == 0 {
						close(ch)
					}
				}
				holders.Wait()
			})
		})
	}
}

// TestBulkheadReleasesSlot ends a call in each way a call can end, through a
// bulkhead of one slot, and checks that the next call is admitted.
func TestBulkheadReleasesSlot(t *testing.T) {
	errEndpoint := errors.New("endpoint failed")
	tests := []struct {
		name      string
		next      endpoint.Endpoint
		cancelAt  time.Duration // cancel the call's context after this; 0 for never
		wantErr   error
		wantPanic any
		wantExit  bool
	}{
		{name: "success", next: endpoint.Nop},
		{name: "error", next: endpointtest.New(endpointtest.Err(errEndpoint)).Endpoint(), wantErr: errEndpoint},
		{name: "panic", next: endpointtest.New(endpointtest.Panic("boom")).Endpoint(), wantPanic: "boom"},
		{
			name:     "canceled while running",
			next:     endpointtest.New(endpointtest.Hang()).Endpoint(),
			cancelAt: 10 * time.Millisecond,
			wantErr:  context.Canceled,
		},
		{
			name:     "Goexit",
			next:     func(context.Context, any) (any, error) { runtime.Goexit(); return nil, nil },
			wantExit: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls int
				first := true
				next := func(ctx context.Context, req any) (any, error) {
					calls++
					if first {
						first = false
						return tt.next(ctx, req)
					}
					return "ok", nil
				}
				ep := middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, Observer: rateLimitQuiet})(next)

				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.cancelAt > 0 {
					time.AfterFunc(tt.cancelAt, cancel)
				}
				var (
					err      error
					panicked any
					returned bool
				)
				done := make(chan struct{})
				go func() {
					defer close(done)
					defer func() { panicked = recover() }()
					_, err = ep(ctx, nil)
					returned = true
				}()
				<-done
				if got, want := !returned && panicked == nil, tt.wantExit; got != want {
					t.Errorf("Goexit passed through = %v, want %v", got, want)
				}
				if panicked != tt.wantPanic {
					t.Errorf("panic = %v, want %v", panicked, tt.wantPanic)
				}
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}

				if _, err := ep(t.Context(), nil); err != nil {
					t.Errorf("next call: err = %v, want nil (slot released)", err)
				}
				if got, want := calls, 2; got != want {
					t.Errorf("calls = %d, want %d", got, want)
				}
			})
		})
	}
}

// TestBulkheadSharedByEndpoints checks that one Bulkhead middleware wrapping
// two endpoints gives them one set of slots, and two middlewares two sets.
func TestBulkheadSharedByEndpoints(t *testing.T) {
	tests := []struct {
		name    string
		layers  func() (a, b endpoint.Middleware)
		wantErr error
	}{
		{
			name: "one middleware, two endpoints",
			layers: func() (endpoint.Middleware, endpoint.Middleware) {
				mw := middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, Observer: rateLimitQuiet})
				return mw, mw
			},
			wantErr: middleware.ErrBulkheadFull,
		},
		{
			name: "two middlewares",
			layers: func() (endpoint.Middleware, endpoint.Middleware) {
				cfg := middleware.BulkheadConfig{MaxConcurrent: 1, Observer: rateLimitQuiet}
				return middleware.Bulkhead(cfg), middleware.Bulkhead(cfg)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ma, mb := tt.layers()
				a, b := ma(bulkheadHold), mb(bulkheadHold)
				hold := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, _ = a(t.Context(), hold)
				}()
				synctest.Wait()
				_, err := b(t.Context(), nil)
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				close(hold)
				<-done
			})
		})
	}
}

// TestBulkheadNeverRetried puts a Retry layer around a full bulkhead: the
// rejection is returned as it is, after one attempt.
func TestBulkheadNeverRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		attempts := 0
		countAttempts := func(next endpoint.Endpoint) endpoint.Endpoint {
			return func(ctx context.Context, req any) (any, error) {
				attempts++
				return next(ctx, req)
			}
		}
		bh := middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: 10 * time.Millisecond, Observer: rateLimitQuiet})
		holder := bh(bulkheadHold)
		ep := endpoint.Chain(
			middleware.Retry(middleware.RetryConfig{MaxAttempts: 5, NoDelay: true, Observer: rateLimitQuiet}),
			countAttempts,
			bh,
		)(bulkheadHold)
		hold := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = holder(t.Context(), hold)
		}()
		synctest.Wait()
		start := time.Now()
		_, err := ep(t.Context(), nil)
		if !errors.Is(err, middleware.ErrBulkheadFull) {
			t.Errorf("err = %v, want ErrBulkheadFull", err)
		}
		if _, ok := errors.AsType[*middleware.RetryError](err); ok {
			t.Errorf("err = %v is a *RetryError, want the rejection as it is", err)
		}
		if got, want := attempts, 1; got != want {
			t.Errorf("attempts = %d, want %d", got, want)
		}
		if got, want := time.Since(start), 10*time.Millisecond; got != want {
			t.Errorf("elapsed = %v, want %v", got, want)
		}
		close(hold)
		<-done
	})
}

func TestBulkheadErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.BulkheadConfig
		wait bool // the rejected call waits (MaxWait passes) rather than finding the queue full
		want string
	}{
		{name: "full", cfg: middleware.BulkheadConfig{MaxConcurrent: 1}, want: "middleware: bulkhead full"},
		{name: "full, named", cfg: middleware.BulkheadConfig{MaxConcurrent: 1, Name: "db"}, want: "middleware: bulkhead full: db"},
		{
			name: "timed out",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: 50 * time.Millisecond},
			wait: true,
			want: "middleware: bulkhead full: no slot free within 50ms",
		},
		{
			name: "timed out, named",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: 50 * time.Millisecond, Name: "db"},
			wait: true,
			want: "middleware: bulkhead full: db: no slot free within 50ms",
		},
		{
			name: "queue full",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: 50 * time.Millisecond, MaxQueue: 3},
			want: "middleware: bulkhead full: 3 calls already waiting",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := tt.cfg
				cfg.Observer = rateLimitQuiet
				ep := middleware.Bulkhead(cfg)(bulkheadHold)
				hold := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() { _, _ = ep(t.Context(), hold) })
				synctest.Wait()
				if !tt.wait && cfg.MaxWait > 0 {
					for range cfg.MaxQueue {
						wg.Go(func() { _, _ = ep(t.Context(), nil) })
					}
					synctest.Wait()
				}
				_, err := ep(t.Context(), nil)
				if got := err.Error(); got != tt.want {
					t.Errorf("Error() = %q, want %q", got, tt.want)
				}
				if !errors.Is(err, middleware.ErrBulkheadFull) {
					t.Errorf("err = %v, want ErrBulkheadFull", err)
				}
				close(hold)
				wg.Wait()
			})
		})
	}
}

func TestBulkheadConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		cfg       middleware.BulkheadConfig
		wantPaths []string
	}{
		{name: "max concurrent", cfg: middleware.BulkheadConfig{MaxConcurrent: 1}},
		{name: "wait, default queue", cfg: middleware.BulkheadConfig{MaxConcurrent: 10, MaxWait: time.Second}},
		{name: "wait and queue", cfg: middleware.BulkheadConfig{MaxConcurrent: 10, MaxWait: time.Second, MaxQueue: 100}},
		{name: "huge", cfg: middleware.BulkheadConfig{MaxConcurrent: 1 << 20, MaxWait: math.MaxInt64, MaxQueue: math.MaxInt}},
		{name: "zero", cfg: middleware.BulkheadConfig{}, wantPaths: []string{"bulkhead.max_concurrent"}},
		{name: "negative max concurrent", cfg: middleware.BulkheadConfig{MaxConcurrent: -1}, wantPaths: []string{"bulkhead.max_concurrent"}},
		{name: "huge negative max concurrent", cfg: middleware.BulkheadConfig{MaxConcurrent: math.MinInt}, wantPaths: []string{"bulkhead.max_concurrent"}},
		{name: "negative max wait", cfg: middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: -time.Second}, wantPaths: []string{"bulkhead.max_wait"}},
		{
			name:      "negative max queue",
			cfg:       middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: time.Second, MaxQueue: -1},
			wantPaths: []string{"bulkhead.max_queue"},
		},
		{name: "max queue without max wait", cfg: middleware.BulkheadConfig{MaxConcurrent: 1, MaxQueue: 5}, wantPaths: []string{"bulkhead.max_queue"}},
		{
			name:      "every problem at once",
			cfg:       middleware.BulkheadConfig{MaxConcurrent: 0, MaxWait: -1, MaxQueue: -1},
			wantPaths: []string{"bulkhead.max_concurrent", "bulkhead.max_wait", "bulkhead.max_queue"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkConfigProblems(t, tt.cfg.Validate(), tt.wantPaths, func() { middleware.Bulkhead(tt.cfg) })
		})
	}
}

func TestBulkheadConfigErrorNamesField(t *testing.T) {
	err := middleware.BulkheadConfig{}.Validate()
	for _, want := range []string{"bulkhead.max_concurrent", "BulkheadConfig.MaxConcurrent", "at least 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestBulkheadNilEndpointPanics(t *testing.T) {
	v := func() (v any) {
		defer func() { v = recover() }()
		middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1})(nil)
		return nil
	}()
	if err, ok := v.(error); !ok || !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("panic value = %v, want an error matching ErrInvalidConfig", v)
	}
}

func TestBulkheadAllocatesNothing(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.BulkheadConfig
		full bool
	}{
		{name: "admit", cfg: middleware.BulkheadConfig{MaxConcurrent: 1}},
		{name: "admit, waiting layer", cfg: middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: time.Second}},
		{name: "reject", cfg: middleware.BulkheadConfig{MaxConcurrent: 1, Observer: rateLimitQuiet}, full: true},
		{
			name: "reject, queue full",
			cfg:  middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: time.Second, MaxQueue: 1, Observer: rateLimitQuiet},
			full: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ep := middleware.Bulkhead(tt.cfg)(bulkheadHold)
				hold := make(chan struct{})
				var wg sync.WaitGroup
				if tt.full {
					wg.Go(func() { _, _ = ep(t.Context(), hold) })
					synctest.Wait()
					if tt.cfg.MaxWait > 0 {
						wg.Go(func() { _, _ = ep(t.Context(), nil) })
						synctest.Wait()
					}
				}
				ctx := t.Context()
				if got := testing.AllocsPerRun(100, func() {
					if _, err := ep(ctx, nil); (err != nil) != tt.full {
						t.Fatalf("err = %v, want error %v", err, tt.full)
					}
				}); got != 0 {
					t.Errorf("allocs per call = %v, want 0", got)
				}
				close(hold)
				wg.Wait()
			})
		})
	}
}
