package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// A breaker per tenant: one tenant's failing shard opens that tenant's
// breaker only. The keys held are bounded (MaxKeys, TTL), so tenant names
// taken from requests cannot grow memory without bound.
func ExampleKeyedCircuitBreaker() {
	type request struct{ Tenant string }
	shard := func(_ context.Context, req any) (any, error) {
		if req.(request).Tenant == "acme" {
			return nil, errors.New("acme's shard is down")
		}
		return "ok", nil
	}
	ep := middleware.KeyedCircuitBreaker(middleware.KeyedBreakerConfig{
		Key:     func(_ context.Context, req any) string { return req.(request).Tenant },
		Breaker: middleware.BreakerConfig{Name: "shards", FailureThreshold: 2, Observer: middleware.Discard},
		MaxKeys: 100_000,
		TTL:     time.Hour,
	})(shard)

	for _, tenant := range []string{"acme", "acme", "acme", "globex"} {
		_, err := ep(context.Background(), request{tenant})
		fmt.Printf("%s: open %v, err %v\n", tenant, errors.Is(err, registry.ErrOpen), err)
	}
	// Output:
	// acme: open false, err acme's shard is down
	// acme: open false, err acme's shard is down
	// acme: open true, err registry: circuit "acme" is open
	// globex: open false, err <nil>
}

// A rate limit per API key: each key gets 2 calls at once and 1 a second.
func ExampleKeyedRateLimit() {
	ep := middleware.KeyedRateLimit(middleware.KeyedRateLimitConfig{
		Key:      func(ctx context.Context, _ any) string { return ctx.Value(apiKey{}).(string) },
		Rate:     1,
		Burst:    2,
		Name:     "per-key",
		Observer: middleware.Discard,
	})(func(context.Context, any) (any, error) { return "ok", nil })

	for _, key := range []string{"k1", "k1", "k1", "k2"} {
		_, err := ep(context.WithValue(context.Background(), apiKey{}, key), nil)
		fmt.Printf("%s: limited %v\n", key, errors.Is(err, middleware.ErrRateLimited))
	}
	// Output:
	// k1: limited false
	// k1: limited false
	// k1: limited true
	// k2: limited false
}

type apiKey struct{}
