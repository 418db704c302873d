package redisstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/redisstore"
	"github.com/resiliencekit/resilience/registry"
)

// A registry whose breakers are shared through Redis. Nothing listens on
// port 1, so this one shows the fallback: the breaker decides locally.
func ExampleStore_Registry() {
	s := redisstore.Open("127.0.0.1:1")
	defer s.Close()
	reg := s.Registry(registry.Config{})
	b, err := reg.Breaker("payments", registry.Settings{FailureThreshold: 2})
	if err != nil {
		panic(err)
	}
	for range 3 {
		t, err := b.Allow()
		if err != nil {
			fmt.Println(err)
			continue
		}
		b.Done(t, registry.Failure)
	}
	st, _ := reg.StoreStats()
	fmt.Println(b.State(), "store healthy:", st.Healthy)
	// Output:
	// registry: circuit "payments" is open
	// open store healthy: false
}

// A rate limit shared by every replica on one Redis, with the config and
// errors of middleware.RateLimit. Redis is unreachable here, so the local
// limiter (rate 1, burst 2) decides.
func ExampleStore_RateLimit() {
	s := redisstore.Open("127.0.0.1:1")
	defer s.Close()
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	ep := s.RateLimit("search-api", middleware.RateLimitConfig{Rate: 1, Burst: 2, Observer: quiet})(endpoint.Nop)
	for i := range 3 {
		_, err := ep(context.Background(), nil)
		fmt.Println(i+1, errors.Is(err, middleware.ErrRateLimited))
	}
	fmt.Println("redis healthy:", s.LimiterStats().Healthy)
	// Output:
	// 1 false
	// 2 false
	// 3 true
	// redis healthy: false
}
