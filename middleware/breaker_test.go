package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
	"github.com/sony/gobreaker/v2"
)

var (
	errConn    = errors.New("connection refused")
	errInvalid = errors.New("invalid argument")
)

// changes returns the state changes among events, as "closed>open,...".
func changes(events []middleware.Event) string {
	var s []string
	for _, e := range events {
		s = append(s, e.From.String()+">"+e.To.String())
	}
	return strings.Join(s, ",")
}

// quiet is an Observer that drops every event.
var quiet = middleware.ObserverFunc(func(context.Context, middleware.Event) {})

func breakerState(t *testing.T, r *registry.Registry, name string) registry.State {
	t.Helper()
	b, ok := r.Get(name)
	if !ok {
		t.Fatalf("no breaker %q", name)
	}
	return b.State()
}

func TestBreakerConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		cfg       middleware.BreakerConfig
		wantPaths []string
	}{
		{name: "zero", cfg: middleware.BreakerConfig{}},
		{name: "full", cfg: middleware.BreakerConfig{Name: "api", FailureThreshold: 3, SuccessThreshold: 1, ResetTimeout: time.Second, FailOn: []error{errConn}, FailureRatio: 0.5, MinRequests: 5, Window: time.Second, WindowBuckets: 4}},
		{name: "negative threshold", cfg: middleware.BreakerConfig{FailureThreshold: -1}, wantPaths: []string{"circuit_breaker.failure_threshold"}},
		{name: "everything wrong", cfg: middleware.BreakerConfig{
			Name: "bad\nname", FailureThreshold: -1, SuccessThreshold: -2, ResetTimeout: -time.Second,
			FailOn: []error{nil}, FailureRatio: 2, MinRequests: -1, Window: -1, WindowBuckets: -1,
		}, wantPaths: []string{
			"circuit_breaker.name", "circuit_breaker.failure_threshold", "circuit_breaker.success_threshold",
			"circuit_breaker.reset_timeout", "circuit_breaker.fail_on[0]", "circuit_breaker.failure_ratio",
			"circuit_breaker.min_requests", "circuit_breaker.window", "circuit_breaker.window_buckets",
		}},
		{name: "window shorter than its buckets", cfg: middleware.BreakerConfig{FailureRatio: 0.5, Window: 5, WindowBuckets: 10}, wantPaths: []string{"circuit_breaker.window"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, tt.cfg.Validate(), tt.wantPaths)
		})
	}
}

func TestCircuitBreakerConstructionPanics(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(r *registry.Registry)
		bname   string
		cfg     middleware.BreakerConfig
		wantIs  error
		mention []string
	}{
		{name: "no name", wantIs: middleware.ErrInvalidConfig, mention: []string{"circuit_breaker.name"}},
		{name: "bad name", bname: "a\x00b", wantIs: middleware.ErrInvalidConfig, mention: []string{"circuit_breaker.name"}},
		{name: "bad config", bname: "api", cfg: middleware.BreakerConfig{SuccessThreshold: -1}, wantIs: middleware.ErrInvalidConfig, mention: []string{"success_threshold"}},
		{
			name: "same name other settings",
			setup: func(r *registry.Registry) {
				middleware.CircuitBreaker("api", middleware.BreakerConfig{Registry: r, FailureThreshold: 3})
			},
			bname:   "api",
			cfg:     middleware.BreakerConfig{FailureThreshold: 4},
			wantIs:  registry.ErrConflict,
			mention: []string{"failure_threshold=3", "failure_threshold=4"},
		},
		{
			name: "registry full",
			setup: func(r *registry.Registry) {
				middleware.CircuitBreaker("first", middleware.BreakerConfig{Registry: r})
			},
			bname:  "second",
			wantIs: registry.ErrTooManyBreakers,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registry.New(registry.Config{MaxBreakers: 1})
			if tt.setup != nil {
				tt.setup(r)
			}
			cfg := tt.cfg
			cfg.Registry = r
			defer func() {
				err, ok := recover().(error)
				if !ok {
					t.Fatalf("panic value is not an error")
				}
				if !errors.Is(err, middleware.ErrInvalidConfig) || !errors.Is(err, tt.wantIs) {
					t.Errorf("panic %v, want ErrInvalidConfig and %v", err, tt.wantIs)
				}
				for _, m := range tt.mention {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("panic %q does not name %s", err, m)
					}
				}
			}()
			middleware.CircuitBreaker(tt.bname, cfg)
			t.Fatal("CircuitBreaker did not panic")
		})
	}
}

