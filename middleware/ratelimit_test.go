package middleware_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// rateLimitQuiet is an Observer that drops every event.
var rateLimitQuiet = middleware.ObserverFunc(func(context.Context, middleware.Event) {})

// rateLimitRetryAfter returns the RetryAfter of err, and whether err has one.
func rateLimitRetryAfter(err error) (time.Duration, bool) {
	ra, ok := errors.AsType[interface {
		error
		RetryAfter() time.Duration
	}](err)
	if !ok {
		return 0, false
	}
	return ra.RetryAfter(), true
}

// TestRateLimitAdmitsBurstPlusRateTimesT calls a rejecting layer as often as
// it admits, every millisecond of fake time from 0 to T inclusive, and
// checks it admitted exactly burst + rate·T calls.
func TestRateLimitAdmitsBurstPlusRateTimesT(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		d     time.Duration
		want  int
	}{
		{name: "10/s burst 5 over 2s", rate: 10, burst: 5, d: 2 * time.Second, want: 25},
		{name: "1/s burst 1 over 10s", rate: 1, burst: 1, d: 10 * time.Second, want: 11},
		{name: "100/s burst 10 over 1s", rate: 100, burst: 10, d: time.Second, want: 110},
		{name: "0.5/s burst 3 over 10s", rate: 0.5, burst: 3, d: 10 * time.Second, want: 8},
		{name: "1000/s burst 1 over 500ms", rate: 1000, burst: 1, d: 500 * time.Millisecond, want: 501},
		{name: "no time: the burst alone", rate: 10, burst: 7, d: 0, want: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var events recorder
				counter := endpointtest.Count(endpoint.Nop)
				ep := middleware.RateLimit(middleware.RateLimitConfig{
					Rate: tt.rate, Burst: tt.burst, Name: "api", Observer: &events,
				})(counter.Endpoint())
				ctx := t.Context()
				start := time.Now()
				rejected := 0
				for time.Since(start) <= tt.d {
					for {
						_, err := ep(ctx, nil)
						if err == nil {
							continue
						}
						if !errors.Is(err, middleware.ErrRateLimited) {
							t.Fatalf("err = %v, want ErrRateLimited", err)
						}
						rejected++
						break
					}
					time.Sleep(time.Millisecond)
				}
				if got, want := counter.Calls(), tt.want; got != want {
					t.Errorf("admitted = %d, want %d", got, want)
				}
				evs := events.Events()
				if got, want := len(evs), rejected; got != want {
					t.Errorf("events = %d, want %d (one per rejection)", got, want)
				}
				for _, e := range evs {
					if e.Kind != middleware.EventRejected || e.Layer != "rate_limit" || e.Name != "api" ||
						!errors.Is(e.Err, middleware.ErrRateLimited) {
						t.Errorf("event = %+v, want rejected by rate_limit api with ErrRateLimited", e)
					}
				}
			})
		})
	}
}

