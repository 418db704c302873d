package middleware_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

// Measure reports every call, with its outcome: here inside the fallback, so
// the failure it served is counted as a failure, and the fallback reports
// its own event.
func ExampleMeasure() {
	print := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if e.Kind == middleware.EventCall {
			fmt.Printf("%s %s: %s err=%v\n", e.Kind, e.Name, e.Outcome, e.Err)
			return
		}
		fmt.Printf("%s %s\n", e.Kind, e.Layer)
	})
	calls := 0
	search := func(context.Context, any) (any, error) {
		if calls++; calls == 2 {
			return nil, errors.New("connection refused")
		}
		return "results", nil
	}
	ep := endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Value: "cached", Observer: print}),
		middleware.Measure(middleware.MeasureConfig{Name: "search", Observer: print}),
	)(search)
	for range 2 {
		resp, _ := ep(context.Background(), nil)
		fmt.Println("->", resp)
	}
	// Output:
	// call search: success err=<nil>
	// -> results
	// call search: failure err=connection refused
	// fallback fallback
	// -> cached
}