func TestCircuitBreakerName(t *testing.T) {
	r := registry.New(registry.Config{})
	middleware.CircuitBreaker("", middleware.BreakerConfig{Name: "from-config", Registry: r, Observer: quiet})
	middleware.CircuitBreaker("from-arg", middleware.BreakerConfig{Name: "ignored", Registry: r, Observer: quiet})
	if got, want := strings.Join(r.Names(), ","), "from-arg,from-config"; got != want {
		t.Errorf("names = %s, want %s", got, want)
	}
}

func TestCircuitBreakerSharedByName(t *testing.T) {
	r := registry.New(registry.Config{})
	cfg := middleware.BreakerConfig{Registry: r, FailureThreshold: 2, Observer: quiet}
	a := endpointtest.Script("err")
	b := endpointtest.Script("ok")
	ea := middleware.CircuitBreaker("chromadb", cfg)(a.Endpoint())
	eb := middleware.CircuitBreaker("chromadb", cfg)(b.Endpoint())
	ctx := context.Background()
	_, _ = ea(ctx, nil)
	_, _ = ea(ctx, nil)
	if _, err := eb(ctx, nil); !errors.Is(err, middleware.ErrCircuitOpen) {
		t.Errorf("other endpoint of the same name: err = %v, want ErrCircuitOpen", err)
	}
	if got := b.Calls(); got != 0 {
		t.Errorf("calls = %d, want 0", got)
	}
}

// TestCircuitBreakerThresholds walks the guide's state diagram through the
// middleware, with scripted outcomes, checking the state after each step.
func TestCircuitBreakerThresholds(t *testing.T) {
	type step struct {
		outcome string // endpointtest step
		n       int
		wait    time.Duration
		want    registry.State
	}
	tests := []struct {
		name  string
		cfg   middleware.BreakerConfig
		steps []step
	}{
		{name: "defaults: 4 failures closed, 5th opens", steps: []step{
			{outcome: "err", n: 4, want: registry.StateClosed},
			{outcome: "err", n: 1, want: registry.StateOpen},
		}},
		{name: "one success resets the streak", steps: []step{
			{outcome: "err", n: 4, want: registry.StateClosed},
			{outcome: "ok", n: 1, want: registry.StateClosed},
			{outcome: "err", n: 4, want: registry.StateClosed},
			{outcome: "err", n: 1, want: registry.StateOpen},
		}},
		{name: "S-1 probe successes stay half-open, S-th closes", cfg: middleware.BreakerConfig{FailureThreshold: 2, SuccessThreshold: 3, ResetTimeout: time.Second}, steps: []step{
			{outcome: "err", n: 2, want: registry.StateOpen},
			{wait: time.Second, want: registry.StateHalfOpen},
			{outcome: "ok", n: 2, want: registry.StateHalfOpen},
			{outcome: "ok", n: 1, want: registry.StateClosed},
		}},
		{name: "a probe failure reopens", cfg: middleware.BreakerConfig{FailureThreshold: 1, ResetTimeout: time.Second}, steps: []step{
			{outcome: "err", n: 1, want: registry.StateOpen},
			{wait: time.Second, want: registry.StateHalfOpen},
			{outcome: "ok", n: 1, want: registry.StateHalfOpen},
			{outcome: "err", n: 1, want: registry.StateOpen},
		}},
		{name: "failure threshold 1", cfg: middleware.BreakerConfig{FailureThreshold: 1}, steps: []step{
			{outcome: "ok", n: 3, want: registry.StateClosed},
			{outcome: "err", n: 1, want: registry.StateOpen},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := registry.New(registry.Config{})
				cfg := tt.cfg
				cfg.Registry, cfg.Observer = r, quiet
				var script []string
				for _, s := range tt.steps {
					for range s.n {
						script = append(script, s.outcome)
					}
				}
				ep := endpointtest.Script(script...)
				e := middleware.CircuitBreaker("svc", cfg)(ep.Endpoint())
				calls := 0
				for i, s := range tt.steps {
					if s.wait > 0 {
						time.Sleep(s.wait)
						synctest.Wait()
					}
					for range s.n {
						_, err := e(context.Background(), nil)
						calls++
						if errors.Is(err, middleware.ErrCircuitOpen) {
							t.Fatalf("step %d: call rejected: %v", i, err)
						}
					}
					if got := breakerState(t, r, "svc"); got != s.want {
						t.Fatalf("step %d: state = %v, want %v", i, got, s.want)
					}
				}
				if got := ep.Calls(); got != calls {
					t.Errorf("endpoint calls = %d, want %d", got, calls)
				}
			})
		})
	}
}

