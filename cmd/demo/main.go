// Command demo runs the resilience guide's scenarios against a scripted,
// flaky "embedding API" and prints what every layer did: a retried call
// recovering, a timeout cutting a slow call, a fallback value served when
// every attempt fails, and the guide's combined stack.
//
//	go run ./cmd/demo
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// scale shrinks the guide's delays so the demo runs in a moment: the guide's
// 1s first retry delay becomes 10ms.
const scale = 100

// run plays every scenario, writing the story and the layers' structured
// events to w.
func run(ctx context.Context, w io.Writer) error {
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	scenarios := []struct {
		title string
		play  func(context.Context, io.Writer, *slog.Logger) error
	}{
		{"Retry with exponential backoff: two transient failures, then success", retryRecovers},
		{"Timeout: a hung call is cut at its deadline", timeoutCuts},
		{"Fallback value: every attempt fails, the caller gets []", fallbackServed},
		{"The guide's combined stack: fallback, retry, per-attempt timeout", combined},
		{"Circuit breaker: an outage opens it, calls are rejected fast and served the fallback", breakerOpens},
	}
	for i, s := range scenarios {
		fmt.Fprintf(w, "\n== %d. %s\n", i+1, s.title)
		if err := s.play(ctx, w, logger); err != nil {
			return fmt.Errorf("%s: %w", s.title, err)
		}
	}
	return nil
}

func retryConfig(logger *slog.Logger) middleware.RetryConfig {
	return middleware.RetryConfig{
		Name:          "embedding_api",
		MaxAttempts:   3,
		Delay:         time.Second / scale,
		Backoff:       2,
		DisableJitter: true, // a readable, repeatable timeline
		Logger:        logger,
	}
}

func retryRecovers(ctx context.Context, w io.Writer, logger *slog.Logger) error {
	upstream := endpointtest.Script("err:connection reset", "err:connection reset", "ok:[0.12 0.98 0.33]")
	fetch := middleware.Retry(retryConfig(logger))(upstream.Endpoint())

	resp, err := fetch(ctx, "hello world")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "result: %v after %d calls to the upstream\n", resp, upstream.Calls())
	return nil
}

func timeoutCuts(ctx context.Context, w io.Writer, logger *slog.Logger) error {
	upstream := endpointtest.New(endpointtest.Hang())
	query := middleware.TimeoutWith(middleware.TimeoutConfig{
		Name:    "chromadb",
		Timeout: 30 * time.Second / scale / 10,
		Logger:  logger,
	})(upstream.Endpoint())

	_, err := query(ctx, "nearest neighbours")
	fmt.Fprintf(w, "error: %v\n", err)
	fmt.Fprintf(w, "matches middleware.ErrTimeout: %t, context.DeadlineExceeded: %t\n",
		errors.Is(err, middleware.ErrTimeout), errors.Is(err, context.DeadlineExceeded))
	return nil
}

func fallbackServed(ctx context.Context, w io.Writer, logger *slog.Logger) error {
	upstream := endpointtest.Script("err:service unavailable")
	enrich := endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Name: "enrichment", Value: []string{}, Logger: logger}),
		middleware.Retry(retryConfig(logger)),
	)(upstream.Endpoint())

	resp, err := enrich(ctx, "doc-42")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "result: %#v, error: %v, upstream calls: %d\n", resp, err, upstream.Calls())
	return nil
}

func combined(ctx context.Context, w io.Writer, logger *slog.Logger) error {
	// The first attempt hangs and is cut by the per-attempt timeout; the
	// retry then succeeds.
	upstream := endpointtest.New(endpointtest.Hang(), endpointtest.OK("[0.5 0.5]"))
	getEmbeddings := endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Name: "embedding_api", Value: []float32{}, Logger: logger}),
		middleware.Retry(retryConfig(logger)),
		middleware.TimeoutWith(middleware.TimeoutConfig{Name: "embedding_api", Timeout: 30 * time.Millisecond, Logger: logger}),
	)(upstream.Endpoint())

	resp, err := getEmbeddings(ctx, []string{"chunk one", "chunk two"})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "result: %v after %d upstream calls\n", resp, upstream.Calls())
	return nil
}

func breakerOpens(ctx context.Context, w io.Writer, logger *slog.Logger) error {
	reg := registry.New()
	upstream := endpointtest.Script("err:connection refused")
	getEmbeddings := endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Name: "embedding_api", Value: []float32{}, Logger: logger}),
		middleware.CircuitBreaker("embedding_api", middleware.BreakerConfig{
			FailureThreshold: 2,
			ResetTimeout:     2 * time.Minute,
			Registry:         reg,
			Logger:           logger,
		}),
		middleware.Retry(middleware.RetryConfig{Name: "embedding_api", NoDelay: true, Logger: discard}),
	)(upstream.Endpoint())

	for i := 1; i <= 3; i++ {
		resp, err := getEmbeddings(ctx, "text")
		fmt.Fprintf(w, "call %d: %v %v (upstream calls so far: %d)\n", i, resp, err, upstream.Calls())
	}
	s := reg.States()["embedding_api"]
	fmt.Fprintf(w, "breaker %s: state %s, consecutive failures %d\n", s.Name, s.State, s.ConsecutiveFailures)
	return nil
}

// discard drops the retry layer's own events in the breaker scenario, to keep
// its story short.
var discard = slog.New(slog.DiscardHandler)
