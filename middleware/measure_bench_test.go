package middleware_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

// BenchmarkMeasure measures a Measure layer around endpoint.Nop: with an
// observer that drops events (the layer's own cost: two clock reads and one
// call), and with the default observer, a LogObserver whose logger has Debug
// off (the cost of Measure left in place with nothing listening). Compare
// with BenchmarkBaselineChain1Nop.
func BenchmarkMeasure(b *testing.B) {
	tests := []struct {
		name string
		cfg  middleware.MeasureConfig
	}{
		{"success/quiet", middleware.MeasureConfig{Name: "api", Observer: retryQuiet}},
		{"success/logInfo", middleware.MeasureConfig{Name: "api", Observer: middleware.LogObserver(slog.New(slog.DiscardHandler))}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			ep := middleware.Measure(tt.cfg)(endpoint.Nop)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := ep(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				retryBenchSink = resp
			}
		})
	}
}
