package middleware_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resiliencekit/resilience/middleware"
)

// A throttle in front of an overloaded service: every call fails, so after
// the first the throttle rejects calls locally, with probability
// requests/(requests+1). The draw is fixed at 0.5 to make the example
// reproducible: the second call (probability 1/2) still goes out, the third
// (2/3) is throttled.
func ExampleThrottle() {
	overloaded := func(context.Context, any) (any, error) { return nil, errors.New("queue full") }
	ep := middleware.Throttle(middleware.ThrottleConfig{
		K:    2,
		Name: "search",
		Rand: func() float64 { return 0.5 },
		Observer: middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			fmt.Println("event:", e.Kind, "by", e.Layer, e.Name)
		}),
	})(overloaded)

	for i := 1; i <= 3; i++ {
		_, err := ep(context.Background(), i)
		fmt.Printf("call %d: %v (throttled: %v)\n", i, err, errors.Is(err, middleware.ErrThrottled))
	}
	// Output:
	// call 1: queue full (throttled: false)
	// call 2: queue full (throttled: false)
	// event: rejected by throttle search
	// call 3: middleware: throttled "search" (reject probability 0.667) (throttled: true)
}