func TestCircuitBreakerResetTimeoutEdges(t *testing.T) {
	tests := []struct {
		name  string
		reset time.Duration
	}{
		{name: "default 60s", reset: 0},
		{name: "2m", reset: 2 * time.Minute},
		{name: "1ms", reset: time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				want := tt.reset
				if want == 0 {
					want = time.Minute
				}
				r := registry.New(registry.Config{})
				ep := endpointtest.Script("err", "ok")
				e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: quiet, FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: tt.reset})(ep.Endpoint())
				ctx := context.Background()
				_, _ = e(ctx, nil)
				start := time.Now()
				time.Sleep(want - time.Nanosecond)
				synctest.Wait()
				_, err := e(ctx, nil)
				ce, ok := errors.AsType[*middleware.CircuitOpenError](err)
				if !ok || ce.RetryAfter() != time.Nanosecond {
					t.Fatalf("at ResetTimeout-1ns: err = %v, want *CircuitOpenError with RetryAfter 1ns", err)
				}
				if got := breakerState(t, r, "svc"); got != registry.StateOpen {
					t.Errorf("at ResetTimeout-1ns: state = %v, want open", got)
				}
				time.Sleep(time.Nanosecond)
				if got := time.Since(start); got != want {
					t.Fatalf("elapsed = %v, want %v", got, want)
				}
				if got := r.States()["svc"].State; got != registry.StateHalfOpen {
					t.Errorf("at ResetTimeout: state = %v, want half-open", got)
				}
				synctest.Wait()
				if _, err := e(ctx, nil); err != nil {
					t.Errorf("at ResetTimeout: probe err = %v, want nil", err)
				}
				if got := ep.Calls(); got != 2 {
					t.Errorf("endpoint calls = %d, want 2", got)
				}
			})
		})
	}
}

func TestCircuitBreakerOpenRejects(t *testing.T) {
	r := registry.New(registry.Config{})
	ep := endpointtest.Script("err:boom")
	e := middleware.CircuitBreaker("payments", middleware.BreakerConfig{Registry: r, Observer: quiet, FailureThreshold: 3})(ep.Endpoint())
	ctx := context.Background()
	for range 3 {
		if _, err := e(ctx, nil); !errors.Is(err, endpointtest.ErrScripted) {
			t.Fatalf("err = %v, want the endpoint's error unchanged", err)
		}
	}
	for range 100 {
		_, err := e(ctx, nil)
		ce, ok := errors.AsType[*middleware.CircuitOpenError](err)
		if !ok {
			t.Fatalf("err = %v, want *CircuitOpenError", err)
		}
		if ce.Service != "payments" || ce.State != registry.StateOpen {
			t.Errorf("error = %+v, want Service payments, State open", *ce)
		}
		if !errors.Is(err, middleware.ErrCircuitOpen) || !errors.Is(err, gobreaker.ErrOpenState) {
			t.Errorf("err = %v, want ErrCircuitOpen and gobreaker.ErrOpenState", err)
		}
		if d := ce.RetryAfter(); d <= 0 || d > time.Minute {
			t.Errorf("RetryAfter() = %v, want in (0, 1m]", d)
		}
	}
	if got := ep.Calls(); got != 3 {
		t.Errorf("endpoint calls = %d, want 3 (none while open)", got)
	}
	if b, _ := r.Get("payments"); true {
		b.Reset() // stop the reset timer
	}
}

