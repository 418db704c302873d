package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/internal/redistest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

var errBench = errors.New("bench: failure")

func failing(context.Context, any) (any, error) { return nil, errBench }

// BenchmarkSharedBreaker compares a call through a breaker shared through
// Redis with one through a local breaker. The target: closed success within
// 2x of local (no store round trip); a store outage costs local decisions
// only.
func BenchmarkSharedBreaker(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	settings := middleware.BreakerConfig{FailureThreshold: 1 << 30, ResetTimeout: time.Minute, Observer: &eventLog{}}
	local := func() middleware.BreakerConfig {
		c := settings
		c.Registry = registry.New(registry.Config{})
		return c
	}
	shared := func(b *testing.B) (middleware.BreakerConfig, *redistest.Server) {
		c := settings
		c.Registry = newStore(b, srv.Addr, testCfg).Registry(registry.Config{})
		return c, srv
	}
	run := func(b *testing.B, ep endpoint.Endpoint) {
		b.ReportAllocs()
		for b.Loop() {
			ep(ctx, nil)
		}
	}
	b.Run("local/closed_success", func(b *testing.B) {
		run(b, middleware.CircuitBreaker("local", local())(endpoint.Nop))
	})
	b.Run("shared/closed_success", func(b *testing.B) {
		c, _ := shared(b)
		run(b, middleware.CircuitBreaker("ok", c)(endpoint.Nop))
	})
	b.Run("local/failure", func(b *testing.B) {
		run(b, middleware.CircuitBreaker("local", local())(failing))
	})
	b.Run("shared/failure", func(b *testing.B) {
		c, _ := shared(b)
		run(b, middleware.CircuitBreaker("fail", c)(failing))
	})
	b.Run("shared/store_down_failure", func(b *testing.B) {
		c, s := shared(b)
		ep := middleware.CircuitBreaker("down", c)(failing)
		s.Stop()
		ep(ctx, nil) // the one call that waits for the store timeout
		run(b, ep)
		b.StopTimer()
		s.Restart(b)
	})
}

// BenchmarkSharedRateLimit is the global rate limit (one round trip a call)
// against the local one, and during an outage (local decisions).
func BenchmarkSharedRateLimit(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	cfg := middleware.RateLimitConfig{Rate: 1e9, Burst: 1e9, Observer: &eventLog{}}
	b.Run("local", func(b *testing.B) {
		ep := middleware.RateLimit(cfg)(endpoint.Nop)
		b.ReportAllocs()
		for b.Loop() {
			ep(ctx, nil)
		}
	})
	b.Run("global", func(b *testing.B) {
		ep := newStore(b, srv.Addr, testCfg).RateLimit("bench", cfg)(endpoint.Nop)
		b.ReportAllocs()
		for b.Loop() {
			ep(ctx, nil)
		}
	})
	b.Run("store_down", func(b *testing.B) {
		ep := newStore(b, srv.Addr, testCfg).RateLimit("bench", cfg)(endpoint.Nop)
		srv.Stop()
		ep(ctx, nil)
		b.ReportAllocs()
		for b.Loop() {
			ep(ctx, nil)
		}
		b.StopTimer()
		srv.Restart(b)
	})
}

// BenchmarkChain1Nop is the baseline: [endpointtest.Baseline], go-kit's
// Chain of one no-op middleware around endpoint.Nop.
func BenchmarkChain1Nop(b *testing.B) {
	ep := endpointtest.Baseline()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ep(ctx, nil)
	}
}
