package middleware_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resiliencekit/resilience/middleware"
)

// A bulkhead of one slot: while one call runs, another is turned away at
// once with ErrBulkheadFull; once the first is done, the slot is free again.
func ExampleBulkhead() {
	started, release := make(chan struct{}), make(chan struct{})
	query := func(_ context.Context, req any) (any, error) {
		if req == "slow" {
			close(started)
			<-release
		}
		return "rows for " + req.(string), nil
	}
	ep := middleware.Bulkhead(middleware.BulkheadConfig{
		MaxConcurrent: 1,
		Name:          "db",
		Observer: middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			fmt.Println("event:", e.Kind, "by", e.Layer, e.Name)
		}),
	})(query)

	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, _ := ep(context.Background(), "slow")
		fmt.Println(resp)
	}()
	<-started

	_, err := ep(context.Background(), "fast")
	fmt.Println(err, errors.Is(err, middleware.ErrBulkheadFull))

	close(release)
	<-done
	resp, err := ep(context.Background(), "fast")
	fmt.Println(resp, err)
	// Output:
	// event: rejected by bulkhead db
	// middleware: bulkhead full: db true
	// rows for slow
	// rows for fast <nil>
}
