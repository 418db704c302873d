package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// The guide's basic usage: three attempts, waits doubling from Delay. The
// endpoint fails twice, then succeeds on the third attempt.
func ExampleRetry() {
	errConn := errors.New("connection refused")
	calls := 0
	embed := func(ctx context.Context, req any) (any, error) {
		if calls++; calls <= 2 {
			return nil, errConn
		}
		return "embedding", nil
	}

	fetch := middleware.Retry(middleware.RetryConfig{
		MaxAttempts:   3,
		Delay:         time.Millisecond, // 1ms, then 2ms
		Backoff:       2,
		DisableJitter: true,
		OnRetry: func(err error, attempt int) {
			fmt.Printf("attempt %d failed: %v\n", attempt, err)
		},
		Observer: middleware.LogObserver(slog.New(slog.DiscardHandler)),
	})(embed)

	resp, err := fetch(context.Background(), "text")
	fmt.Println(resp, err)
	// Output:
	// attempt 1 failed: connection refused
	// attempt 2 failed: connection refused
	// embedding <nil>
}

// Retry only specific errors: a transient connection error is retried, a bad
// request is returned at once, unchanged.
func ExampleRetry_retryOn() {
	errConn := errors.New("connection refused")
	errBadRequest := errors.New("bad request")
	retry := middleware.Retry(middleware.RetryConfig{
		MaxAttempts: 5,
		NoDelay:     true,
		RetryOn:     []error{errConn, context.DeadlineExceeded},
		Observer:    middleware.LogObserver(slog.New(slog.DiscardHandler)),
	})

	calls := 0
	failWith := func(err error) func(context.Context, any) (any, error) {
		return func(context.Context, any) (any, error) {
			calls++
			return nil, err
		}
	}

	_, err := retry(failWith(fmt.Errorf("dial: %w", errConn)))(context.Background(), nil)
	if e, ok := errors.AsType[*middleware.RetryError](err); ok {
		fmt.Printf("transient: %d calls, gave up after %d attempts: %v\n", calls, e.Attempts, e.Err)
	}

	calls = 0
	_, err = retry(failWith(errBadRequest))(context.Background(), nil)
	fmt.Printf("permanent: %d call, err == errBadRequest: %v\n", calls, err == errBadRequest)
	// Output:
	// transient: 5 calls, gave up after 5 attempts: dial: connection refused
	// permanent: 1 call, err == errBadRequest: true
}

// A custom retry callback, as the guide's on_retry: count retries for
// metrics and log each one.
func ExampleRetry_onRetry() {
	retries := 0
	onRetry := func(err error, attempt int) {
		retries++ // metrics.increment("api.retries")
		fmt.Printf("Retry %d (error: %v)\n", attempt, err)
	}
	calls := 0
	monitored := func(context.Context, any) (any, error) {
		if calls++; calls <= 2 {
			return nil, errors.New("connection reset")
		}
		return "ok", nil
	}

	call := middleware.Retry(middleware.RetryConfig{
		MaxAttempts: 3,
		NoDelay:     true,
		OnRetry:     onRetry,
		Observer:    middleware.LogObserver(slog.New(slog.DiscardHandler)),
	})(monitored)

	resp, err := call(context.Background(), nil)
	fmt.Println(resp, err, "after", retries, "retries")
	// Output:
	// Retry 1 (error: connection reset)
	// Retry 2 (error: connection reset)
	// ok <nil> after 2 retries
}

// Retry logs each retry with log/slog by default (a nil Observer logs to
// slog.Default; Observer: LogObserver(l) to l). Here the log goes to stdout,
// without the time.
func ExampleRetry_logging() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	down := func(context.Context, any) (any, error) {
		return nil, errors.New("connection refused")
	}

	call := middleware.Retry(middleware.RetryConfig{
		Name:          "embedding_api",
		MaxAttempts:   2,
		Delay:         time.Millisecond,
		DisableJitter: true,
		Observer:      middleware.LogObserver(logger),
	})(down)

	_, err := call(context.Background(), nil)
	fmt.Println(err)
	// Output:
	// level=WARN msg="resilience: retry" event=retry layer=retry name=embedding_api attempt=1 wait=1ms error="connection refused"
	// level=ERROR msg="resilience: retry" event=retry layer=retry name=embedding_api attempt=2 error="middleware: retry gave up after 2 attempts: connection refused"
	// middleware: retry gave up after 2 attempts: connection refused
}

// DelayFor computes a schedule without running anything: here the guide's
// backoff timing table, with the jitter band of each delay.
func ExampleRetryConfig_DelayFor() {
	cfg := middleware.RetryConfig{Delay: time.Second, Backoff: 2}
	for attempt := 1; attempt <= 4; attempt++ {
		fmt.Printf("attempt %d: base %v, with jitter %v to %v\n", attempt,
			cfg.DelayFor(attempt, 0.5), cfg.DelayFor(attempt, 0), cfg.DelayFor(attempt, 1))
	}
	// Output:
	// attempt 1: base 1s, with jitter 500ms to 1.499999999s
	// attempt 2: base 2s, with jitter 1s to 2.999999999s
	// attempt 3: base 4s, with jitter 2s to 5.999999999s
	// attempt 4: base 8s, with jitter 4s to 11.999999999s
}
