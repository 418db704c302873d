package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/redistest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/redisstore"
	"github.com/resiliencekit/resilience/registry"
)

// leasedFleet returns n replicas' leased rate limits of one key on the
// Redis at addr, and their stores.
func leasedFleet(t *testing.T, addr string, n int, cfg middleware.RateLimitConfig, lc redisstore.LeaseConfig, sc redisstore.Config) ([]endpoint.Endpoint, []*redisstore.Store) {
	t.Helper()
	eps := make([]endpoint.Endpoint, n)
	stores := make([]*redisstore.Store, n)
	for i := range eps {
		stores[i] = newStore(t, addr, sc)
		eps[i] = stores[i].LeasedRateLimit("api", cfg, lc)(endpoint.Nop)
	}
	return eps, stores
}

// drive calls every endpoint from its own goroutines as fast as they can
// until stop, counting the calls admitted between from and stop, and all
// the calls.
func drive(eps []endpoint.Endpoint, from, stop time.Time, active func(i int, now time.Time) bool) (admitted, calls int64) {
	var a, c atomic.Int64
	var wg sync.WaitGroup
	for i, ep := range eps {
		for range 2 {
			wg.Go(func() {
				for {
					now := time.Now()
					if !now.Before(stop) {
						return
					}
					if active != nil && !active(i, now) {
						time.Sleep(time.Millisecond)
						continue
					}
					_, err := ep(context.Background(), nil)
					c.Add(1)
					if err == nil && !now.Before(from) {
						a.Add(1)
					} else if err != nil && !errors.Is(err, middleware.ErrRateLimited) {
						panic(err)
					}
				}
			})
		}
	}
	wg.Wait()
	return a.Load(), c.Load()
}

// Issue 18, part 1: ten replicas leasing from one Redis admit the fleet's
// rate, within 5% over the measured window, whether the demand stays on
// every replica or moves between them, with a round trip for a small share
// of the calls.
func TestLeasedFleetRate(t *testing.T) {
	srv := redistest.Start(t)
	const limit = 2000.0
	tests := []struct {
		name   string
		active func(i int, now time.Time) bool
	}{
		{"every replica busy", nil},
		{"demand moves between halves every 300ms", func(i int, now time.Time) bool {
			return (now.UnixMilli()/300)%2 == int64(i%2)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := middleware.RateLimitConfig{Rate: limit, Burst: 400, Name: tt.name, Observer: middleware.Discard}
			eps, stores := leasedFleet(t, srv.Addr, 10, cfg, redisstore.LeaseConfig{}, testCfg)
			start := time.Now()
			from, stop := start.Add(500*time.Millisecond), start.Add(2500*time.Millisecond)
			admitted, calls := drive(eps, from, stop, tt.active)
			want := limit * stop.Sub(from).Seconds()
			ratio := float64(admitted) / want
			var local uint64
			for _, s := range stores {
				local += s.LimiterStats().LocalDecisions
			}
			t.Logf("admitted %d in %v (want %.0f: ratio %.3f), %d calls, %d decided locally", admitted, stop.Sub(from), want, ratio, calls, local)
			if ratio < 0.95 || ratio > 1.05 {
				t.Errorf("the fleet admitted %.3f of its limit over the window, want within 5%%", ratio)
			}
			if local != 0 {
				t.Errorf("%d calls decided locally with Redis up", local)
			}
		})
	}
}

// Issue 18, part 1: with Redis down, each replica falls back to its share
// of the limit (the limit over the replicas Redis last counted), not the
// whole limit.
func TestLeasedFallbackShare(t *testing.T) {
	srv := redistest.Start(t)
	const limit, burst, n = 400.0, 40, 4
	cfg := middleware.RateLimitConfig{Rate: limit, Burst: burst, Name: "share", Observer: middleware.Discard}
	// A short Timeout: each outage costs a replica one Timeout of waiting
	// (its calls wait for the lease it is taking), then ResyncInterval of
	// local decisions.
	sc := redisstore.Config{Timeout: 20 * time.Millisecond, ResyncInterval: 200 * time.Millisecond}
	eps, stores := leasedFleet(t, srv.Addr, n, cfg, redisstore.LeaseConfig{}, sc)
	for range 3 { // every replica leases, and its lease expires: each learns Redis counts 4, and holds no token
		for _, ep := range eps {
			ep(context.Background(), nil)
		}
		time.Sleep(300 * time.Millisecond)
	}
	srv.Stop()
	start := time.Now()
	admitted, _ := drive(eps, start, start.Add(time.Second), nil)
	var local uint64
	for _, s := range stores {
		local += s.LimiterStats().LocalDecisions
	}
	bound := 1.15 * (limit*1 + burst)
	t.Logf("Redis down: the fleet admitted %d in 1s (the limit %v/s, burst %d; %d local decisions)", admitted, limit, burst, local)
	if float64(admitted) > bound {
		t.Errorf("admitted %d with Redis down, want at most %.0f: each replica its share, not the whole limit", admitted, bound)
	}
	if local == 0 {
		t.Error("no local decision with Redis down")
	}
}

