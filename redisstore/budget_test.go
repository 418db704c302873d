package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resiliencekit/resilience/internal/redistest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// Issue 18, part 3: a retry budget shared by a fleet through Redis. One
// replica of five fails every call and wants to retry; the four others
// only succeed. Their calls earn the fleet's retries, so the failing
// replica retries more than its own calls would allow, and the fleet's
// retries stay under Ratio × the fleet's calls plus each replica's reserve.
func TestFleetRetryBudget(t *testing.T) {
	srv := redistest.Start(t)
	const ratio, replicas, callsEach = 0.1, 5, 400
	down := errors.New("down")
	retried := 0
	var eps []func(context.Context, any) (any, error)
	for i := range replicas {
		s := newStore(t, srv.Addr, testCfg)
		budget := middleware.NewRetryBudget(middleware.RetryBudgetConfig{Ratio: ratio, MinRetries: 1, Pool: s.RetryBudgetPool("deps", 0)})
		failing := i == 0
		next := func(context.Context, any) (any, error) {
			if failing {
				return nil, down
			}
			return "ok", nil
		}
		eps = append(eps, middleware.Retry(middleware.RetryConfig{MaxAttempts: 2, NoDelay: true, Budget: budget, Observer: middleware.Discard,
			OnRetry: func(error, int) {
				if failing {
					retried++
				}
			}})(next))
	}
	for range callsEach {
		for i := 1; i < replicas; i++ { // the healthy replicas first: their calls earn retries
			eps[i](context.Background(), nil)
		}
		eps[0](context.Background(), nil)
	}
	time.Sleep(50 * time.Millisecond) // the last deposits' round trips
	fleetCalls := replicas * callsEach
	alone := int(ratio*callsEach) + 1
	bound := int(ratio*float64(fleetCalls)) + replicas
	t.Logf("the failing replica retried %d times (alone it could %d; the fleet bound is %d)", retried, alone, bound)
	if retried <= alone {
		t.Errorf("the failing replica retried %d times, want more than %d: the fleet's calls earn its retries", retried, alone)
	}
	if retried > bound {
		t.Errorf("the fleet retried %d times, want at most %d (Ratio × fleet calls + reserves)", retried, bound)
	}
}

// TestRetryBudgetPoolBadKey: a balance the pool did not write is a bad
// record; the budget then decides alone.
func TestRetryBudgetPoolBadKey(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := context.Background()
	for _, v := range []string{"lots", "-1", "99999999999999999999999999"} {
		c.Set(ctx, "resilience:budget:bad", v, 0)
		pool := newStore(t, srv.Addr, testCfg).RetryBudgetPool("bad", 10)
		if _, err := pool.Exchange(ctx, 1_000_000, 1_000_000); !errors.Is(err, registry.ErrBadRecord) {
			t.Errorf("balance %q: err = %v, want ErrBadRecord", v, err)
		}
		if got := c.Get(ctx, "resilience:budget:bad").Val(); got != v {
			t.Errorf("the bad value became %q, want it left as it is", got)
		}
	}
}
