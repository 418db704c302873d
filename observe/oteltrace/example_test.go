package oteltrace_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/oteltrace"
)

// The retries inside one request show as span events on its span. The
// application installs the SDK; here an in-memory recorder stands for an
// exporter.
func ExampleNew() {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	// Log and trace at once (the log goes nowhere here).
	obs := middleware.Observers(middleware.LogObserver(slog.New(slog.DiscardHandler)), oteltrace.New(oteltrace.WithoutErrorMessages()))
	calls := 0
	embed := func(context.Context, any) (any, error) {
		if calls++; calls < 3 {
			return nil, errors.New("connection refused")
		}
		return "embedding", nil
	}
	ep := middleware.Retry(middleware.RetryConfig{Name: "embed", MaxAttempts: 3, NoDelay: true, Observer: obs})(embed)

	ctx, span := tp.Tracer("example").Start(context.Background(), "embed")
	resp, err := ep(ctx, "text")
	span.End()
	fmt.Println(resp, err)

	for _, e := range rec.Ended()[0].Events() {
		fmt.Print(e.Name)
		for _, a := range e.Attributes {
			fmt.Printf(" %s=%s", a.Key, a.Value.String())
		}
		fmt.Println()
	}
	// Output:
	// embedding <nil>
	// resilience.retry resilience.attempt=1 resilience.delay_ms=0 resilience.layer=retry resilience.name=embed error.type=*errors.errorString
	// resilience.retry resilience.attempt=2 resilience.delay_ms=0 resilience.layer=retry resilience.name=embed error.type=*errors.errorString
}
