package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// A server's handler behind an adaptive concurrency limit. Here the limit is
// pinned to 2 to show what a caller over it gets: ErrLimited at once, with a
// Retry-After hint, where without the limit it would queue behind the calls
// in flight. Left free, the limit follows the handler's latency.
func ExampleAdaptiveLimit() {
	busy := make(chan struct{})
	handler := func(ctx context.Context, req any) (any, error) {
		if req == "slow" {
			<-busy
		}
		return "done", nil
	}
	limited := middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{
		InitialLimit: 2, MinLimit: 2, MaxLimit: 2,
		Observer: middleware.Discard,
	})(handler)

	started := make(chan struct{})
	for range 2 {
		go func() {
			started <- struct{}{}
			_, _ = limited(context.Background(), "slow")
		}()
		<-started
	}
	for {
		_, err := limited(context.Background(), "fast")
		if errors.Is(err, middleware.ErrLimited) {
			_, hint := err.(interface{ RetryAfter() time.Duration })
			fmt.Println("rejected:", err, "- with a Retry-After:", hint)
			break
		}
	}
	close(busy)
	// Output:
	// rejected: middleware: concurrency limit reached: limit 2 - with a Retry-After: true
}