func TestRateLimitRejectionRetryAfter(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		after time.Duration // fake time between the burst and the rejected call
		want  time.Duration
	}{
		{name: "at once, 10/s", rate: 10, burst: 1, want: 100 * time.Millisecond},
		{name: "30ms later, 10/s", rate: 10, burst: 1, after: 30 * time.Millisecond, want: 70 * time.Millisecond},
		{name: "at once, 1/s burst 3", rate: 1, burst: 3, want: time.Second},
		{name: "at once, 0.25/s", rate: 0.25, burst: 2, want: 4 * time.Second},
		{name: "1.5s later, 0.5/s", rate: 0.5, burst: 1, after: 1500 * time.Millisecond, want: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var events recorder
				ep := middleware.RateLimit(middleware.RateLimitConfig{
					Rate: tt.rate, Burst: tt.burst, Observer: &events,
				})(endpoint.Nop)
				for i := range tt.burst {
					if _, err := ep(t.Context(), nil); err != nil {
						t.Fatalf("call %d: err = %v, want nil", i+1, err)
					}
				}
				time.Sleep(tt.after)
				resp, err := ep(t.Context(), nil)
				checkErrs(t, err, []error{middleware.ErrRateLimited}, []error{context.DeadlineExceeded})
				if resp != nil {
					t.Errorf("resp = %v, want nil", resp)
				}
				got, ok := rateLimitRetryAfter(err)
				if !ok {
					t.Fatalf("err %v has no RetryAfter method", err)
				}
				if got != tt.want {
					t.Errorf("RetryAfter() = %v, want %v", got, tt.want)
				}
				// The event's Wait is the time the call waited (none: rejected at
				// once); its Err carries the same RetryAfter hint.
				if evs := events.Events(); len(evs) != 1 || evs[0].Wait != 0 {
					t.Errorf("events = %+v, want one with Wait 0", evs)
				} else if hint, ok := rateLimitRetryAfter(evs[0].Err); !ok || hint != tt.want {
					t.Errorf("event Err RetryAfter() = %v, %v; want %v", hint, ok, tt.want)
				}
				// A call made when RetryAfter says is admitted.
				time.Sleep(got)
				if _, err := ep(t.Context(), nil); err != nil {
					t.Errorf("call after RetryAfter: err = %v, want nil", err)
				}
			})
		})
	}
}

func TestRateLimitWait(t *testing.T) {
	const interval = 100 * time.Millisecond // rate 10/s
	tests := []struct {
		name        string
		used        int           // tokens taken before the call (burst 1)
		deadline    time.Duration // the call's context deadline; 0 for none
		cancelAfter time.Duration // cancel the call's context after this; 0 for never
		canceled    bool          // call with an already canceled context
		wantErrs    []error
		notErrs     []error
		wantElapsed time.Duration
		wantCalled  bool
		wantEvents  int
		thenElapsed time.Duration // how long a following call waits: was the token given back?
	}{
		{
			name:        "token free: no wait",
			used:        0,
			wantCalled:  true,
			thenElapsed: interval,
		},
		{
			name:        "waits exactly the token interval",
			used:        1,
			wantElapsed: interval,
			wantCalled:  true,
			thenElapsed: interval,
		},
		{
			name:        "deadline after the token: waits",
			used:        1,
			deadline:    interval + time.Millisecond,
			wantElapsed: interval,
			wantCalled:  true,
			thenElapsed: interval,
		},
		{
			name:        "deadline at the token: rejected at once",
			used:        1,
			deadline:    interval,
			wantErrs:    []error{middleware.ErrRateLimited, context.DeadlineExceeded},
			wantEvents:  1,
			thenElapsed: interval,
		},
		{
			name:        "deadline too short: rejected at once",
			used:        1,
			deadline:    interval / 2,
			wantErrs:    []error{middleware.ErrRateLimited, context.DeadlineExceeded},
			wantEvents:  1,
			thenElapsed: interval,
		},
		{
			name:        "canceled during the wait: caller's error, token given back",
			used:        1,
			cancelAfter: 40 * time.Millisecond,
			wantErrs:    []error{context.Canceled},
			notErrs:     []error{middleware.ErrRateLimited},
			wantElapsed: 40 * time.Millisecond,
			thenElapsed: interval - 40*time.Millisecond,
		},
		{
			name:        "already canceled: caller's error at once",
			used:        1,
			canceled:    true,
			wantErrs:    []error{context.Canceled},
			notErrs:     []error{middleware.ErrRateLimited},
			thenElapsed: interval,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var events recorder
				counter := endpointtest.Count(endpoint.Nop)
				ep := middleware.RateLimit(middleware.RateLimitConfig{
					Rate: 10, Burst: 1, Wait: true, Observer: &events,
				})(counter.Endpoint())
				for range tt.used {
					if _, err := ep(t.Context(), nil); err != nil {
						t.Fatalf("using up the burst: err = %v", err)
					}
				}
				calls := counter.Calls()

				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.deadline > 0 {
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				if tt.cancelAfter > 0 {
					time.AfterFunc(tt.cancelAfter, cancel)
				}
				if tt.canceled {
					cancel()
				}
				start := time.Now()
				_, err := ep(ctx, nil)
				if got, want := time.Since(start), tt.wantElapsed; got != want {
					t.Errorf("elapsed = %v, want %v", got, want)
				}
				checkErrs(t, err, tt.wantErrs, tt.notErrs)
				if got, want := counter.Calls()-calls == 1, tt.wantCalled; got != want {
					t.Errorf("endpoint called = %v, want %v", got, want)
				}
				if got, want := len(events.Events()), tt.wantEvents; got != want {
					t.Errorf("events = %d, want %d", got, want)
				}
				if errors.Is(err, middleware.ErrRateLimited) {
					if got, ok := rateLimitRetryAfter(err); !ok || got != interval-tt.wantElapsed {
						t.Errorf("RetryAfter() = %v, %v; want %v, true", got, ok, interval-tt.wantElapsed)
					}
				}

				start = time.Now()
				if _, err := ep(t.Context(), nil); err != nil {
					t.Fatalf("following call: err = %v, want nil", err)
				}
				if got, want := time.Since(start), tt.thenElapsed; got != want {
					t.Errorf("following call waited %v, want %v", got, want)
				}
			})
		})
	}
}

