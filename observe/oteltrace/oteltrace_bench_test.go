package oteltrace_test

import (
	"context"
	"errors"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/oteltrace"
)

var benchSink any

// BenchmarkObserver measures the trace observer: a Retry success with it
// attached (no event), and one retry event without a span, with a span not
// sampled, and with a recording span.
func BenchmarkObserver(b *testing.B) {
	obs := oteltrace.New()
	b.Run("retrySuccess", func(b *testing.B) {
		ep := middleware.Retry(middleware.RetryConfig{NoDelay: true, Observer: obs})(endpoint.Nop)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := ep(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			benchSink = resp
		}
	})
	e := middleware.Event{Kind: middleware.EventRetry, Layer: "retry", Name: "embed", Attempt: 1, Err: errors.New("connection refused")}
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	b.Cleanup(func() {
		_ = sampled.Shutdown(context.Background())
		_ = unsampled.Shutdown(context.Background())
	})
	cases := []struct {
		name string
		ctx  func() context.Context
	}{
		{"event/noSpan", context.Background},
		{"event/notSampled", func() context.Context {
			ctx, _ := unsampled.Tracer("b").Start(context.Background(), "op")
			return ctx
		}},
		{"event/recording", func() context.Context {
			ctx, _ := sampled.Tracer("b").Start(context.Background(), "op")
			return ctx
		}},
	}
	for _, tt := range cases {
		b.Run(tt.name, func(b *testing.B) {
			ctx := tt.ctx()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if n++; n%100 == 0 && tt.name == "event/recording" {
					b.StopTimer()
					ctx = tt.ctx() // a span keeps at most 128 events
					b.StartTimer()
				}
				obs.Observe(ctx, e)
			}
		})
	}
}
