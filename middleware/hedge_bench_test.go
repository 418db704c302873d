package middleware_test

import (
	"context"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

var hedgeBenchSink any

// BenchmarkHedge measures a Hedge layer around an endpoint that answers at
// once, so that no hedge is ever sent: what every hedged call pays (a
// goroutine for the first attempt, a channel, a timer, a cancelable
// context), and a call Idempotent does not approve (one function call).
func BenchmarkHedge(b *testing.B) {
	for _, tt := range []struct {
		name string
		idem func(context.Context, any) bool
	}{
		{"hedged_success", func(context.Context, any) bool { return true }},
		{"not_idempotent", func(context.Context, any) bool { return false }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			ep := middleware.Hedge(middleware.HedgeConfig{Delay: time.Second, Idempotent: tt.idem, Observer: middleware.Discard})(endpoint.Nop)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				hedgeBenchSink, _ = ep(ctx, nil)
			}
		})
	}
}