// TestRateLimitWaitersServedInOrder starts callers one after another while no
// token is free: each waits its own token interval, in turn.
func TestRateLimitWaitersServedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := middleware.RateLimit(middleware.RateLimitConfig{Rate: 10, Burst: 2, Wait: true})(endpoint.Nop)
		start := time.Now()
		const n = 6
		elapsed := make([]time.Duration, n)
		done := make(chan struct{})
		for i := range n {
			go func() {
				defer func() { done <- struct{}{} }()
				if _, err := ep(t.Context(), nil); err != nil {
					t.Errorf("call %d: err = %v", i, err)
				}
				elapsed[i] = time.Since(start)
			}()
			synctest.Wait() // call i has its token or its reservation
		}
		for range n {
			<-done
		}
		want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond}
		if !reflect.DeepEqual(elapsed, want) {
			t.Errorf("elapsed = %v, want %v", elapsed, want)
		}
	})
}

func TestRateLimitSharing(t *testing.T) {
	tests := []struct {
		name string
		// layers returns the middlewares for endpoints a and b.
		layers func() (a, b endpoint.Middleware)
		// want is the outcome (true: admitted) of the calls a, b, a, b, a, b.
		want []bool
	}{
		{
			name: "shared Limiter, two layers",
			layers: func() (endpoint.Middleware, endpoint.Middleware) {
				lim := rate.NewLimiter(10, 3)
				return middleware.RateLimit(middleware.RateLimitConfig{Limiter: lim, Observer: rateLimitQuiet}),
					middleware.RateLimit(middleware.RateLimitConfig{Limiter: lim, Wait: false, Observer: rateLimitQuiet})
			},
			want: []bool{true, true, true, false, false, false},
		},
		{
			name: "one layer wrapping two endpoints",
			layers: func() (endpoint.Middleware, endpoint.Middleware) {
				mw := middleware.RateLimit(middleware.RateLimitConfig{Rate: 10, Burst: 3, Observer: rateLimitQuiet})
				return mw, mw
			},
			want: []bool{true, true, true, false, false, false},
		},
		{
			name: "two layers, limiters of their own",
			layers: func() (endpoint.Middleware, endpoint.Middleware) {
				cfg := middleware.RateLimitConfig{Rate: 10, Burst: 2, Observer: rateLimitQuiet}
				return middleware.RateLimit(cfg), middleware.RateLimit(cfg)
			},
			want: []bool{true, true, true, true, false, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ma, mb := tt.layers()
				eps := []endpoint.Endpoint{ma(endpoint.Nop), mb(endpoint.Nop)}
				var got []bool
				for i := range tt.want {
					_, err := eps[i%2](t.Context(), nil)
					if err != nil && !errors.Is(err, middleware.ErrRateLimited) {
						t.Fatalf("call %d: err = %v, want nil or ErrRateLimited", i, err)
					}
					got = append(got, err == nil)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("admitted = %v, want %v", got, tt.want)
				}
			})
		})
	}
}

