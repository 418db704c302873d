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
	ep := endpointtest.Baseline()
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