// BenchmarkLeasedRateLimit: an admitted call through a leased limit, one
// replica, real Redis on loopback; reports the round trips per call.
func BenchmarkLeasedRateLimit(b *testing.B) {
	srv := redistest.Start(b)
	s := newStore(b, srv.Addr, testCfg)
	ep := s.LeasedRateLimit("bench", middleware.RateLimitConfig{Rate: 1e7, Burst: 100_000, Observer: middleware.Discard},
		redisstore.LeaseConfig{})(endpoint.Nop)
	ctx := context.Background()
	ep(ctx, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ep(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// Issue 18, part 1: at steady demand under the limit, the fleet asks Redis
// for at most 2% of its calls: ten replicas at about 1,000 calls a second
// each, leasing a tenth of a second of their demand at a time.
func TestLeasedRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	cfg := middleware.RateLimitConfig{Rate: 50_000, Burst: 10_000, Name: "steady", Observer: middleware.Discard}
	eps, stores := leasedFleet(t, srv.Addr, 10, cfg, redisstore.LeaseConfig{}, testCfg)
	var calls atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(2 * time.Second)
	for _, ep := range eps {
		wg.Go(func() {
			for tick := time.Now(); tick.Before(stop); tick = tick.Add(10 * time.Millisecond) {
				for range 10 { // 10 calls every 10ms
					if _, err := ep(context.Background(), nil); err != nil {
						t.Error(err)
						return
					}
					calls.Add(1)
				}
				time.Sleep(time.Until(tick.Add(10 * time.Millisecond)))
			}
		})
	}
	wg.Wait()
	var ops uint64
	for _, s := range stores {
		ops += s.LimiterStats().Leases
	}
	share := float64(ops) / float64(calls.Load())
	t.Logf("%d calls, %d round trips: %.2f%%", calls.Load(), ops, 100*share)
	if share > 0.02 {
		t.Errorf("round trips for %.2f%% of the calls, want at most 2%%", 100*share)
	}
}

// TestLeasedBadKeyHarmsThatKeyAlone: what a leased limit's key holds is
// untrusted. A value the scripts did not write is left as it is, reported
// once naming the key, and that limit alone decides locally (by its
// share); another leased limit of the store stays shared.
func TestLeasedBadKeyHarmsThatKeyAlone(t *testing.T) {
	srv := redistest.Start(t)
	manyFields := make([]any, 0, 2*1100)
	for i := range 1100 {
		manyFields = append(manyFields, fmt.Sprint("r:", i), "1")
	}
	tests := []struct {
		name  string
		write func(ctx context.Context, c *redis.Client, key string) error
	}{
		{"a string", func(ctx context.Context, c *redis.Client, key string) error { return c.Set(ctx, key, "x", 0).Err() }},
		{"a list", func(ctx context.Context, c *redis.Client, key string) error { return c.RPush(ctx, key, "a").Err() }},
		{"tat not a number", func(ctx context.Context, c *redis.Client, key string) error {
			return c.HSet(ctx, key, "tat", "soon").Err()
		}},
		{"tat negative", func(ctx context.Context, c *redis.Client, key string) error {
			return c.HSet(ctx, key, "tat", "-5").Err()
		}},
		{"tat far ahead", func(ctx context.Context, c *redis.Client, key string) error {
			return c.HSet(ctx, key, "tat", strconv.FormatInt(time.Now().UnixMicro()+1e15, 10)).Err()
		}},
		{"a thousand fields", func(ctx context.Context, c *redis.Client, key string) error {
			return c.HSet(ctx, key, manyFields...).Err()
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c := redis.NewClient(&redis.Options{Addr: srv.Addr})
			defer c.Close()
			bad, good := fmt.Sprint("lbad-", i), fmt.Sprint("lgood-", i)
			if err := tt.write(ctx, c, "resilience:lease:"+bad); err != nil {
				t.Fatal(err)
			}
			var log statusLog
			cfg := testCfg
			cfg.OnStatus = log.add
			s := newStore(t, srv.Addr, cfg)
			mk := func(key string) endpoint.Endpoint {
				return s.LeasedRateLimit(key, middleware.RateLimitConfig{Rate: 1, Burst: 1, Observer: middleware.Discard}, redisstore.LeaseConfig{})(endpoint.Nop)
			}
			badEP, goodEP := mk(bad), mk(good)
			if _, err := badEP(ctx, nil); err != nil {
				t.Errorf("first call of the bad key's limit: %v, want admitted by its local share", err)
			}
			st, ok := log.find(bad, false)
			if !ok || !errors.Is(st.Err, registry.ErrBadRecord) {
				t.Fatalf("no bad-record status naming %q: %+v", bad, log.list)
			}
			if _, err := goodEP(ctx, nil); err != nil {
				t.Fatalf("the good limit: %v", err)
			}
			if n := c.HLen(ctx, "resilience:lease:"+good).Val(); n == 0 {
				t.Error("the good limit wrote nothing to Redis: not shared")
			}
			if _, down := log.find("", false); down {
				t.Error("the store as a whole was reported down")
			}
		})
	}
}
