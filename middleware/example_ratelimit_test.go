package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

// A rejecting rate limit: one call per second with bursts of two. The third
// call in a row finds no token and is turned away at once, without calling
// the endpoint; its error says when to call again.
func ExampleRateLimit() {
	echo := func(_ context.Context, req any) (any, error) { return req, nil }
	ep := middleware.RateLimit(middleware.RateLimitConfig{
		Rate:  1, // per second
		Burst: 2,
		Name:  "search",
		Observer: middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			fmt.Println("event:", e.Kind, "by", e.Layer, e.Name)
		}),
	})(echo)

	for i := 1; i <= 3; i++ {
		resp, err := ep(context.Background(), i)
		if errors.Is(err, middleware.ErrRateLimited) {
			e, _ := errors.AsType[*middleware.RateLimitError](err)
			fmt.Printf("call %d: rate limited, retry after about %v\n", i, e.RetryAfter().Round(time.Second))
			continue
		}
		fmt.Printf("call %d: %v\n", i, resp)
	}
	// Output:
	// call 1: 1
	// call 2: 2
	// event: rejected by rate_limit search
	// call 3: rate limited, retry after about 1s
}

// A waiting rate limit: twenty calls per second with bursts of two. The
// third call waits for its token (about 50ms); the fourth would have to wait
// past its context's deadline, so it is rejected at once, with an error that
// matches both ErrRateLimited and context.DeadlineExceeded.
func ExampleRateLimit_wait() {
	ep := middleware.RateLimit(middleware.RateLimitConfig{
		Rate:     20,
		Burst:    2,
		Wait:     true,
		Observer: middleware.ObserverFunc(func(context.Context, middleware.Event) {}),
	})(func(context.Context, any) (any, error) { return "ok", nil })

	for i := 1; i <= 3; i++ {
		resp, err := ep(context.Background(), nil)
		fmt.Printf("call %d: %v %v\n", i, resp, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := ep(ctx, nil)
	fmt.Println("call 4 rate limited:", errors.Is(err, middleware.ErrRateLimited))
	fmt.Println("call 4 deadline exceeded:", errors.Is(err, context.DeadlineExceeded))
	// Output:
	// call 1: ok <nil>
	// call 2: ok <nil>
	// call 3: ok <nil>
	// call 4 rate limited: true
	// call 4 deadline exceeded: true
}

// Two endpoints of one downstream share a budget of three calls at once
// through one x/time/rate limiter; each layer draws from it.
func ExampleRateLimit_sharedLimiter() {
	lim := rate.NewLimiter(1, 3) // one call per second, bursts of three
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	search := middleware.RateLimit(middleware.RateLimitConfig{Limiter: lim, Observer: quiet})(ok)
	lookup := middleware.RateLimit(middleware.RateLimitConfig{Limiter: lim, Observer: quiet})(ok)

	for _, ep := range []endpoint.Endpoint{search, lookup, search, lookup} {
		_, err := ep(context.Background(), nil)
		fmt.Println(err == nil)
	}
	// Output:
	// true
	// true
	// true
	// false
}