// TestCircuitBreakerHalfOpenHerd sends 1,000 concurrent callers at a
// half-open breaker: exactly SuccessThreshold reach the endpoint.
func TestCircuitBreakerHalfOpenHerd(t *testing.T) {
	tests := []struct {
		name      string
		successes int
	}{
		{name: "default 2", successes: 0},
		{name: "5 probes", successes: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				want := tt.successes
				if want == 0 {
					want = 2
				}
				r := registry.New(registry.Config{})
				release := make(chan struct{})
				var admitted atomic.Int64
				failing := true
				e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: quiet, FailureThreshold: 1, SuccessThreshold: tt.successes, ResetTimeout: time.Second})(
					func(context.Context, any) (any, error) {
						if failing {
							return nil, errConn
						}
						admitted.Add(1)
						<-release
						return "ok", nil
					})
				_, _ = e(context.Background(), nil)
				failing = false
				time.Sleep(time.Second)
				synctest.Wait()
				var rejected atomic.Int64
				var wg sync.WaitGroup
				for range 1000 {
					wg.Go(func() {
						_, err := e(context.Background(), nil)
						if ce, ok := errors.AsType[*middleware.CircuitOpenError](err); ok {
							if ce.State == registry.StateHalfOpen && errors.Is(err, gobreaker.ErrTooManyRequests) {
								rejected.Add(1)
							}
						}
					})
				}
				synctest.Wait() // every caller is either rejected or blocked in the endpoint
				if got := admitted.Load(); got != int64(want) {
					t.Errorf("admitted = %d, want %d", got, want)
				}
				if got := rejected.Load(); got != int64(1000-want) {
					t.Errorf("rejected = %d, want %d", got, 1000-want)
				}
				close(release)
				wg.Wait()
				if got := breakerState(t, r, "svc"); got != registry.StateClosed {
					t.Errorf("state after the probes = %v, want closed", got)
				}
			})
		})
	}
}

// TestCircuitBreakerMixedLoad runs 64 goroutines x 10,000 mixed calls
// (successes, failures, excluded errors, cancellations) through one breaker
// that opens, half-opens and closes many times, and checks that every call is
// accounted for exactly and that the state changes form one chain.
func TestCircuitBreakerMixedLoad(t *testing.T) {
	const goroutines, perG = 64, 10000
	synctest.Test(t, func(t *testing.T) {
		r := registry.New(registry.Config{})
		obs := &eventLog{}
		var calls, okN, failN, otherN, cancelN, rejN atomic.Int64
		start := time.Now()
		next := func(ctx context.Context, req any) (any, error) {
			calls.Add(1)
			switch i := req.(int); {
			case i%97 == 0:
				return nil, context.Canceled
			case i%13 == 0:
				return nil, errInvalid // not a failure
			case (time.Since(start)/(50*time.Millisecond))%3 == 2: // an outage now and then
				return nil, errConn
			case i%11 == 0:
				return nil, errConn // scattered failures
			}
			return "ok", nil
		}
		e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{
			Registry: r, Observer: obs, FailOn: []error{errConn},
			FailureThreshold: 5, SuccessThreshold: 3, ResetTimeout: 3 * time.Millisecond,
		})(next)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range perG {
					_, err := e(context.Background(), g*7+i)
					switch {
					case err == nil:
						okN.Add(1)
					case errors.Is(err, middleware.ErrCircuitOpen):
						rejN.Add(1)
					case errors.Is(err, errConn):
						failN.Add(1)
					case errors.Is(err, errInvalid):
						otherN.Add(1)
					case errors.Is(err, context.Canceled):
						cancelN.Add(1)
					default:
						t.Errorf("unexpected error %v", err)
					}
					if i%20 == 19 {
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		total := okN.Load() + failN.Load() + otherN.Load() + cancelN.Load() + rejN.Load()
		if total != goroutines*perG {
			t.Errorf("outcomes add up to %d, want %d", total, goroutines*perG)
		}
		if got, want := calls.Load(), total-rejN.Load(); got != want {
			t.Errorf("endpoint calls = %d, want %d (every call not rejected)", got, want)
		}
		t.Logf("ok %d, failed %d, other %d, cancelled %d, rejected %d", okN.Load(), failN.Load(), otherN.Load(), cancelN.Load(), rejN.Load())
		if rejN.Load() == 0 || failN.Load() == 0 {
			t.Errorf("rejected %d, failed %d: the load never opened the breaker", rejN.Load(), failN.Load())
		}
		// The changes form one chain from closed to the current state.
		b, _ := r.Get("svc")
		b.Reset()
		prev := registry.StateClosed
		events := obs.Events()
		for i, ev := range events {
			if ev.Kind != middleware.EventStateChange || ev.Layer != "circuit_breaker" || ev.Name != "svc" {
				t.Fatalf("event %d = %+v", i, ev)
			}
			if ev.From != prev || ev.From == ev.To {
				t.Fatalf("event %d: %s>%s after %s", i, ev.From, ev.To, prev)
			}
			prev = ev.To
		}
		n := len(events)
		if prev != registry.StateClosed || n < 3 {
			t.Errorf("%d changes ending in %s, want several ending in closed", n, prev)
		}
	})
}

// TestCircuitBreakerResetUnderLoad resets the breaker while calls run: no
// race, no lost accounting, and results from before a reset change nothing.
func TestCircuitBreakerResetUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := registry.New(registry.Config{})
		obs := &eventLog{}
		var calls atomic.Int64
		e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: obs, FailureThreshold: 3, ResetTimeout: time.Millisecond})(
			func(_ context.Context, req any) (any, error) {
				calls.Add(1)
				if req.(int)%3 != 0 {
					return nil, errConn
				}
				return "ok", nil
			})
		b, _ := r.Get("svc")
		var wg sync.WaitGroup
		var rejected atomic.Int64
		for g := range 16 {
			wg.Go(func() {
				for i := range 2000 {
					if _, err := e(context.Background(), g+i); errors.Is(err, middleware.ErrCircuitOpen) {
						rejected.Add(1)
					}
					if i%100 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
		wg.Go(func() {
			for range 50 {
				b.Reset()
				time.Sleep(time.Millisecond)
			}
		})
		wg.Wait()
		if got := calls.Load() + rejected.Load(); got != 16*2000 {
			t.Errorf("calls + rejections = %d, want %d", got, 16*2000)
		}

		// In-flight failures from before a reset change nothing.
		b.Reset()
		release := make(chan struct{})
		slow := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: obs, FailureThreshold: 3, ResetTimeout: time.Millisecond})(
			func(context.Context, any) (any, error) { <-release; return nil, errConn })
		for range 5 {
			wg.Go(func() { _, _ = slow(context.Background(), nil) })
		}
		synctest.Wait()
		b.Reset()
		close(release)
		wg.Wait()
		if s := b.Snapshot(); s.State != registry.StateClosed || s.ConsecutiveFailures != 0 {
			t.Errorf("after stale failures: state %v, streak %d; want closed, 0", s.State, s.ConsecutiveFailures)
		}
	})
}

