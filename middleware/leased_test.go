package middleware_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

// TestLeasedRateLimitFleet: five replicas leasing from one pool admit the
// pool's rate over every 10s window of 30s of fake time (sliding by 100ms),
// within 5%, whether every replica is busy or the demand moves between
// them every second; and they ask the pool for a small share of their
// calls.
func TestLeasedRateLimitFleet(t *testing.T) {
	tests := []struct {
		name   string
		active func(i int, now time.Duration) bool
		steady bool // the demand stays where it is: at most 2% of calls lease
	}{
		{"every replica busy", func(int, time.Duration) bool { return true }, true},
		{"demand moves every second", func(i int, now time.Duration) bool { return int(now/time.Second)%5 == i }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const limit = 1000.0
				inner := middleware.NewMemoryLeasePool(limit, 200)
				pool := &countingPool{LeasePool: inner}
				var admitted, calls atomic.Int64
				const run = 30 * time.Second
				var perMs [30_000]atomic.Int64 // admissions by millisecond of the run
				start := time.Now()
				var wg sync.WaitGroup
				for i := range 5 {
					ep := middleware.LeasedRateLimit(middleware.LeasedRateLimitConfig{Pool: pool, Observer: middleware.Discard})(endpoint.Nop)
					wg.Go(func() {
						// 4,000 calls a second offered while active: four times the limit.
						for now := time.Since(start); now < run; now = time.Since(start) {
							if tt.active(i, now) {
								for range 4 {
									calls.Add(1)
									if _, err := ep(context.Background(), nil); err == nil {
										admitted.Add(1)
										perMs[now/time.Millisecond].Add(1)
									} else if !errors.Is(err, middleware.ErrRateLimited) {
										t.Error(err)
									}
								}
							}
							time.Sleep(time.Millisecond)
						}
					})
				}
				wg.Wait()
				lo, hi := math.Inf(1), 0.0
				for from := 0; from+10_000 <= len(perMs); from += 100 {
					var n int64
					for ms := from; ms < from+10_000; ms++ {
						n += perMs[ms].Load()
					}
					r := float64(n) / (limit * 10)
					lo, hi = min(lo, r), max(hi, r)
				}
				t.Logf("admitted %d of %d calls; over every 10s window %.3f to %.3f of the limit; %d leases", admitted.Load(), calls.Load(), lo, hi, pool.leases.Load())
				if lo < 0.95 || hi > 1.05 {
					t.Errorf("a 10s window admitted %.3f to %.3f of the limit, want within 5%%", lo, hi)
				}
				if share := float64(pool.leases.Load()) / float64(calls.Load()); tt.steady && share > 0.02 {
					t.Errorf("leases for %.1f%% of the calls, want at most 2%%", 100*share)
				}
				time.Sleep(time.Second) // the last leases expire and go back
			})
		})
	}
}

type countingPool struct {
	middleware.LeasePool
	leases atomic.Int64
	err    error
	panics bool
}

func (p *countingPool) Lease(ctx context.Context, replica string, want int64) (middleware.Lease, error) {
	p.leases.Add(1)
	if p.panics {
		panic("pool bug")
	}
	if p.err != nil {
		return middleware.Lease{}, p.err
	}
	return p.LeasePool.Lease(ctx, replica, want)
}

// TestLeasedRateLimitPoolDown: a failing pool leaves each replica its
// share of the limit (the rate over the replicas last counted), asked again
// after ResyncInterval; a panicking pool's panic reaches the caller, with
// nothing held.
func TestLeasedRateLimitPoolDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := &countingPool{LeasePool: middleware.NewMemoryLeasePool(100, 10)}
		var eps []endpoint.Endpoint
		for range 4 {
			eps = append(eps, middleware.LeasedRateLimit(middleware.LeasedRateLimitConfig{Pool: pool, ResyncInterval: time.Minute, Observer: middleware.Discard})(endpoint.Nop))
		}
		for range 3 { // every replica leases, and its lease expires: each learns the pool counts 4
			for _, ep := range eps {
				ep(context.Background(), nil)
			}
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(time.Second)
		pool.err = errors.New("redis down")
		admitted := 0
		for range 1000 { // 10s
			for _, ep := range eps {
				if _, err := ep(context.Background(), nil); err == nil {
					admitted++
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Each replica's share: 25/s and a burst of 2; 10s: about 4 × 252.
		if admitted > 1100 || admitted < 900 {
			t.Errorf("the pool down, four replicas admitted %d in 10s, want about 1,000 (each its share of 100/s), not 4,000", admitted)
		}
		pool.err, pool.panics = nil, true
		time.Sleep(time.Minute) // past ResyncInterval: the pool is asked again
		defer func() {
			if v := recover(); v != "pool bug" {
				t.Errorf("recovered %v, want the pool's panic", v)
			}
		}()
		for range 100 {
			eps[0](context.Background(), nil)
		}
	})
}

func TestLeasedRateLimitConfig(t *testing.T) {
	pool := middleware.NewMemoryLeasePool(1, 1)
	for _, c := range []middleware.LeasedRateLimitConfig{
		{}, {Pool: pool, Period: time.Microsecond}, {Pool: pool, Period: time.Hour}, {Pool: pool, ResyncInterval: -1},
	} {
		if err := c.Validate(); !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidConfig", c, err)
		}
	}
	for _, bad := range []func(){func() { middleware.NewMemoryLeasePool(0, 1) }, func() { middleware.NewMemoryLeasePool(1, 0) }} {
		func() {
			defer func() {
				if err, _ := recover().(error); !errors.Is(err, middleware.ErrInvalidConfig) {
					t.Errorf("NewMemoryLeasePool panicked with %v, want ErrInvalidConfig", err)
				}
			}()
			bad()
		}()
	}
}
