package kitmetrics_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resiliencekit/resilience/middleware"
)

// TestKeyedLayersCardinality: a keyed breaker and a keyed rate limit over
// 2,000 keys make series per layer name, not per key: every key's
// rejections and state changes are counted under the layer's name, and no
// breaker state gauge is kept per key.
func TestKeyedLayersCardinality(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs := goKitPrometheus(reg)
	key := func(_ context.Context, req any) string { return req.(string) }
	cb := middleware.KeyedCircuitBreaker(middleware.KeyedBreakerConfig{
		Key: key, Breaker: middleware.BreakerConfig{Name: "tenants", FailureThreshold: 1, Observer: obs},
	})(func(context.Context, any) (any, error) { return nil, errors.New("down") })
	rl := middleware.KeyedRateLimit(middleware.KeyedRateLimitConfig{
		Key: key, Rate: 1e-3, Burst: 1, Name: "per-tenant", Observer: obs,
	})(func(context.Context, any) (any, error) { return "ok", nil })
	for i := range 2000 {
		k := fmt.Sprint("tenant-", i)
		cb(context.Background(), k) // fails: the key's breaker opens
		cb(context.Background(), k) // rejected
		rl(context.Background(), k)
		rl(context.Background(), k) // limited
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, f := range families {
		series += len(f.GetMetric())
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() != "tenants" && l.GetValue() != "per-tenant" {
					t.Errorf("%s has a series named %q, want only the layers' names", f.GetName(), l.GetValue())
				}
			}
		}
		if f.GetName() == "breaker_state" && len(f.GetMetric()) != 0 {
			t.Errorf("breaker_state has %d series for a keyed layer, want none", len(f.GetMetric()))
		}
	}
	if series > 10 {
		t.Errorf("%d series for 2,000 keys, want a handful", series)
	}
}
