package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// ErrConn stands for the guide's ConnectionError.
var ErrConn = errors.New("connection refused")

// The guide's "Resilient External API Call": a fallback value outermost, then
// the circuit breaker, then retry of transient failures, then a per-attempt
// timeout around the endpoint. The first call recovers on its third attempt;
// the second fails every attempt and is served the fallback value, and the
// breaker (threshold 1 here, to show it) opens; the third call is rejected by
// the open breaker without reaching the endpoint and served the fallback.
func Example() {
	printEvents := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		switch e.Kind {
		case middleware.EventStateChange:
			fmt.Printf("  %s %s: %s -> %s\n", e.Kind, e.Name, e.From, e.To)
		case middleware.EventRetry:
			fmt.Printf("  %s attempt=%d error=%v\n", e.Kind, e.Attempt, e.Err)
		default:
			fmt.Printf("  %s error=%v\n", e.Kind, e.Err)
		}
	})
	stack := endpoint.Chain(
		// Layer 1: fall back to an empty result on complete failure.
		middleware.FallbackWith(middleware.FallbackConfig{Value: []float32{}, Observer: printEvents}),
		// Layer 2: circuit breaker to prevent hammering a failed service.
		middleware.CircuitBreaker("embedding_api", middleware.BreakerConfig{
			FailureThreshold: 1,
			ResetTimeout:     2 * time.Minute,
			Registry:         registry.New(registry.Config{}),
			Observer:         printEvents,
		}),
		// Layer 3: retry transient failures (connection errors, timeouts).
		middleware.Retry(middleware.RetryConfig{
			MaxAttempts:   3,
			Delay:         time.Millisecond,
			DisableJitter: true,
			RetryOn:       []error{ErrConn, middleware.ErrTimeout},
			Observer:      printEvents,
		}),
		// Layer 4: bound every attempt.
		middleware.Timeout(time.Second),
	)

	flaky := endpointtest.New(endpointtest.Err(ErrConn), endpointtest.Err(ErrConn), endpointtest.OK([]float32{0.1, 0.9}))
	getEmbeddings := stack(flaky.Endpoint())
	resp, err := getEmbeddings(context.Background(), []string{"chunk"})
	fmt.Println("first call:", resp, err)

	down := endpointtest.New(endpointtest.Err(ErrConn))
	getEmbeddings = stack(down.Endpoint())
	resp, err = getEmbeddings(context.Background(), []string{"chunk"})
	fmt.Println("second call:", resp, err)

	resp, err = getEmbeddings(context.Background(), []string{"chunk"})
	fmt.Println("third call:", resp, err, "endpoint calls:", down.Calls())

	// Output:
	//   retry attempt=1 error=connection refused
	//   retry attempt=2 error=connection refused
	// first call: [0.1 0.9] <nil>
	//   retry attempt=1 error=connection refused
	//   retry attempt=2 error=connection refused
	//   retry attempt=3 error=middleware: retry gave up after 3 attempts: connection refused
	//   state_change embedding_api: closed -> open
	//   fallback error=middleware: retry gave up after 3 attempts: connection refused
	// second call: [] <nil>
	//   fallback error=registry: circuit "embedding_api" is open
	// third call: [] <nil> endpoint calls: 3
}
