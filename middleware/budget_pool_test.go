package middleware_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/resiliencekit/resilience/middleware"
)

// memPool is a BudgetPool in memory, for tests: a balance with a cap.
type memPool struct {
	mu        sync.Mutex
	bal, cap  int64
	exchanges int
	err       error
	panics    bool
}

func (p *memPool) Exchange(_ context.Context, deposit, want int64) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exchanges++
	if p.panics {
		panic("pool bug")
	}
	if p.err != nil {
		return 0, p.err
	}
	p.bal = min(p.bal+deposit, p.cap)
	took := min(want, p.bal)
	p.bal -= took
	return took, nil
}

// TestRetryBudgetPool: two budgets on one pool share the retries the
// calls of both earn; deposits go in batches, not a round trip a call; a
// failing pool leaves each budget to decide alone; a panicking one goes on
// up to the caller.
func TestRetryBudgetPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := &memPool{cap: 100 * 1_000_000}
		down := errors.New("down")
		mk := func(fail bool) (func(context.Context, any) (any, error), *int) {
			retries := new(int)
			b := middleware.NewRetryBudget(middleware.RetryBudgetConfig{Ratio: 0.1, MinRetries: 1, Pool: pool})
			return middleware.Retry(middleware.RetryConfig{MaxAttempts: 2, NoDelay: true, Budget: b, Observer: middleware.Discard,
				OnRetry: func(error, int) { *retries++ }})(func(context.Context, any) (any, error) {
				if fail {
					return nil, down
				}
				return "ok", nil
			}), retries
		}
		healthy, _ := mk(false)
		failing, retries := mk(true)
		for range 1000 {
			healthy(context.Background(), nil)
		}
		synctest.Wait() // the deposits' flushes
		for range 100 {
			failing(context.Background(), nil)
		}
		synctest.Wait()
		if *retries < 90 {
			t.Errorf("the failing budget retried %d times, want about 100 (the healthy one's 1,000 calls earn 100)", *retries)
		}
		if pool.exchanges > 60 {
			t.Errorf("%d exchanges for 1,100 calls and ~100 retries, want batches", pool.exchanges)
		}

		pool.err = errors.New("redis down")
		alone, r2 := mk(true)
		for range 20 {
			alone(context.Background(), nil)
		}
		if *r2 < 1 || *r2 > 3 {
			t.Errorf("with the pool down the budget retried %d times in 20 calls, want its own share (1 reserve + 20 × 0.1)", *r2)
		}

		pool.err, pool.panics = nil, true
		p, _ := mk(true)
		func() {
			defer func() {
				if v := recover(); v != "pool bug" {
					t.Errorf("recovered %v, want the pool's panic on the caller's goroutine", v)
				}
			}()
			for range 10 {
				p(context.Background(), nil)
			}
		}()
	})
}
