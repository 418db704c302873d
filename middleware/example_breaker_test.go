package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// stdoutLogger logs to standard output without timestamps, so examples can
// show what the middleware logs.
func stdoutLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// The guide's Basic Usage: @circuit_breaker("embedding_api",
// failure_threshold=5, reset_timeout=60). After five consecutive failures the
// breaker opens, logs the change, and rejects calls without making them.
func ExampleCircuitBreaker() {
	reg := registry.New(registry.Config{}) // registry.Default when Registry is nil
	api := endpointtest.Script("ok", "err", "err", "err", "err", "err", "ok")
	getEmbedding := middleware.CircuitBreaker("embedding_api", middleware.BreakerConfig{
		FailureThreshold: 5,
		ResetTimeout:     60 * time.Second,
		Registry:         reg,
		Observer:         middleware.LogObserver(stdoutLogger()),
	})(api.Endpoint())

	for i := 1; i <= 7; i++ {
		_, err := getEmbedding(context.Background(), "text")
		fmt.Printf("call %d: %v\n", i, err)
	}
	fmt.Println("calls that reached the API:", api.Calls())
	reg.ResetAll() // a manual reset is logged too
	// Output:
	// call 1: <nil>
	// call 2: endpointtest: scripted failure
	// call 3: endpointtest: scripted failure
	// call 4: endpointtest: scripted failure
	// call 5: endpointtest: scripted failure
	// level=WARN msg="resilience: state_change" event=state_change layer=circuit_breaker name=embedding_api from=closed to=open
	// call 6: endpointtest: scripted failure
	// call 7: registry: circuit "embedding_api" is open
	// calls that reached the API: 6
	// level=INFO msg="resilience: state_change" event=state_change layer=circuit_breaker name=embedding_api from=open to=closed
}

// The guide's Handling Open Circuit: when the breaker rejects a call, degrade
// gracefully (here, serve from a cache) instead of failing.
func ExampleCircuitBreaker_handlingOpenCircuit() {
	reg := registry.New(registry.Config{})
	callAPI := middleware.CircuitBreaker("api", middleware.BreakerConfig{
		FailureThreshold: 3,
		Registry:         reg,
		Observer:         quiet,
	})(endpointtest.Script("err").Endpoint())
	getFromCache := func() any { return "cached result" }

	for range 3 {
		_, _ = callAPI(context.Background(), nil) // three failures open the breaker
	}
	result, err := callAPI(context.Background(), nil)
	if e, ok := errors.AsType[*middleware.CircuitOpenError](err); ok {
		fmt.Printf("Service %s is down (%s), using cache; retry in at most %v\n",
			e.Service, e.State, e.RetryAfter().Round(time.Minute))
		result, err = getFromCache(), nil
	}
	fmt.Println(result, err)
	reg.ResetAll()
	// Output:
	// Service api is down (open), using cache; retry in at most 1m0s
	// cached result <nil>
}

// The guide's Monitoring Circuit State: list every breaker's state, find
// the open ones, and reset one by hand.
func ExampleCircuitBreaker_monitoring() {
	reg := registry.New(registry.Config{}) // the guide's class-level registry is registry.Default
	for _, name := range []string{"chromadb", "embedding_api", "search"} {
		middleware.CircuitBreaker(name, middleware.BreakerConfig{Registry: reg, Observer: quiet})
	}
	chroma, _ := reg.Get("chromadb")
	chroma.Trip() // as if ChromaDB had failed five times in a row

	states := reg.States()
	for _, name := range reg.Names() {
		s := states[name]
		fmt.Printf("%s: %s (failures: %d)\n", name, s.State, s.ConsecutiveFailures)
	}
	if cb, ok := reg.Get("chromadb"); ok && cb.State() == registry.StateOpen {
		fmt.Println("alert: ChromaDB circuit is open!")
	}
	reg.Reset("chromadb") // manual reset
	fmt.Println("chromadb:", states["chromadb"].State, "->", chroma.State())
	// Output:
	// chromadb: open (failures: 0)
	// embedding_api: closed (failures: 0)
	// search: closed (failures: 0)
	// alert: ChromaDB circuit is open!
	// chromadb: open -> closed
}

// The guide's Test Failure Paths: force the breaker open and check that the
// caller's fallback serves the request. Trip opens a breaker at once (no
// simulated failures needed); Reset closes it; to reach half-open, Trip it
// and let ResetTimeout pass inside a testing/synctest bubble.
func ExampleCircuitBreaker_testFailurePaths() {
	reg := registry.New(registry.Config{}) // a registry of the test's own keeps tests apart
	api := endpointtest.Script("ok")
	getEmbeddings := middleware.CircuitBreaker("embedding_api", middleware.BreakerConfig{Registry: reg, Observer: quiet})(api.Endpoint())
	// The code under test degrades to an empty result when the breaker is open.
	embed := func(ctx context.Context, texts []string) []string {
		resp, err := getEmbeddings(ctx, texts)
		if errors.Is(err, middleware.ErrCircuitOpen) {
			return []string{}
		}
		return []string{resp.(string)}
	}

	cb, _ := reg.Get("embedding_api")
	cb.Trip() // force the circuit open
	result := embed(context.Background(), []string{"test"})
	fmt.Printf("result = %q, API calls = %d\n", result, api.Calls())

	cb.Reset()
	result = embed(context.Background(), []string{"test"})
	fmt.Printf("result = %q, API calls = %d\n", result, api.Calls())
	// Output:
	// result = [], API calls = 0
	// result = ["ok"], API calls = 1
}

// An open duration that grows on repeated opens: each failed probe doubles
// the next spell (ResetBackoff's default), up to MaxResetTimeout, so a
// dependency that stays down is probed less and less often; once a probe
// succeeds, the next opening starts again from ResetTimeout. (ResetJitter
// would also shorten each spell at random, so that replicas do not probe in
// step.)
func ExampleBreakerConfig_maxResetTimeout() {
	down := func(context.Context, any) (any, error) { return nil, errors.New("connection refused") }
	ep := middleware.CircuitBreaker("flaky_api", middleware.BreakerConfig{
		FailureThreshold: 1,
		SuccessThreshold: 1,
		ResetTimeout:     time.Millisecond,
		MaxResetTimeout:  4 * time.Millisecond,
		Registry:         registry.New(registry.Config{}),
		Observer:         middleware.Discard,
	})(down)

	ep(context.Background(), nil) // the first failure opens the breaker
	for range 4 {
		_, err := ep(context.Background(), nil)
		open, _ := errors.AsType[*registry.CircuitOpenError](err)
		fmt.Println("open for", open.HalfOpenAt.Sub(open.OpenedAt))
		time.Sleep(time.Until(open.HalfOpenAt))
		ep(context.Background(), nil) // the probe fails: open again, for longer
	}
	// Output:
	// open for 1ms
	// open for 2ms
	// open for 4ms
	// open for 4ms
}
