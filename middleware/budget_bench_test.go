package middleware_test

import (
	"context"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

// BenchmarkRetryBudget measures a Retry layer with a RetryBudget around an
// endpoint that succeeds at once: the budget's success path is one atomic
// load (a full bucket is only read).
func BenchmarkRetryBudget(b *testing.B) {
	budget := middleware.NewRetryBudget(middleware.RetryBudgetConfig{})
	ep := middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Budget: budget, Observer: retryQuiet})(endpoint.Nop)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		retryBenchSink, _ = ep(ctx, nil)
	}
}
