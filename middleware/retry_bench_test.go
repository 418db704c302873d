package middleware_test

import (
	"context"
	"errors"
	"testing"

	kitendpoint "github.com/go-kit/kit/endpoint"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

var (
	errRetryBench  = errors.New("bench failure")
	retryBenchSink any
)

// BenchmarkRetry measures a Retry layer around an endpoint that succeeds at
// once (the hot path), fails twice then succeeds, or always fails. The
// failure cases use NoDelay and an observer that drops events, so they
// measure the layer, not a clock or a logger.
func BenchmarkRetry(b *testing.B) {
	cfg := middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Observer: retryQuiet}
	calls := 0
	fail2 := func(context.Context, any) (any, error) {
		if calls++; calls%3 != 0 {
			return nil, errRetryBench
		}
		return struct{}{}, nil
	}
	fail := func(context.Context, any) (any, error) { return nil, errRetryBench }
	tests := []struct {
		name    string
		next    endpoint.Endpoint
		wantErr bool
	}{
		{"success", endpoint.Nop, false},
		{"fail2ThenSucceed", fail2, false},
		{"exhausted", fail, true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			ep := middleware.Retry(cfg)(tt.next)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := ep(ctx, nil)
				if (err != nil) != tt.wantErr {
					b.Fatalf("err = %v, want error %v", err, tt.wantErr)
				}
				retryBenchSink = resp
			}
		})
	}
}

// BenchmarkBaselineChain1Nop is the baseline for BenchmarkRetry/success:
// go-kit's endpoint.Chain of one no-op middleware around endpoint.Nop.
func BenchmarkBaselineChain1Nop(b *testing.B) {
	ep := retryBaselineChain1Nop()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := ep(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		retryBenchSink = resp
	}
}

// retryBaselineChain1Nop builds the baseline endpoint out of the benchmark's
// sight, as a service's chain is built away from where it is called. Built
// inline, the compiler sees through Chain and inlines the no-op layer into
// the loop, leaving a bare call to endpoint.Nop: zero layers, not one.
//
//go:noinline
func retryBaselineChain1Nop() kitendpoint.Endpoint {
	nop := func(next kitendpoint.Endpoint) kitendpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) { return next(ctx, req) }
	}
	return kitendpoint.Chain(nop)(kitendpoint.Nop)
}