func TestCircuitBreakerFailureFilter(t *testing.T) {
	wrappedConn := fmt.Errorf("dial: %w", errConn)
	tests := []struct {
		name      string
		failOn    []error
		failIf    func(error) bool
		err       error
		wantCount bool
	}{
		{name: "default: any error counts", err: errInvalid, wantCount: true},
		{name: "FailOn match", failOn: []error{errConn}, err: errConn, wantCount: true},
		{name: "FailOn wrapped match", failOn: []error{errConn}, err: wrappedConn, wantCount: true},
		{name: "FailOn no match", failOn: []error{errConn}, err: errInvalid, wantCount: false},
		{name: "FailIf yes", failIf: func(err error) bool { return err == errInvalid }, err: errInvalid, wantCount: true},
		{name: "FailIf no", failIf: func(err error) bool { return false }, err: errConn, wantCount: false},
		{name: "either one", failOn: []error{errConn}, failIf: func(err error) bool { return err == errInvalid }, err: errInvalid, wantCount: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registry.New(registry.Config{})
			ep := endpointtest.New(endpointtest.Err(tt.err))
			e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: quiet, FailureThreshold: 2, FailOn: tt.failOn, FailIf: tt.failIf})(ep.Endpoint())
			for range 2 {
				if _, err := e(context.Background(), nil); !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v passed through", err, tt.err)
				}
			}
			if got := breakerState(t, r, "svc") == registry.StateOpen; got != tt.wantCount {
				t.Errorf("open = %v, want %v", got, tt.wantCount)
			}
		})
	}
}