// TestRateLimitSharedLimiterWaiting shares one limiter between a waiting and
// a rejecting layer: the waiter's reservation is seen by the other.
func TestRateLimitSharedLimiterWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := rate.NewLimiter(10, 1)
		waiting := middleware.RateLimit(middleware.RateLimitConfig{Limiter: lim, Wait: true})(endpoint.Nop)
		rejecting := middleware.RateLimit(middleware.RateLimitConfig{Limiter: lim, Observer: rateLimitQuiet})(endpoint.Nop)
		if _, err := rejecting(t.Context(), nil); err != nil {
			t.Fatalf("first call: err = %v", err)
		}
		done := make(chan time.Duration)
		go func() {
			start := time.Now()
			if _, err := waiting(t.Context(), nil); err != nil {
				t.Errorf("waiting call: err = %v", err)
			}
			done <- time.Since(start)
		}()
		synctest.Wait()
		// The waiter holds the token due at 100ms; the next is due at 200ms.
		_, err := rejecting(t.Context(), nil)
		if got, ok := rateLimitRetryAfter(err); !ok || got != 200*time.Millisecond {
			t.Errorf("RetryAfter() = %v, %v; want 200ms, true (err %v)", got, ok, err)
		}
		if got, want := <-done, 100*time.Millisecond; got != want {
			t.Errorf("waiting call took %v, want %v", got, want)
		}
	})
}

// TestRateLimitLimiterNeverRefills shares a limiter whose limit was set to 0:
// once its tokens are gone, both modes reject at once, with InfiniteDelay.
func TestRateLimitLimiterNeverRefills(t *testing.T) {
	tests := []struct {
		name string
		wait bool
	}{
		{name: "rejecting", wait: false},
		{name: "waiting", wait: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := rate.NewLimiter(0, 1)
				ep := middleware.RateLimit(middleware.RateLimitConfig{Limiter: lim, Wait: tt.wait, Observer: rateLimitQuiet})(endpoint.Nop)
				if _, err := ep(t.Context(), nil); err != nil {
					t.Fatalf("first call: err = %v", err)
				}
				start := time.Now()
				_, err := ep(t.Context(), nil)
				checkErrs(t, err, []error{middleware.ErrRateLimited}, []error{context.DeadlineExceeded})
				if got, want := time.Since(start), time.Duration(0); got != want {
					t.Errorf("elapsed = %v, want %v", got, want)
				}
				if got, ok := rateLimitRetryAfter(err); !ok || got != time.Duration(math.MaxInt64) {
					t.Errorf("RetryAfter() = %v, %v; want math.MaxInt64 (never), true", got, ok)
				}
			})
		})
	}
}

