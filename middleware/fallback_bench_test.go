package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

var (
	errBench  = errors.New("bench failure")
	benchSink any
)

// discard is an Observer that drops every event, so the failure benchmarks
// measure the layer and not a logger.
var discard = middleware.ObserverFunc(func(context.Context, middleware.Event) {})

// failing is an endpoint that always fails with the same error.
func failing(context.Context, any) (any, error) { return nil, errBench }

func runEndpoint(b *testing.B, ep endpoint.Endpoint, wantErr bool) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := ep(ctx, nil)
		if (err != nil) != wantErr {
			b.Fatalf("err = %v, want error %t", err, wantErr)
		}
		benchSink = resp
	}
}

// BenchmarkBaselineFallbackChain1Nop is the reference for the fallback
// targets: endpointtest.Baseline, a go-kit Chain of one layer around
// endpoint.Nop.
func BenchmarkBaselineFallbackChain1Nop(b *testing.B) {
	runEndpoint(b, endpointtest.Baseline(), false)
}

func BenchmarkFallbackValue(b *testing.B) {
	mw := middleware.FallbackWith(middleware.FallbackConfig{Value: []string{}, Observer: discard})
	b.Run("success", func(b *testing.B) { runEndpoint(b, mw(endpoint.Nop), false) })
	b.Run("failure", func(b *testing.B) { runEndpoint(b, mw(failing), false) })
}

func BenchmarkFallback(b *testing.B) {
	mw := middleware.FallbackWith(middleware.FallbackConfig{Endpoint: endpoint.Nop, Observer: discard})
	b.Run("success", func(b *testing.B) { runEndpoint(b, mw(endpoint.Nop), false) })
	b.Run("failure", func(b *testing.B) { runEndpoint(b, mw(failing), false) })
	b.Run("failure_filtered_out", func(b *testing.B) {
		mw := middleware.FallbackWith(middleware.FallbackConfig{
			Endpoint:   endpoint.Nop,
			FallbackOn: []error{middleware.ErrCircuitOpen},
			Observer:   discard,
		})
		runEndpoint(b, mw(failing), true)
	})
	b.Run("fallback_fails", func(b *testing.B) {
		mw := middleware.FallbackWith(middleware.FallbackConfig{Endpoint: failing, Observer: discard})
		runEndpoint(b, mw(failing), true)
	})
}

func BenchmarkRecover(b *testing.B) {
	mw := recoverWith("", discard)
	b.Run("success", func(b *testing.B) { runEndpoint(b, mw(endpoint.Nop), false) })
	b.Run("panic", func(b *testing.B) {
		runEndpoint(b, mw(func(context.Context, any) (any, error) { panic(errBench) }), true)
	})
}
