package balancer_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"

	"github.com/resiliencekit/resilience/balancer"
	"github.com/resiliencekit/resilience/middleware"
)

// slowFleet is three instances answering after a latency each, counting
// their calls.
type slowFleet struct {
	mu    sync.Mutex
	lat   map[string]time.Duration
	calls map[string]int
}

func (f *slowFleet) factory(instance string) (endpoint.Endpoint, io.Closer, error) {
	return func(ctx context.Context, _ any) (any, error) {
		f.mu.Lock()
		f.calls[instance]++
		d := f.lat[instance]
		f.mu.Unlock()
		select {
		case <-time.After(d):
			return instance, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil, nil
}

func seeded() func() uint64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(1, 2))
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Uint64()
	}
}

// TestPickAvoidsSlowInstance: of three instances one ten times slower, a
// round robin sends it a third of the calls; LeastRequest fewer; PeakEWMA
// almost none once it has answered slowly. Calls arrive every 2ms, from
// their own goroutines, for 2s of fake time.
func TestPickAvoidsSlowInstance(t *testing.T) {
	tests := []struct {
		pick    balancer.Pick
		maxSlow float64 // the slow instance's share of the calls, at most
		minSlow float64 // and at least
	}{
		{balancer.RoundRobin, 0.34, 0.32},
		{balancer.LeastRequest, 0.2, 0},
		{balancer.PeakEWMA, 0.02, 0},
	}
	for _, tt := range tests {
		t.Run(tt.pick.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &slowFleet{lat: map[string]time.Duration{"a": 10 * time.Millisecond, "b": 10 * time.Millisecond, "slow": 100 * time.Millisecond}, calls: map[string]int{}}
				e, err := balancer.NewEndpointer(sd.FixedInstancer{"a", "b", "slow"}, f.factory, balancer.Config{Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				b, err := balancer.New(e, balancer.BalancerConfig{Pick: tt.pick, Rand: seeded()})
				if err != nil {
					t.Fatal(err)
				}
				call := balancer.Retry(b, middleware.RetryConfig{MaxAttempts: 1, Observer: middleware.Discard})
				var wg sync.WaitGroup
				for range 1000 {
					wg.Go(func() {
						if _, err := call(context.Background(), nil); err != nil {
							t.Error(err)
						}
					})
					time.Sleep(2 * time.Millisecond)
				}
				wg.Wait()
				share := float64(f.calls["slow"]) / 1000
				if share > tt.maxSlow || share < tt.minSlow {
					t.Errorf("the slow instance took %.3f of the calls (%v), want within [%v, %v]", share, f.calls, tt.minSlow, tt.maxSlow)
				}
			})
		})
	}
}

// TestRetryHedged: an attempt on the slow instance is hedged, after the
// hedge's delay, on another instance, and the call returns with the first
// answer; a call that is not idempotent is not hedged.
func TestRetryHedged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &slowFleet{lat: map[string]time.Duration{"a": time.Second, "b": 10 * time.Millisecond}, calls: map[string]int{}}
		e, err := balancer.NewEndpointer(sd.FixedInstancer{"a", "b"}, f.factory, balancer.Config{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		b, _ := balancer.New(e, balancer.BalancerConfig{}) // round robin: "a" first
		idempotent := true
		call := balancer.RetryHedged(b, middleware.RetryConfig{MaxAttempts: 1, Observer: middleware.Discard},
			middleware.HedgeConfig{Delay: 20 * time.Millisecond, Observer: middleware.Discard,
				Idempotent: func(context.Context, any) bool { return idempotent }})
		start := time.Now()
		resp, err := call(context.Background(), nil)
		if err != nil || resp != "b" {
			t.Fatalf("call = %v, %v; want b's answer", resp, err)
		}
		if got, want := time.Since(start), 30*time.Millisecond; got != want {
			t.Errorf("took %v, want %v (hedged after 20ms, answered 10ms later)", got, want)
		}
		idempotent = false
		b2, _ := balancer.New(e, balancer.BalancerConfig{})
		call = balancer.RetryHedged(b2, middleware.RetryConfig{MaxAttempts: 1, Observer: middleware.Discard},
			middleware.HedgeConfig{Delay: 20 * time.Millisecond, Observer: middleware.Discard,
				Idempotent: func(context.Context, any) bool { return idempotent }})
		start = time.Now()
		if resp, err := call(context.Background(), nil); err != nil || resp != "a" {
			t.Fatalf("not idempotent: call = %v, %v; want a's answer", resp, err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("not idempotent: took %v, want 1s (no hedge)", got)
		}
	})
}

func TestPickConfig(t *testing.T) {
	for _, c := range []balancer.BalancerConfig{{Pick: 9}, {DecayTime: time.Microsecond}, {DecayTime: 2 * time.Hour}, {DecayTime: -1}} {
		if err := c.Validate(); !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidConfig", c, err)
		}
	}
}
