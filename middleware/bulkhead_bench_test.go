package middleware_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

var bulkheadBenchSink any

// BenchmarkBulkhead measures a Bulkhead layer around endpoint.Nop: a call
// that finds a free slot, alone and from parallel goroutines (GOMAXPROCS of
// them, with a slot each), and a call rejected at once because another call
// holds the only slot, without and with a bounded wait (whose queue is full).
// Rejections go to an observer that drops them.
func BenchmarkBulkhead(b *testing.B) {
	b.Run("admit", func(b *testing.B) {
		ep := middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1})(endpoint.Nop)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := ep(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			bulkheadBenchSink = resp
		}
	})
	b.Run("admit_parallel", func(b *testing.B) {
		ep := middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1 << 10})(endpoint.Nop)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := ep(ctx, nil); err != nil {
					b.Errorf("err = %v", err)
					return
				}
			}
		})
	})
	tests := []struct {
		name string
		cfg  middleware.BulkheadConfig
	}{
		{name: "full", cfg: middleware.BulkheadConfig{MaxConcurrent: 1}},
		{name: "full_queue_full", cfg: middleware.BulkheadConfig{MaxConcurrent: 1, MaxWait: 1 << 40, MaxQueue: 1}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tt.cfg.Observer = rateLimitQuiet
			ep := middleware.Bulkhead(tt.cfg)(bulkheadHold)
			ctx, cancel := context.WithCancel(context.Background())
			held := bulkheadBenchFill(ctx, ep, 1+tt.cfg.MaxQueue)
			b.ReportAllocs()
			for b.Loop() {
				_, err := ep(ctx, nil)
				if !errors.Is(err, middleware.ErrBulkheadFull) {
					b.Fatalf("err = %v, want ErrBulkheadFull", err)
				}
			}
			b.StopTimer()
			cancel()
			<-held
		})
	}
}

// bulkheadBenchFill starts n calls of ep that hold their slot (or their place
// in the queue) until ctx ends, and returns once the bulkhead rejects a new
// call; the returned channel is closed when the n calls have all returned.
func bulkheadBenchFill(ctx context.Context, ep endpoint.Endpoint, n int) <-chan struct{} {
	hold := make(chan struct{}) // never closed: the calls end with ctx
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _, _ = ep(ctx, hold) })
	}
	// A probe with a canceled context is admitted while a slot is free,
	// leaves at once while a place in the queue is free, and is rejected
	// once both are taken.
	probe, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		if _, err := ep(probe, nil); errors.Is(err, middleware.ErrBulkheadFull) {
			break
		}
		runtime.Gosched()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}