// TestRateLimitNeverRetried puts a Retry layer around a rate limit: a
// rejection is returned as it is, after one attempt.
func TestRateLimitNeverRetried(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.RateLimitConfig
		ctx  func(context.Context) (context.Context, context.CancelFunc)
	}{
		{
			name: "rejecting",
			cfg:  middleware.RateLimitConfig{Rate: 1, Burst: 1, Observer: rateLimitQuiet},
			ctx:  func(ctx context.Context) (context.Context, context.CancelFunc) { return ctx, func() {} },
		},
		{
			name: "waiting, deadline too close",
			cfg:  middleware.RateLimitConfig{Rate: 1, Burst: 1, Wait: true, Observer: rateLimitQuiet},
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 500*time.Millisecond)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				counter := endpointtest.Count(endpoint.Nop)
				limited := middleware.RateLimit(tt.cfg)
				attempts := 0
				countAttempts := func(next endpoint.Endpoint) endpoint.Endpoint {
					return func(ctx context.Context, req any) (any, error) {
						attempts++
						return next(ctx, req)
					}
				}
				ep := endpoint.Chain(
					middleware.Retry(middleware.RetryConfig{MaxAttempts: 5, NoDelay: true, Observer: rateLimitQuiet}),
					countAttempts,
					limited,
				)(counter.Endpoint())
				if _, err := ep(t.Context(), nil); err != nil {
					t.Fatalf("first call: err = %v", err)
				}
				ctx, cancel := tt.ctx(t.Context())
				defer cancel()
				attempts = 0
				start := time.Now()
				_, err := ep(ctx, nil)
				if !errors.Is(err, middleware.ErrRateLimited) {
					t.Errorf("err = %v, want ErrRateLimited", err)
				}
				if _, ok := errors.AsType[*middleware.RetryError](err); ok {
					t.Errorf("err = %v is a *RetryError, want the rejection as it is", err)
				}
				if got, want := attempts, 1; got != want {
					t.Errorf("attempts = %d, want %d", got, want)
				}
				if got, want := counter.Calls(), 1; got != want {
					t.Errorf("endpoint calls = %d, want %d", got, want)
				}
				if got := time.Since(start); got != 0 {
					t.Errorf("elapsed = %v, want 0", got)
				}
			})
		})
	}
}

func TestRateLimitErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		err  *middleware.RateLimitError
		want string
	}{
		{
			name: "rejected",
			err:  &middleware.RateLimitError{Delay: 100 * time.Millisecond},
			want: "middleware: rate limited (next token in 100ms)",
		},
		{
			name: "named",
			err:  &middleware.RateLimitError{Name: "api", Delay: time.Second},
			want: "middleware: rate limited: api (next token in 1s)",
		},
		{
			name: "deadline",
			err:  &middleware.RateLimitError{Name: "api", Delay: time.Second, Cause: context.DeadlineExceeded},
			want: "middleware: rate limited: api (waiting 1s for a token would pass the context deadline)",
		},
		{
			name: "never",
			err:  &middleware.RateLimitError{Delay: math.MaxInt64},
			want: "middleware: rate limited (no token will come)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.err.Error(), tt.want; got != want {
				t.Errorf("Error() = %q, want %q", got, want)
			}
		})
	}
}

// maxRateLimitMaxWait is the largest MaxWait RateLimitConfig accepts (the
// package's unexported maxRateLimitMaxWait).
const maxRateLimitMaxWait = 24 * time.Hour

