package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
	"github.com/sony/gobreaker/v2"
)

// userPanicValue is the value every hostile callback below panics with.
type userPanicValue struct{ callback string }

var errFailing = errors.New("failing")

// panickingFailer is a business response whose Failed method panics.
type panickingFailer struct{}

func (panickingFailer) Failed() error { panic(&userPanicValue{"Failed"}) }

func boomObserver(what string) middleware.Observer {
	return middleware.ObserverFunc(func(context.Context, middleware.Event) { panic(&userPanicValue{what}) })
}

func failingEP(context.Context, any) (any, error) { return nil, errFailing }

// TestCallbackPanicReleasesEverything sweeps every user callback the
// middleware layers call on the caller's goroutine, each panicking, inside a
// bulkhead of one slot and a half-open circuit breaker of one probe slot.
// In every case the panic reaches the caller with its own value, and
// afterwards the bulkhead and the breaker hold nothing: a next call is
// admitted by the bulkhead, and the breaker's probe slot is free (the next
// probe is admitted, or the breaker has reopened, never "every probe slot is
// taken").
func TestCallbackPanicReleasesEverything(t *testing.T) {
	bcfg := func(reg *registry.Registry) middleware.BreakerConfig {
		return middleware.BreakerConfig{Registry: reg, FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: time.Second, Observer: quiet}
	}
	breaker := func(reg *registry.Registry) endpoint.Middleware { return middleware.CircuitBreaker("svc", bcfg(reg)) }
	tests := []struct {
		name     string
		callback string
		// chain returns the layers between the bulkhead and the endpoint,
		// outermost first, the breaker "svc" among them.
		chain func(reg *registry.Registry) []endpoint.Middleware
		ep    endpoint.Endpoint
	}{
		{name: "breaker FailIf", callback: "FailIf", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			c := bcfg(reg)
			c.FailIf = func(error) bool { panic(&userPanicValue{"FailIf"}) }
			return []endpoint.Middleware{middleware.CircuitBreaker("svc", c)}
		}},
		{name: "breaker class matcher", callback: "class", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			var classes errclass.Set
			if err := classes.Register("hostile", func(error) bool { panic(&userPanicValue{"class"}) }); err != nil {
				panic(err)
			}
			pred, _ := classes.Lookup("hostile")
			c := bcfg(reg)
			c.FailIf = pred
			return []endpoint.Middleware{middleware.CircuitBreaker("svc", c)}
		}},
		{name: "breaker Failed()", callback: "Failed", chain: func(reg *registry.Registry) []endpoint.Middleware {
			c := bcfg(reg)
			c.CountBusinessErrors = true
			return []endpoint.Middleware{middleware.CircuitBreaker("svc", c)}
		}, ep: func(context.Context, any) (any, error) { return panickingFailer{}, nil }},
		{name: "retry RetryIf", callback: "RetryIf", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.Retry(middleware.RetryConfig{NoDelay: true, Observer: quiet,
				RetryIf: func(error) bool { panic(&userPanicValue{"RetryIf"}) }})}
		}},
		{name: "retry OnRetry", callback: "OnRetry", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.Retry(middleware.RetryConfig{NoDelay: true, Observer: quiet,
				OnRetry: func(error, int) { panic(&userPanicValue{"OnRetry"}) }})}
		}},
		{name: "retry Observer", callback: "retry observer", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.Retry(middleware.RetryConfig{NoDelay: true, Observer: boomObserver("retry observer")})}
		}},
		{name: "retry Failed()", callback: "Failed", chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.Retry(middleware.RetryConfig{NoDelay: true, Observer: quiet, RetryBusinessErrors: true})}
		}, ep: func(context.Context, any) (any, error) { return panickingFailer{}, nil }},
		{name: "fallback FallbackIf", callback: "FallbackIf", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.FallbackWith(middleware.FallbackConfig{Observer: quiet,
				FallbackIf: func(error) bool { panic(&userPanicValue{"FallbackIf"}) }})}
		}},
		{name: "fallback Func", callback: "Func", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.FallbackFunc(func(context.Context, any, error) (any, error) { panic(&userPanicValue{"Func"}) })}
		}},
		{name: "fallback Endpoint", callback: "Endpoint", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.Fallback(func(context.Context, any) (any, error) { panic(&userPanicValue{"Endpoint"}) })}
		}},
		{name: "fallback Observer", callback: "fallback observer", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.FallbackWith(middleware.FallbackConfig{Observer: boomObserver("fallback observer")})}
		}},
		{name: "timeout Observer", callback: "timeout observer", ep: hangErr, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: time.Second, Observer: boomObserver("timeout observer")})}
		}},
		{name: "abandon-mode timeout Observer", callback: "abandon observer", ep: hangErr, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: time.Second, Abandon: true, Observer: boomObserver("abandon observer")})}
		}},
		{name: "measure Observer", callback: "measure observer", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.Measure(middleware.MeasureConfig{Observer: boomObserver("measure observer")})}
		}},
		{name: "measure Observer, outside the breaker", callback: "measure observer", ep: failingEP, chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{middleware.Measure(middleware.MeasureConfig{Observer: boomObserver("measure observer")}), breaker(reg)}
		}},
		{name: "recover Observer", callback: "recover observer", chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), recoverWith("", boomObserver("recover observer"))}
		}, ep: func(context.Context, any) (any, error) { panic("the endpoint's") }},
		{name: "bulkhead Observer (rejection)", callback: "bulkhead observer", chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, Observer: boomObserver("bulkhead observer")})}
		}}, // no ep: it calls itself through the inner bulkhead, which rejects
		{name: "adaptive limit Observer (rejection)", callback: "adaptive limit observer", chain: func(reg *registry.Registry) []endpoint.Middleware {
			return []endpoint.Middleware{breaker(reg), middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{InitialLimit: 1, MaxLimit: 1, Observer: boomObserver("adaptive limit observer")})}
		}}, // no ep: as the bulkhead's, the reentrant call is over the limit
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := registry.New(registry.Config{})
				bulkhead := middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1, Observer: quiet})
				layers := tt.chain(reg)
				var inner endpoint.Endpoint
				if tt.ep != nil {
					inner = endpoint.Chain(layers[0], layers[1:]...)(tt.ep)
				} else {
					// The innermost layer is a bulkhead of one slot; the
					// endpoint calls itself through it, so the reentrant call
					// is rejected and its Observer panics.
					innerBH := layers[len(layers)-1]
					var reentrant endpoint.Endpoint
					reentrant = innerBH(func(ctx context.Context, req any) (any, error) { return reentrant(ctx, req) })
					inner = layers[0](reentrant)
				}
				e := bulkhead(inner)
				b, ok := reg.Get("svc")
				if !ok {
					t.Fatal("no breaker svc")
				}
				t.Cleanup(b.Reset)
				b.Trip()
				time.Sleep(time.Second)
				if s := b.Snapshot().State; s != registry.StateHalfOpen {
					t.Fatalf("state = %v, want half-open", s)
				}

				got := recoverValue(func() { _, _ = e(t.Context(), nil) })
				if v, ok := got.(*userPanicValue); !ok || v.callback != tt.callback {
					t.Errorf("panic reaching the caller = %#v, want the %s callback's", got, tt.callback)
				}
				synctest.Wait()

				if _, err := bulkhead(endpoint.Nop)(t.Context(), nil); err != nil {
					t.Errorf("bulkhead after the panic: %v, want the next call admitted", err)
				}
				probe := middleware.CircuitBreaker("svc", bcfg(reg))(endpoint.Nop)
				state := b.Snapshot().State
				_, err := probe(t.Context(), nil)
				switch {
				case errors.Is(err, gobreaker.ErrTooManyRequests):
					t.Errorf("probe after the panic: %v: the half-open probe slot leaked", err)
				case state == registry.StateHalfOpen && err != nil:
					t.Errorf("probe after the panic (half-open): %v, want it admitted", err)
				case state != registry.StateHalfOpen && !errors.Is(err, middleware.ErrCircuitOpen):
					t.Errorf("probe after the panic (%v): %v", state, err)
				}
			})
		})
	}
}

