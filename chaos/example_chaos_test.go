package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/resiliencekit/resilience/chaos"
	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
)

// Chaos rehearses an outage in a test: it injects a connection failure into
// every call, so the retry and fallback layers above it run their failure
// paths against the real endpoint; Disable ends the outage.
func ExampleChaos() {
	show := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		fmt.Printf("%s %s: %v\n", e.Layer, e.Kind, e.Err)
	})
	outage := chaos.New(chaos.Config{
		ErrorRate: 1,
		Error:     io.ErrUnexpectedEOF, // a connection dropped mid-answer
		Observer:  show,
	})
	embed := func(context.Context, any) (any, error) { return []float32{0.1, 0.2}, nil }
	getEmbeddings := endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Value: []float32{}, Observer: show}),
		middleware.Retry(middleware.RetryConfig{MaxAttempts: 2, NoDelay: true, RetryIf: errclass.Connection, Observer: show}),
		outage.Middleware(), // innermost: the faults look like the endpoint's own
	)(embed)

	v, _ := getEmbeddings(context.Background(), "text")
	fmt.Println("during the outage:", v)

	outage.Disable()
	v, _ = getEmbeddings(context.Background(), "text")
	fmt.Println("after it:", v)
	// Output:
	// chaos chaos: unexpected EOF
	// retry retry: unexpected EOF
	// chaos chaos: unexpected EOF
	// retry retry: middleware: retry gave up after 2 attempts: unexpected EOF
	// fallback fallback: middleware: retry gave up after 2 attempts: unexpected EOF
	// during the outage: []
	// after it: [0.1 0.2]
}

// Set changes what a Chaos injects while it runs, as a game day does: here a
// slow dependency, cut by a timeout layer above it. A seeded Chaos injects the
// same faults on every run.
func ExampleChaos_Set() {
	outage := chaos.New(chaos.Config{Seed: 1})
	query := endpoint.Chain(
		middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: 5 * time.Millisecond, Observer: middleware.ObserverFunc(func(context.Context, middleware.Event) {})}),
		outage.Middleware(),
	)(endpoint.Nop)

	_, err := query(context.Background(), nil)
	fmt.Println("healthy:", err)

	err = outage.Set(chaos.Config{
		LatencyRate: 1,
		Latency:     time.Minute,
		Observer:    middleware.ObserverFunc(func(_ context.Context, e middleware.Event) { fmt.Println("injected", e.Wait) }),
	})
	if err != nil {
		panic(err)
	}
	_, err = query(context.Background(), nil)
	fmt.Println("slow:", errors.Is(err, middleware.ErrTimeout))
	// Output:
	// healthy: <nil>
	// injected 1m0s
	// slow: true
}