func TestRateLimitConfigValidate(t *testing.T) {
	lim := rate.NewLimiter(1, 1)
	tests := []struct {
		name      string
		cfg       middleware.RateLimitConfig
		wantPaths []string
	}{
		{name: "rate and burst", cfg: middleware.RateLimitConfig{Rate: 10, Burst: 5}},
		{name: "waiting", cfg: middleware.RateLimitConfig{Rate: 0.5, Burst: 1, Wait: true}},
		{name: "huge", cfg: middleware.RateLimitConfig{Rate: math.MaxFloat64, Burst: math.MaxInt}},
		{name: "tiny rate", cfg: middleware.RateLimitConfig{Rate: math.SmallestNonzeroFloat64, Burst: 1}},
		{name: "shared limiter", cfg: middleware.RateLimitConfig{Limiter: lim, Wait: true}},
		{name: "max wait", cfg: middleware.RateLimitConfig{Rate: 1, Burst: 1, Wait: true, MaxWait: time.Minute}},
		{name: "max wait at its maximum", cfg: middleware.RateLimitConfig{Rate: 1, Burst: 1, Wait: true, MaxWait: maxRateLimitMaxWait}},
		{name: "negative max wait", cfg: middleware.RateLimitConfig{Rate: 1, Burst: 1, Wait: true, MaxWait: -1}, wantPaths: []string{"rate_limit.max_wait"}},
		{name: "max wait too long", cfg: middleware.RateLimitConfig{Rate: 1, Burst: 1, Wait: true, MaxWait: maxRateLimitMaxWait + 1}, wantPaths: []string{"rate_limit.max_wait"}},
		{name: "max wait without wait", cfg: middleware.RateLimitConfig{Rate: 1, Burst: 1, MaxWait: time.Second}, wantPaths: []string{"rate_limit.max_wait"}},
		{name: "zero", cfg: middleware.RateLimitConfig{}, wantPaths: []string{"rate_limit.rate", "rate_limit.burst"}},
		{name: "zero rate", cfg: middleware.RateLimitConfig{Burst: 1}, wantPaths: []string{"rate_limit.rate"}},
		{name: "negative rate", cfg: middleware.RateLimitConfig{Rate: -1, Burst: 1}, wantPaths: []string{"rate_limit.rate"}},
		{name: "NaN rate", cfg: middleware.RateLimitConfig{Rate: math.NaN(), Burst: 1}, wantPaths: []string{"rate_limit.rate"}},
		{name: "infinite rate", cfg: middleware.RateLimitConfig{Rate: math.Inf(1), Burst: 1}, wantPaths: []string{"rate_limit.rate"}},
		{name: "-infinite rate", cfg: middleware.RateLimitConfig{Rate: math.Inf(-1), Burst: 1}, wantPaths: []string{"rate_limit.rate"}},
		{name: "burst 0", cfg: middleware.RateLimitConfig{Rate: 1}, wantPaths: []string{"rate_limit.burst"}},
		{name: "burst -1", cfg: middleware.RateLimitConfig{Rate: 1, Burst: -1}, wantPaths: []string{"rate_limit.burst"}},
		{name: "huge negative burst", cfg: middleware.RateLimitConfig{Rate: 1, Burst: math.MinInt}, wantPaths: []string{"rate_limit.burst"}},
		{name: "limiter with rate", cfg: middleware.RateLimitConfig{Limiter: lim, Rate: 1}, wantPaths: []string{"rate_limit.rate"}},
		{name: "limiter with burst", cfg: middleware.RateLimitConfig{Limiter: lim, Burst: 1}, wantPaths: []string{"rate_limit.burst"}},
		{
			name:      "limiter with both",
			cfg:       middleware.RateLimitConfig{Limiter: lim, Rate: 1, Burst: 1},
			wantPaths: []string{"rate_limit.rate", "rate_limit.burst"},
		},
		{
			name:      "every problem at once",
			cfg:       middleware.RateLimitConfig{Rate: math.NaN(), Burst: -5},
			wantPaths: []string{"rate_limit.rate", "rate_limit.burst"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkConfigProblems(t, tt.cfg.Validate(), tt.wantPaths, func() { middleware.RateLimit(tt.cfg) })
		})
	}
}

func TestRateLimitConfigErrorNamesField(t *testing.T) {
	err := middleware.RateLimitConfig{Rate: 1, Burst: 0}.Validate()
	for _, want := range []string{"rate_limit.burst", "RateLimitConfig.Burst", "at least 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestRateLimitNilEndpointPanics(t *testing.T) {
	v := func() (v any) {
		defer func() { v = recover() }()
		middleware.RateLimit(middleware.RateLimitConfig{Rate: 1, Burst: 1})(nil)
		return nil
	}()
	if err, ok := v.(error); !ok || !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("panic value = %v, want an error matching ErrInvalidConfig", v)
	}
}

// TestRateLimitPassesThrough checks that an admitted call gets the caller's
// context and request, and returns the endpoint's outcome unchanged.
func TestRateLimitPassesThrough(t *testing.T) {
	type key struct{}
	errEndpoint := errors.New("endpoint failed")
	tests := []struct {
		name     string
		wait     bool
		err      error
		wantResp any
	}{
		{name: "rejecting, success", wantResp: "resp"},
		{name: "rejecting, failure", err: errEndpoint, wantResp: "partial"},
		{name: "waiting, success", wait: true, wantResp: "resp"},
		{name: "waiting, failure", wait: true, err: errEndpoint, wantResp: "partial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := func(ctx context.Context, req any) (any, error) {
				if ctx.Value(key{}) != "v" || req != "req" {
					t.Errorf("endpoint got ctx value %v, request %v; want v, req", ctx.Value(key{}), req)
				}
				return tt.wantResp, tt.err
			}
			ep := middleware.RateLimit(middleware.RateLimitConfig{Rate: 1, Burst: 1, Wait: tt.wait})(next)
			resp, err := ep(context.WithValue(t.Context(), key{}, "v"), "req")
			if resp != tt.wantResp || err != tt.err {
				t.Errorf("got (%v, %v), want (%v, %v)", resp, err, tt.wantResp, tt.err)
			}
		})
	}
}

