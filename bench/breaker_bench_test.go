package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	eapache "github.com/eapache/go-resiliency/breaker"
	kitcb "github.com/go-kit/kit/circuitbreaker"
	kitendpoint "github.com/go-kit/kit/endpoint"
	gobreakerv1 "github.com/sony/gobreaker"
	gobreakerv2 "github.com/sony/gobreaker/v2"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

var errDown = errors.New("down")

func failing(context.Context, any) (any, error) { return nil, errDown }

func nopMiddleware(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) { return next(ctx, req) }
}

// eapacheMiddleware is the go-kit middleware one would write around
// eapache/go-resiliency's breaker.
func eapacheMiddleware(b *eapache.Breaker) kitendpoint.Middleware {
	return func(next kitendpoint.Endpoint) kitendpoint.Endpoint {
		return func(ctx context.Context, req any) (resp any, err error) {
			err = b.Run(func() error {
				var e error
				resp, e = next(ctx, req)
				return e
			})
			return resp, err
		}
	}
}

// gobreakerV2Middleware calls gobreaker v2 directly (what go-kit's
// circuitbreaker.Gobreaker does for v1).
func gobreakerV2Middleware(cb *gobreakerv2.CircuitBreaker[any]) kitendpoint.Middleware {
	return func(next kitendpoint.Endpoint) kitendpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			return cb.Execute(func() (any, error) { return next(ctx, req) })
		}
	}
}

// contender builds the same breaker (opens on the first failure, stays open
// a minute) around next; open makes it open.
type contender struct {
	name  string
	build func(next endpoint.Endpoint) (e endpoint.Endpoint, open func())
}

var contenders = []contender{
	{name: "chain1nop", build: func(next endpoint.Endpoint) (endpoint.Endpoint, func()) {
		return endpoint.Chain(nopMiddleware)(next), nil
	}},
	{name: "resilience", build: func(next endpoint.Endpoint) (endpoint.Endpoint, func()) {
		reg := registry.New()
		quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
		e := middleware.CircuitBreaker("bench", middleware.BreakerConfig{Registry: reg, Observer: quiet, FailureThreshold: 1})(next)
		b, _ := reg.Get("bench")
		return e, b.Trip
	}},
	{name: "gokit_gobreaker_v1", build: func(next endpoint.Endpoint) (endpoint.Endpoint, func()) {
		cb := gobreakerv1.NewCircuitBreaker(gobreakerv1.Settings{Name: "bench", Timeout: time.Minute,
			ReadyToTrip: func(c gobreakerv1.Counts) bool { return c.ConsecutiveFailures >= 1 }})
		return kitcb.Gobreaker(cb)(next), func() {
			_, _ = cb.Execute(func() (any, error) { return nil, errDown })
		}
	}},
	{name: "gobreaker_v2", build: func(next endpoint.Endpoint) (endpoint.Endpoint, func()) {
		cb := gobreakerv2.NewCircuitBreaker[any](gobreakerv2.Settings{Name: "bench", Timeout: time.Minute,
			ReadyToTrip: func(c gobreakerv2.Counts) bool { return c.ConsecutiveFailures >= 1 }})
		return gobreakerV2Middleware(cb)(next), func() {
			_, _ = cb.Execute(func() (any, error) { return nil, errDown })
		}
	}},
	{name: "eapache", build: func(next endpoint.Endpoint) (endpoint.Endpoint, func()) {
		b := eapache.New(1, 1, time.Minute)
		return eapacheMiddleware(b)(next), func() { _ = b.Run(func() error { return errDown }) }
	}},
}

// BenchmarkBreaker runs every contender's success path (closed breaker,
// no-op endpoint) and open-rejection path, serial and RunParallel, in one
// run: BenchmarkBreaker/<contender>/<case>.
func BenchmarkBreaker(b *testing.B) {
	for _, c := range contenders {
		b.Run(c.name, func(b *testing.B) {
			for _, parallel := range []bool{false, true} {
				suffix := ""
				if parallel {
					suffix = "_parallel"
				}
				b.Run("success"+suffix, func(b *testing.B) {
					e, _ := c.build(endpoint.Nop)
					run(b, e, parallel)
				})
				b.Run("open_rejection"+suffix, func(b *testing.B) {
					e, open := c.build(failing)
					if open == nil { // the baseline has no breaker
						b.Skip("no breaker")
					}
					open()
					if _, err := e(context.Background(), nil); errors.Is(err, errDown) {
						b.Fatal("breaker did not open")
					}
					run(b, e, parallel)
				})
			}
		})
	}
}

func run(b *testing.B, e endpoint.Endpoint, parallel bool) {
	ctx := context.Background()
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = e(ctx, nil)
			}
		})
		return
	}
	for b.Loop() {
		_, _ = e(ctx, nil)
	}
}