func recoverValue(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// TestLatePanicObserverIsLogged: in abandon mode, the Observer told of an
// abandoned worker's late panic runs on that worker's goroutine, the
// library's own: its panic is logged at Error with the stack, the process
// lives, and the worker is uncounted (a next call is admitted under
// MaxAbandoned 1).
func TestLatePanicObserverIsLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf lockedBuf
		// The library logs its own goroutines' panics to slog.Default.
		prev := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
		defer slog.SetDefault(prev)
		obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			if e.Kind == middleware.EventPanic {
				panic("observer of the late panic")
			}
		})
		e := middleware.TimeoutWith(middleware.TimeoutConfig{
			Timeout: time.Second, Abandon: true, MaxAbandoned: 1, Observer: obs,
		})(func(ctx context.Context, _ any) (any, error) {
			time.Sleep(2 * time.Second)
			if ctx.Err() != nil {
				panic("late")
			}
			return nil, nil
		})
		if _, err := e(t.Context(), nil); !errors.Is(err, middleware.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		out := buf.String()
		for _, want := range []string{"level=ERROR", "timeout observer panicked", "observer of the late panic", "stack="} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q: %s", want, out)
			}
		}
		done := make(chan error, 1)
		go func() { _, err := e(t.Context(), nil); done <- err }()
		time.Sleep(3 * time.Second)
		if err := <-done; errors.Is(err, middleware.ErrBulkheadFull) {
			t.Errorf("next call: %v, want it admitted (the late worker uncounted)", err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
	})
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