func TestRateLimitAllowAllocatesNothing(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.RateLimitConfig
	}{
		{name: "rejecting", cfg: middleware.RateLimitConfig{Rate: 1e12, Burst: 1}},
		{name: "waiting", cfg: middleware.RateLimitConfig{Rate: 1e12, Burst: 1, Wait: true}},
		{name: "shared limiter", cfg: middleware.RateLimitConfig{Limiter: rate.NewLimiter(rate.Inf, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := middleware.RateLimit(tt.cfg)(endpoint.Nop)
			ctx := t.Context()
			if got := testing.AllocsPerRun(100, func() {
				if _, err := ep(ctx, nil); err != nil {
					t.Fatalf("err = %v", err)
				}
			}); got != 0 {
				t.Errorf("allocs per admitted call = %v, want 0", got)
			}
		})
	}
}

// TestRateLimitSharedByName: shared layers of one name draw from one budget,
// across endpoints and stacks; another rate under the same name is a config
// error.
func TestRateLimitSharedByName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New(registry.Config{})
		cfg := middleware.RateLimitConfig{Rate: 1, Burst: 2, Name: "search_api", Shared: true, Registry: reg, Observer: discard}
		a := middleware.RateLimit(cfg)(endpoint.Nop)
		b, err := middleware.Stack{RateLimit: cfg}.Apply(endpoint.Nop)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		_, err1 := a(ctx, nil)
		_, err2 := b(ctx, nil)
		_, err3 := a(ctx, nil)
		if err1 != nil || err2 != nil || !errors.Is(err3, middleware.ErrRateLimited) {
			t.Errorf("errs = %v, %v, %v; want nil, nil, rate limited (one burst of 2 for both)", err1, err2, err3)
		}
		other := cfg
		other.Rate = 5
		if _, err := (middleware.Stack{RateLimit: other}).Build(); !errors.Is(err, middleware.ErrInvalidConfig) || !errors.Is(err, registry.ErrLimiterConflict) {
			t.Errorf("Build with another rate = %v, want ErrInvalidConfig and ErrLimiterConflict", err)
		}
		if err := (middleware.RateLimitConfig{Rate: 1, Burst: 1, Shared: true}).Validate(); !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Errorf("Shared without Name: Validate() = %v, want ErrInvalidConfig", err)
		}
	})
}

