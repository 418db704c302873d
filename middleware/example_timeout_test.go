package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// The guide's @with_timeout(30), here with 10ms so the example runs quickly.
// The endpoint honours its context, as the cooperative (default) mode
// requires: it stops as soon as ctx is done.
func ExampleTimeout() {
	slow := func(ctx context.Context, req any) (any, error) {
		<-ctx.Done() // a call that takes longer than the timeout
		return nil, ctx.Err()
	}
	ep := middleware.Timeout(10 * time.Millisecond)(slow)

	_, err := ep(context.Background(), "req")
	fmt.Println(errors.Is(err, middleware.ErrTimeout))
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	fmt.Println(err)
	// Output:
	// true
	// true
	// middleware: timeout after 10ms: context deadline exceeded
}

// The guide's @with_timeout(10, default=None, raise_on_timeout=False): a
// timeout returns the default and no error. The timeout is still reported.
func ExampleTimeoutWith_returnDefault() {
	slow := func(ctx context.Context, req any) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ep := middleware.TimeoutWith(middleware.TimeoutConfig{
		Timeout:       10 * time.Millisecond,
		ReturnDefault: true,
		Default:       nil, // the guide's default=None
		Observer: middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			fmt.Println("event:", e.Kind, "after", e.Latency)
		}),
	})(slow)

	resp, err := ep(context.Background(), "req")
	fmt.Printf("response %v, error %v\n", resp, err)
	// Output:
	// event: timeout after 10ms
	// response <nil>, error <nil>
}

// Abandon mode stops waiting at the deadline even for an endpoint that
// ignores its context. The endpoint keeps running in its own goroutine; once
// MaxAbandoned such calls are still running, new calls are rejected at once.
func ExampleTimeoutWith_abandon() {
	release := make(chan struct{})
	finished := make(chan struct{})
	stuck := func(ctx context.Context, req any) (any, error) {
		defer close(finished)
		<-release // ignores ctx
		return "late", nil
	}
	ep := middleware.TimeoutWith(middleware.TimeoutConfig{
		Timeout:      10 * time.Millisecond,
		Abandon:      true,
		MaxAbandoned: 1,
		Observer: middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			fmt.Println("event:", e.Kind)
		}),
	})(stuck)

	_, err := ep(context.Background(), "req")
	fmt.Println("first call timed out:", errors.Is(err, middleware.ErrTimeout))

	_, err = ep(context.Background(), "req") // the first call is still running
	fmt.Println("second call rejected:", errors.Is(err, middleware.ErrBulkheadFull))

	close(release) // let the abandoned call finish; its result is dropped
	<-finished
	// Output:
	// event: timeout
	// first call timed out: true
	// event: rejected
	// second call rejected: true
}