// TestCircuitBreakerIgnoredErrorKeepsStreak: an error that is not a failure
// counts neither way: it does not reset the failure streak as a success
// would.
func TestCircuitBreakerIgnoredErrorKeepsStreak(t *testing.T) {
	r := registry.New(registry.Config{})
	ep := endpointtest.New(endpointtest.Err(errConn), endpointtest.Err(errInvalid), endpointtest.Err(errConn), endpointtest.Err(errConn))
	e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: quiet, FailureThreshold: 3, FailOn: []error{errConn}})(ep.Endpoint())
	for range 4 {
		_, _ = e(context.Background(), nil)
	}
	if got := breakerState(t, r, "svc"); got != registry.StateOpen {
		t.Errorf("state = %v, want open", got)
	}
	b, _ := r.Get("svc")
	b.Reset()
}

func TestCircuitBreakerCancellationNeutral(t *testing.T) {
	tests := []struct {
		name      string
		call      func(e endpoint.Endpoint) error
		wantCount bool
	}{
		{name: "caller cancelled", call: func(e endpoint.Endpoint) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := e(ctx, nil)
			return err
		}},
		{name: "caller deadline", call: func(e endpoint.Endpoint) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := e(ctx, nil)
			return err
		}},
		{name: "context.Canceled with a live caller", call: func(e endpoint.Endpoint) error {
			_, err := e(context.WithValue(context.Background(), ctxKey{}, context.Canceled), nil)
			return err
		}},
		{name: "own timeout with a live caller counts", call: func(e endpoint.Endpoint) error {
			_, err := e(context.WithValue(context.Background(), ctxKey{}, middleware.ErrTimeout), nil)
			return err
		}, wantCount: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := registry.New(registry.Config{})
				e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: quiet, FailureThreshold: 1})(
					func(ctx context.Context, _ any) (any, error) {
						if err, ok := ctx.Value(ctxKey{}).(error); ok {
							return nil, err
						}
						<-ctx.Done()
						return nil, ctx.Err()
					})
				if err := tt.call(e); err == nil {
					t.Fatal("err = nil")
				}
				if got := breakerState(t, r, "svc") == registry.StateOpen; got != tt.wantCount {
					t.Errorf("open = %v, want %v", got, tt.wantCount)
				}
				b, _ := r.Get("svc")
				b.Reset()
			})
		})
	}
}

type ctxKey struct{}

// TestCircuitBreakerCancelledProbeFreesSlot: a half-open probe whose caller
// gives up frees its slot at once, and counts neither way.
func TestCircuitBreakerCancelledProbeFreesSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := registry.New(registry.Config{})
		var calls atomic.Int64
		e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: quiet, FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: time.Second})(
			func(ctx context.Context, _ any) (any, error) {
				if calls.Add(1) == 1 {
					return nil, errConn
				}
				if _, hang := ctx.Value(ctxKey{}).(bool); hang {
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return "ok", nil
			})
		_, _ = e(context.Background(), nil)
		time.Sleep(time.Second)
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, true))
		done := make(chan error)
		go func() { _, err := e(ctx, nil); done <- err }()
		synctest.Wait()
		if _, err := e(context.Background(), nil); !errors.Is(err, gobreaker.ErrTooManyRequests) {
			t.Fatalf("second probe while the first runs: err = %v, want ErrTooManyRequests", err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled probe: err = %v", err)
		}
		if got := breakerState(t, r, "svc"); got != registry.StateHalfOpen {
			t.Fatalf("after the cancelled probe: state = %v, want half-open", got)
		}
		if _, err := e(context.Background(), nil); err != nil {
			t.Fatalf("next probe: err = %v, want admitted", err)
		}
		if got := breakerState(t, r, "svc"); got != registry.StateClosed {
			t.Errorf("state = %v, want closed", got)
		}
	})
}