// TestRateLimitCancelledWaitersGiveBack: 100 waiting calls that leave, in
// arrival order or any other, hold nothing: the next caller gets the token
// the limiter would have had without them (x/time/rate alone restores the
// token of a cancelled reservation only when no later one was made).
func TestRateLimitCancelledWaitersGiveBack(t *testing.T) {
	const (
		n        = 100
		interval = 100 * time.Millisecond // rate 10/s
	)
	tests := []struct {
		name  string
		order func(i int) int // the i-th cancellation cancels waiter order(i)
	}{
		{name: "arrival order", order: func(i int) int { return i }},
		{name: "reverse order", order: func(i int) int { return n - 1 - i }},
		{name: "interleaved", order: func(i int) int { return (i * 37) % n }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := rate.NewLimiter(10, 1)
				ep := middleware.RateLimit(middleware.RateLimitConfig{Limiter: lim, Wait: true, MaxWait: time.Minute})(endpoint.Nop)
				rejecting := middleware.RateLimit(middleware.RateLimitConfig{Limiter: lim, Observer: rateLimitQuiet})(endpoint.Nop)
				if _, err := ep(t.Context(), nil); err != nil {
					t.Fatalf("first call: %v", err)
				}
				cancels := make([]context.CancelFunc, n)
				errs := make(chan error, n)
				for i := range n {
					ctx, cancel := context.WithCancel(t.Context())
					cancels[i] = cancel
					go func() {
						_, err := ep(ctx, nil)
						errs <- err
					}()
					synctest.Wait() // waiter i is in line
				}
				for i := range n {
					cancels[tt.order(i)]()
					synctest.Wait()
				}
				for range n {
					if err := <-errs; !errors.Is(err, context.Canceled) {
						t.Errorf("cancelled waiter: err = %v, want context.Canceled", err)
					}
				}
				_, err := rejecting(t.Context(), nil)
				if got, ok := rateLimitRetryAfter(err); !ok || got != interval {
					t.Errorf("RetryAfter() after the cancellations = %v, %v; want %v, true (nothing booked)", got, ok, interval)
				}
				start := time.Now()
				if _, err := ep(t.Context(), nil); err != nil {
					t.Fatalf("next caller: %v", err)
				}
				if got := time.Since(start); got != interval {
					t.Errorf("next caller waited %v, want %v (the token the waiters left)", got, interval)
				}
				time.Sleep(interval)
				start = time.Now()
				if _, err := ep(t.Context(), nil); err != nil {
					t.Fatalf("caller one interval later: %v", err)
				}
				if got := time.Since(start); got != 0 {
					t.Errorf("caller one interval later waited %v, want 0 (admitted at once)", got)
				}
			})
		})
	}
}

// TestRateLimitWaitBound: a wait never books past MaxWait (default
// DefaultRateLimitMaxWait), whatever the context's deadline or lack of one:
// a call whose token would come later is rejected at once.
func TestRateLimitWaitBound(t *testing.T) {
	tests := []struct {
		name        string
		rate        float64
		maxWait     time.Duration
		waiters     int // calls already waiting (burst 1, used)
		wantErr     bool
		wantElapsed time.Duration
		wantDelay   time.Duration
	}{
		{name: "token within MaxWait: waits", rate: 1, maxWait: time.Second, wantElapsed: time.Second},
		{name: "token past MaxWait: rejected at once", rate: 1, maxWait: 500 * time.Millisecond, wantErr: true, wantDelay: time.Second},
		{name: "token past the default: rejected at once", rate: 0.05, wantErr: true, wantDelay: 20 * time.Second},
		{name: "token within the default: waits", rate: 0.1, wantElapsed: 10 * time.Second},
		{name: "in line, within MaxWait: waits its turn", rate: 1, maxWait: 2 * time.Second, waiters: 1, wantElapsed: 2 * time.Second},
		{name: "in line, past MaxWait: rejected at once", rate: 1, maxWait: 1500 * time.Millisecond, waiters: 1, wantErr: true, wantDelay: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var events recorder
				ep := middleware.RateLimit(middleware.RateLimitConfig{Rate: tt.rate, Burst: 1, Wait: true, MaxWait: tt.maxWait, Observer: &events})(endpoint.Nop)
				if _, err := ep(t.Context(), nil); err != nil {
					t.Fatalf("first call: %v", err)
				}
				for range tt.waiters {
					go ep(t.Context(), nil)
					synctest.Wait()
				}
				start := time.Now()
				_, err := ep(t.Context(), nil) // no deadline
				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				if !tt.wantErr {
					if err != nil {
						t.Errorf("err = %v, want nil", err)
					}
					return
				}
				checkErrs(t, err, []error{middleware.ErrRateLimited}, []error{context.DeadlineExceeded})
				if got, ok := rateLimitRetryAfter(err); !ok || got != tt.wantDelay {
					t.Errorf("RetryAfter() = %v, %v; want %v, true", got, ok, tt.wantDelay)
				}
				if got := len(events.Events()); got != 1 {
					t.Errorf("events = %d, want 1 rejection", got)
				}
			})
		})
	}
}
