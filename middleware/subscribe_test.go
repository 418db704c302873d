package middleware_test

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// countHandler is a slog.Handler that counts its records.
type countHandler struct{ n atomic.Int64 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// TestBreakerOneSubscriptionPerObserver: however often a CircuitBreaker (or
// a Stack with one) is built, one observer hears each state change once;
// two observers hear it once each.
func TestBreakerOneSubscriptionPerObserver(t *testing.T) {
	tests := []struct {
		name   string
		builds int
		// build builds one middleware of breaker "svc" in reg, reporting
		// to the observers of the case; hears returns how many events
		// each observer has heard.
		setup func() (build func(reg *registry.Registry), hears func() []int64)
	}{
		{
			name: "1000 Stack builds, one ObserverFunc", builds: 1000,
			setup: func() (func(*registry.Registry), func() []int64) {
				var n atomic.Int64
				obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
					if e.Kind == middleware.EventStateChange {
						n.Add(1)
					}
				})
				return func(reg *registry.Registry) {
						s := middleware.Stack{CircuitBreaker: middleware.BreakerConfig{Name: "svc", Registry: reg}, Observer: obs}
						if _, err := s.Build(); err != nil {
							t.Fatal(err)
						}
					}, func() []int64 {
						return []int64{n.Load()}
					}
			},
		},
		{
			name: "3 constructions, one ObserverFunc", builds: 3,
			setup: func() (func(*registry.Registry), func() []int64) {
				var n atomic.Int64
				obs := middleware.ObserverFunc(func(context.Context, middleware.Event) { n.Add(1) })
				return func(reg *registry.Registry) {
						middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: reg, Observer: obs})
					}, func() []int64 {
						return []int64{n.Load()}
					}
			},
		},
		{
			name: "3 constructions, each a LogObserver on one logger", builds: 3,
			setup: func() (func(*registry.Registry), func() []int64) {
				h := &countHandler{}
				l := slog.New(h)
				return func(reg *registry.Registry) {
						middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: reg, Observer: middleware.LogObserver(l)})
					}, func() []int64 {
						return []int64{h.n.Load()}
					}
			},
		},
		{
			name: "100 constructions, two different observers", builds: 100,
			setup: func() (func(*registry.Registry), func() []int64) {
				var a, b atomic.Int64
				obsA := middleware.ObserverFunc(func(context.Context, middleware.Event) { a.Add(1) })
				obsB := middleware.ObserverFunc(func(context.Context, middleware.Event) { b.Add(1) })
				i := 0
				return func(reg *registry.Registry) {
						obs := obsA
						if i++; i%2 == 0 {
							obs = obsB
						}
						middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: reg, Observer: obs})
					}, func() []int64 {
						return []int64{a.Load(), b.Load()}
					}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := registry.New(registry.Config{})
			build, hears := tt.setup()
			for range tt.builds {
				build(reg)
			}
			b, ok := reg.Get("svc")
			if !ok {
				t.Fatal("no breaker")
			}
			b.Trip()
			for i, n := range hears() {
				if n != 1 {
					t.Errorf("observer %d heard %d events of one Trip, want 1", i, n)
				}
			}
		})
	}
}

// TestBreakerSubscriptionsGoWithTheMiddleware: middlewares built with a
// fresh observer each (a new closure per build) subscribe one each, and
// their subscriptions are gone once the middlewares and their endpoints are
// unreachable, so memory stays bounded; a middleware still in use keeps
// hearing.
func TestBreakerSubscriptionsGoWithTheMiddleware(t *testing.T) {
	const builds = 1000
	reg := registry.New(registry.Config{})
	var heard atomic.Int64
	build := func() endpoint.Middleware {
		var mine atomic.Int64 // a fresh closure per build
		return middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: reg,
			Observer: middleware.ObserverFunc(func(context.Context, middleware.Event) { mine.Add(1); heard.Add(1) })})
	}
	var kept atomic.Int64
	keep := middleware.CircuitBreaker("svc", middleware.BreakerConfig{Registry: reg,
		Observer: middleware.ObserverFunc(func(context.Context, middleware.Event) { kept.Add(1) })})
	ep := keep(endpoint.Nop)
	b, _ := reg.Get("svc")
	func() {
		live := make([]endpoint.Endpoint, builds)
		for i := range live {
			live[i] = build()(endpoint.Nop)
		}
		b.Trip()
		if got := heard.Load(); got != builds {
			t.Fatalf("%d events of one Trip, want %d (one per live middleware)", got, builds)
		}
		b.Reset()
		runtime.KeepAlive(live)
	}() // the endpoints, and the middlewares, are unreachable now
	// The cleanups run after a GC cycle, on a goroutine of the runtime:
	// collect and look again until they have run (a bounded wait).
	var last int64
	for range 200 {
		runtime.GC()
		time.Sleep(time.Millisecond)
		heard.Store(0)
		b.Trip()
		b.Reset()
		if last = heard.Load(); last == 0 {
			break
		}
	}
	if last != 0 {
		t.Errorf("after GC: the dropped middlewares' observers still heard %d events, want 0", last)
	}
	kept.Store(0)
	b.Trip()
	if got := kept.Load(); got != 1 {
		t.Errorf("the middleware in use heard %d events of one Trip, want 1", got)
	}
	if _, err := ep(context.Background(), nil); err == nil {
		t.Error("call through an open breaker: err = nil, want a rejection")
	}
}