func TestCircuitBreakerPanic(t *testing.T) {
	tests := []struct {
		name  string
		value any
		setup func(t *testing.T, e endpoint.Endpoint, r *registry.Registry)
		want  registry.State
	}{
		{name: "closed: one failure", value: "kaboom", want: registry.StateClosed},
		{name: "closed: the threshold-th failure opens", value: errConn, setup: func(t *testing.T, e endpoint.Endpoint, r *registry.Registry) {
			for range 2 {
				func() {
					defer func() { _ = recover() }()
					_, _ = e(context.Background(), nil)
				}()
			}
		}, want: registry.StateOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registry.New(registry.Config{})
			ep := endpointtest.New(endpointtest.Panic(tt.value))
			e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: quiet, FailureThreshold: 3})(ep.Endpoint())
			if tt.setup != nil {
				tt.setup(t, e, r)
			}
			func() {
				defer func() {
					if v := recover(); v != tt.value {
						t.Errorf("recovered %v, want %v", v, tt.value)
					}
				}()
				_, _ = e(context.Background(), nil)
				t.Error("no panic")
			}()
			b, _ := r.Get("svc")
			s := b.Snapshot()
			if s.State != tt.want {
				t.Errorf("state = %v, want %v", s.State, tt.want)
			}
			if s.State == registry.StateClosed && s.ConsecutiveFailures != 1 {
				t.Errorf("streak = %d, want 1", s.ConsecutiveFailures)
			}
			b.Reset()
		})
	}
}

func TestCircuitBreakerEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := registry.New(registry.Config{})
		obs := &eventLog{}
		ep := endpointtest.Script("err", "err", "ok", "ok")
		cfg := middleware.BreakerConfig{Registry: r, Observer: obs, FailureThreshold: 2, ResetTimeout: time.Second}
		e := middleware.CircuitBreaker("search", cfg)(ep.Endpoint())
		// A second middleware on the same breaker with the same observer
		// does not repeat the events.
		_ = middleware.CircuitBreaker("search", cfg)(ep.Endpoint())
		ctx := context.Background()
		_, _ = e(ctx, nil)
		_, _ = e(ctx, nil)
		time.Sleep(time.Second)
		synctest.Wait()
		_, _ = e(ctx, nil)
		_, _ = e(ctx, nil)
		if got, want := changes(obs.Events()), "closed>open,open>half-open,half-open>closed"; got != want {
			t.Errorf("changes = %s, want %s", got, want)
		}
		for _, ev := range obs.Events() {
			if ev.Kind != middleware.EventStateChange || ev.Layer != "circuit_breaker" || ev.Name != "search" {
				t.Errorf("event = %+v", ev)
			}
		}
	})
}

func TestCircuitBreakerLogsStateChanges(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	r := registry.New(registry.Config{})
	e := middleware.CircuitBreaker("api", middleware.BreakerConfig{Registry: r, Observer: middleware.LogObserver(logger), FailureThreshold: 1})(endpointtest.Script("err").Endpoint())
	_, _ = e(context.Background(), nil)
	want := `level=WARN msg="resilience: state_change" event=state_change layer=circuit_breaker name=api from=closed to=open` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	b, _ := r.Get("api")
	b.Reset()
}

// TestCircuitBreakerZeroAllocs guards the hot paths: a success on a closed
// breaker and a rejection by an open or full half-open breaker allocate
// nothing.
func TestCircuitBreakerZeroAllocs(t *testing.T) {
	tests := []struct {
		name  string
		setup func(b *registry.Breaker)
		next  endpoint.Endpoint
	}{
		{name: "success", setup: func(*registry.Breaker) {}, next: endpoint.Nop},
		{name: "open rejection", setup: func(b *registry.Breaker) { b.Trip() }, next: endpoint.Nop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registry.New(registry.Config{})
			e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: quiet})(tt.next)
			b, _ := r.Get("svc")
			tt.setup(b)
			defer b.Reset()
			ctx := context.Background()
			if got := testing.AllocsPerRun(1000, func() { _, _ = e(ctx, nil) }); got != 0 {
				t.Errorf("allocs per call = %v, want 0", got)
			}
		})
	}
	t.Run("half-open rejection", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := registry.New(registry.Config{})
			release := make(chan struct{})
			e := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: r, Observer: quiet, SuccessThreshold: 1, ResetTimeout: time.Second})(
				func(context.Context, any) (any, error) { <-release; return nil, nil })
			b, _ := r.Get("svc")
			b.Trip()
			time.Sleep(time.Second)
			synctest.Wait()
			go func() { _, _ = e(context.Background(), nil) }() // takes the only probe slot
			synctest.Wait()
			if got := testing.AllocsPerRun(100, func() { _, _ = e(context.Background(), nil) }); got != 0 {
				t.Errorf("allocs per call = %v, want 0", got)
			}
			close(release)
		})
	})
}
