package endpointtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

// A script plays one step per call, in order, then repeats its last step:
// here a dependency that fails twice and then recovers.
func ExampleScript() {
	flaky := endpointtest.Script("err", "err:connection refused", "ok:pong")
	e := flaky.Endpoint()

	for range 4 {
		resp, err := e(context.Background(), "ping")
		fmt.Println(resp, err, errors.Is(err, endpointtest.ErrScripted))
	}
	fmt.Println("calls:", flaky.Calls())

	// Output:
	// <nil> endpointtest: scripted failure true
	// <nil> connection refused true
	// pong <nil> false
	// pong <nil> false
	// calls: 4
}

// A Counter wraps any endpoint and counts its calls and outcomes, including
// panics, which it counts and passes on.
func ExampleCount() {
	c := endpointtest.Count(endpointtest.Script("ok", "err:timeout", "panic:bug", "ok").Endpoint())

	for range 4 {
		func() {
			defer func() {
				if v := recover(); v != nil {
					fmt.Println("recovered:", v)
				}
			}()
			_, _ = c.Call(context.Background(), nil)
		}()
	}
	fmt.Println("calls:", c.Calls())
	fmt.Println("errors:", c.Errors())
	fmt.Println("panics:", c.Panics())
	fmt.Println("in flight:", c.InFlight(), "max:", c.MaxInFlight())
	fmt.Println("last error:", c.LastErr())

	// Output:
	// recovered: bug
	// calls: 4
	// errors: 1
	// panics: 1
	// in flight: 0 max: 1
	// last error: timeout
}

// A Recorder keeps what a layer reports, for a test to assert.
func ExampleRecorder() {
	var events endpointtest.Recorder
	flaky := endpointtest.Script("err:down", "ok:pong")
	ep := middleware.Retry(middleware.RetryConfig{MaxAttempts: 2, NoDelay: true, Observer: &events})(flaky.Endpoint())
	resp, err := ep(context.Background(), nil)
	fmt.Println(resp, err)
	for _, e := range events.Events() {
		fmt.Println(e.Kind, e.Attempt, e.Err)
	}
	// Output:
	// pong <nil>
	// retry 1 down
}
