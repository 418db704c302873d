package oteltrace_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/oteltrace"
	"github.com/resiliencekit/resilience/registry"
)

// tracer returns a tracer provider recording into a SpanRecorder.
func tracer(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, sr
}

// describe writes a span event as name{key=value,...}, keys sorted.
func describe(name string, attrs []attribute.KeyValue) string {
	parts := make([]string, 0, len(attrs))
	for _, a := range attrs {
		parts = append(parts, fmt.Sprintf("%s=%s", a.Key, a.Value.String()))
	}
	slices.Sort(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// The guide's stack in one span per request: the span events show the
// retries, the breaker's rejection and the fallbacks.
func TestSpanEvents(t *testing.T) {
	tests := []struct {
		name    string
		script  []string
		breaker middleware.BreakerConfig
		calls   int
		want    [][]string // span events, per request
	}{
		{
			name:   "4 failures then success",
			script: []string{"err", "err", "err", "err", "ok"},
			calls:  2,
			want: [][]string{{
				"resilience.retry{error.message=endpointtest: scripted failure,error.type=*errors.errorString,resilience.attempt=1,resilience.delay_ms=0,resilience.layer=retry,resilience.name=embed}",
				"resilience.retry{error.message=endpointtest: scripted failure,error.type=*errors.errorString,resilience.attempt=2,resilience.delay_ms=0,resilience.layer=retry,resilience.name=embed}",
				"resilience.retry_exhausted{error.message=middleware: retry gave up after 3 attempts: endpointtest: scripted failure,error.type=*middleware.RetryError,resilience.attempt=3,resilience.layer=retry,resilience.name=embed}",
				"resilience.fallback{error.message=middleware: retry gave up after 3 attempts: endpointtest: scripted failure,error.type=*middleware.RetryError,resilience.layer=fallback,resilience.name=embed}",
			}, {
				"resilience.retry{error.message=endpointtest: scripted failure,error.type=*errors.errorString,resilience.attempt=1,resilience.delay_ms=0,resilience.layer=retry,resilience.name=embed}",
			}},
		},
		{
			name:    "open circuit",
			script:  []string{"err"},
			breaker: middleware.BreakerConfig{FailureThreshold: 1, ResetTimeout: time.Minute},
			calls:   2,
			want: [][]string{{
				"resilience.retry{error.message=endpointtest: scripted failure,error.type=*errors.errorString,resilience.attempt=1,resilience.delay_ms=0,resilience.layer=retry,resilience.name=embed}",
				"resilience.retry{error.message=endpointtest: scripted failure,error.type=*errors.errorString,resilience.attempt=2,resilience.delay_ms=0,resilience.layer=retry,resilience.name=embed}",
				"resilience.retry_exhausted{error.message=middleware: retry gave up after 3 attempts: endpointtest: scripted failure,error.type=*middleware.RetryError,resilience.attempt=3,resilience.layer=retry,resilience.name=embed}",
				"resilience.fallback{error.message=middleware: retry gave up after 3 attempts: endpointtest: scripted failure,error.type=*middleware.RetryError,resilience.layer=fallback,resilience.name=embed}",
			}, {
				"resilience.rejected{error.type=circuit_open,resilience.circuit_breaker.state=open,resilience.layer=circuit_breaker,resilience.name=embed,resilience.retry_after_ms=60000}",
				`resilience.fallback{error.message=registry: circuit "embed" is open,error.type=circuit_open,resilience.layer=fallback,resilience.name=embed}`,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tp, sr := tracer(t)
				obs := oteltrace.New()
				b := tt.breaker
				b.Registry, b.Observer = registry.New(registry.Config{}), obs
				ep := endpoint.Chain(
					middleware.FallbackWith(middleware.FallbackConfig{Name: "embed", Value: []float32{}, Observer: obs}),
					middleware.Measure(middleware.MeasureConfig{Name: "embed", Observer: obs}),
					middleware.CircuitBreaker("embed", b),
					middleware.Retry(middleware.RetryConfig{Name: "embed", MaxAttempts: 3, NoDelay: true, Observer: obs}),
				)(endpointtest.Script(tt.script...).Call)
				for i := range tt.calls {
					ctx, span := tp.Tracer("test").Start(t.Context(), fmt.Sprintf("request %d", i))
					if _, err := ep(ctx, nil); err != nil {
						t.Fatal(err)
					}
					span.End()
				}
				spans := sr.Ended()
				if got, want := len(spans), tt.calls; got != want {
					t.Fatalf("spans = %d, want %d", got, want)
				}
				for i, s := range spans {
					var got []string
					for _, e := range s.Events() {
						got = append(got, describe(e.Name, e.Attributes))
					}
					if !slices.Equal(got, tt.want[i]) {
						t.Errorf("request %d events:\n%s\nwant:\n%s", i, strings.Join(got, "\n"), strings.Join(tt.want[i], "\n"))
					}
				}
			})
		})
	}
}

// Each event kind becomes its span event, with the layer's attributes.
func TestEventKinds(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		opts []oteltrace.Option
		e    middleware.Event
		want string // "" for no event
	}{
		{"timeout", nil, middleware.Event{Kind: middleware.EventTimeout, Layer: "timeout", Name: "q", Latency: 10 * time.Second, Err: middleware.ErrTimeout},
			"resilience.timeout{error.type=timeout,resilience.layer=timeout,resilience.name=q,resilience.timeout_ms=10000}"},
		{"rate limit", nil, middleware.Event{Kind: middleware.EventRejected, Layer: "rate_limit", Name: "q", Wait: 250 * time.Millisecond, Err: middleware.ErrRateLimited},
			"resilience.rejected{error.type=rate_limited,resilience.delay_ms=250,resilience.layer=rate_limit,resilience.name=q}"},
		{"bulkhead", nil, middleware.Event{Kind: middleware.EventRejected, Layer: "bulkhead", Err: middleware.ErrBulkheadFull},
			"resilience.rejected{error.type=bulkhead_full,resilience.layer=bulkhead}"},
		{"abandoned", nil, middleware.Event{Kind: middleware.EventRejected, Layer: "timeout", Err: middleware.ErrBulkheadFull},
			"resilience.rejected{error.type=bulkhead_full,resilience.layer=timeout}"},
		{"panic", nil, middleware.Event{Kind: middleware.EventPanic, Layer: "recover", Err: errBoom},
			"resilience.panic{error.message=boom,error.type=*errors.errorString,resilience.layer=recover}"},
		{"state change", nil, middleware.Event{Kind: middleware.EventStateChange, Layer: "circuit_breaker", Name: "db", From: registry.StateClosed, To: registry.StateOpen},
			"resilience.state_change{resilience.circuit_breaker.from=closed,resilience.circuit_breaker.to=open,resilience.layer=circuit_breaker,resilience.name=db}"},
		{"no messages", []oteltrace.Option{oteltrace.WithoutErrorMessages()}, middleware.Event{Kind: middleware.EventFallback, Layer: "fallback", Err: context.DeadlineExceeded},
			"resilience.fallback{error.type=deadline_exceeded,resilience.layer=fallback}"},
		{"measured success", nil, middleware.Event{Kind: middleware.EventCall, Layer: "measure", Outcome: middleware.OutcomeSuccess}, ""},
		{"measured failure", nil, middleware.Event{Kind: middleware.EventCall, Layer: "measure", Outcome: middleware.OutcomeFailure, Err: errBoom}, ""},
		{"measured rate limit", nil, middleware.Event{Kind: middleware.EventCall, Layer: "measure", Outcome: middleware.OutcomeRejected, Err: middleware.ErrRateLimited}, ""},
		{"half-open rejection", nil, middleware.Event{Kind: middleware.EventCall, Layer: "measure", Outcome: middleware.OutcomeRejected,
			Err: &middleware.CircuitOpenError{Service: "db", State: registry.StateHalfOpen}},
			"resilience.rejected{error.type=circuit_open,resilience.circuit_breaker.state=half-open,resilience.layer=circuit_breaker,resilience.name=db}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, sr := tracer(t)
			ctx, span := tp.Tracer("test").Start(t.Context(), "op")
			oteltrace.New(tt.opts...).Observe(ctx, tt.e)
			span.End()
			var got []string
			for _, e := range sr.Ended()[0].Events() {
				got = append(got, describe(e.Name, e.Attributes))
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("events = %q, want %q", got, want)
			}
		})
	}
}

// Without a recording span, nothing is added and nothing allocated.
func TestNoSpan(t *testing.T) {
	obs := oteltrace.New()
	e := middleware.Event{Kind: middleware.EventRetry, Layer: "retry", Attempt: 1, Err: errors.New("x")}
	ctx := context.Background()
	if got := testing.AllocsPerRun(100, func() { obs.Observe(ctx, e) }); got != 0 {
		t.Errorf("allocs = %v, want 0", got)
	}
}

func TestErrorType(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"timeout", fmt.Errorf("w: %w", middleware.ErrTimeout), "timeout"},
		{"canceled", context.Canceled, "canceled"},
		{"retry error", &middleware.RetryError{Attempts: 2, Err: errors.New("x")}, "*middleware.RetryError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := oteltrace.ErrorType(tt.err); got != tt.want {
				t.Errorf("ErrorType = %q, want %q", got, tt.want)
			}
		})
	}
}
