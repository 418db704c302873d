package middleware_test

import (
	"context"
	"errors"
	"flag"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// stressCalls is the number of calls per goroutine of the Stress tests:
// 64 goroutines x 10,000 calls (`make stress` runs them with -count=20
// -cpu=1,2,4).
var stressCalls = flag.Int("stress.calls", 10_000, "calls per goroutine in the Stress tests")

const stressGoroutines = 64

// TestStressBreakerHalfOpenAndOpen drives one breaker through many open
// spells from 64 goroutines and checks, at every endpoint call, that no call
// reaches the endpoint while the breaker is open, that half-open never has
// more than SuccessThreshold probes in the endpoint at once, and that every
// transition the listener hears is legal and follows the previous one.
func TestStressBreakerHalfOpenAndOpen(t *testing.T) {
	tests := []struct {
		name             string
		successThreshold int
	}{
		{name: "success threshold 1", successThreshold: 1},
		{name: "success threshold 3", successThreshold: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var (
					mu        sync.Mutex
					state     = registry.StateClosed
					openSince time.Time
					illegal   []registry.StateChange
					changes   int
				)
				reg := registry.New(registry.Config{Listeners: []func(registry.StateChange){func(c registry.StateChange) {
					mu.Lock()
					defer mu.Unlock()
					changes++
					legal := c.From == state && ((c.From == registry.StateClosed && c.To == registry.StateOpen) ||
						(c.From == registry.StateOpen && c.To == registry.StateHalfOpen) ||
						(c.From == registry.StateHalfOpen && (c.To == registry.StateOpen || c.To == registry.StateClosed)))
					if !legal {
						illegal = append(illegal, c)
					}
					state = c.To
					if c.To == registry.StateOpen {
						openSince = c.At
					}
				}}})
				const resetTimeout = 20 * time.Millisecond
				mw := middleware.CircuitBreaker("stress", middleware.BreakerConfig{
					Registry: reg, Observer: quiet, FailureThreshold: 3,
					SuccessThreshold: tt.successThreshold, ResetTimeout: resetTimeout,
				})
				b, _ := reg.Get("stress")
				start := time.Now()
				var probes, maxProbes, whileOpen atomic.Int64
				ep := mw(func(ctx context.Context, req any) (any, error) {
					now := time.Now()
					// Admission and entry happen at the same fake instant: a
					// call entering strictly inside an open spell (opened
					// before now, not yet half-open) was admitted by an open
					// breaker.
					mu.Lock()
					if state == registry.StateOpen && openSince.Before(now) && now.Sub(openSince) < resetTimeout {
						whileOpen.Add(1)
					}
					mu.Unlock()
					if b.State() == registry.StateHalfOpen {
						n := probes.Add(1)
						defer probes.Add(-1)
						for m := maxProbes.Load(); n > m && !maxProbes.CompareAndSwap(m, n); m = maxProbes.Load() {
						}
					}
					time.Sleep(time.Millisecond)
					// Outages of 30ms every 100ms, scattered failures between.
					if (time.Since(start)%(100*time.Millisecond)) < 30*time.Millisecond || req.(int)%17 == 0 {
						return nil, errConn
					}
					return "ok", nil
				})
				var ok, failed, rejected atomic.Int64
				var wg sync.WaitGroup
				for g := range stressGoroutines {
					wg.Go(func() {
						for i := range *stressCalls {
							_, err := ep(context.Background(), g+i)
							switch {
							case err == nil:
								ok.Add(1)
							case errors.Is(err, middleware.ErrCircuitOpen):
								rejected.Add(1)
								time.Sleep(time.Millisecond)
							case errors.Is(err, errConn):
								failed.Add(1)
							default:
								t.Errorf("err = %v", err)
							}
						}
					})
				}
				wg.Wait()
				// The breaker's timer may still deliver a transition to
				// half-open: let it, and read the listener's record under its
				// lock.
				time.Sleep(resetTimeout)
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				t.Logf("%d calls: ok %d, failed %d, rejected %d; %d transitions; max probes in flight %d",
					stressGoroutines**stressCalls, ok.Load(), failed.Load(), rejected.Load(), changes, maxProbes.Load())
				if got := whileOpen.Load(); got != 0 {
					t.Errorf("endpoint calls while open = %d, want 0", got)
				}
				if got, limit := maxProbes.Load(), int64(tt.successThreshold); got > limit {
					t.Errorf("half-open probes in flight at once = %d, want at most %d", got, limit)
				}
				if len(illegal) != 0 {
					t.Errorf("illegal transitions: %v", illegal)
				}
				if changes < 3 || rejected.Load() == 0 || maxProbes.Load() == 0 {
					t.Errorf("%d transitions, %d rejections, %d probes: the load never cycled the breaker", changes, rejected.Load(), maxProbes.Load())
				}
			})
		})
	}
}

// TestStressBulkhead checks, from 64 goroutines x 10,000 calls in real
// time, that a bulkhead never lets more than MaxConcurrent calls into the
// endpoint, that admitted + rejected = calls, and that every slot is given
// back, panics included.
func TestStressBulkhead(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.BulkheadConfig
	}{
		{name: "rejecting, 4", cfg: middleware.BulkheadConfig{MaxConcurrent: 4}},
		{name: "waiting, 8, queue 16", cfg: middleware.BulkheadConfig{MaxConcurrent: 8, MaxWait: time.Millisecond, MaxQueue: 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Observer = quiet
			hold := make(chan struct{})
			counter := endpointtest.Count(func(_ context.Context, req any) (any, error) {
				if req.(int) == -1 {
					<-hold // the check that every slot was given back
				}
				if req.(int)%1000 == 999 {
					panic(errConn)
				}
				runtime.Gosched()
				return "ok", nil
			})
			ep := middleware.Bulkhead(tt.cfg)(counter.Endpoint())
			var rejected, panics atomic.Int64
			var wg sync.WaitGroup
			for g := range stressGoroutines {
				wg.Go(func() {
					for i := range *stressCalls {
						func() {
							defer func() {
								if recover() != nil {
									panics.Add(1)
								}
							}()
							if _, err := ep(context.Background(), g+i); err != nil {
								if !errors.Is(err, middleware.ErrBulkheadFull) {
									t.Errorf("err = %v, want nil or ErrBulkheadFull", err)
								}
								rejected.Add(1)
							}
						}()
					}
				})
			}
			wg.Wait()
			if got, limit := counter.MaxInFlight(), tt.cfg.MaxConcurrent; got > limit {
				t.Errorf("max in flight = %d, want at most %d", got, limit)
			}
			if got, want := int64(counter.Calls())+rejected.Load(), int64(stressGoroutines**stressCalls); got != want {
				t.Errorf("admitted + rejected = %d, want %d", got, want)
			}
			if got, want := panics.Load(), int64(counter.Panics()); got != want {
				t.Errorf("panics seen by callers = %d, want %d", got, want)
			}
			// Every slot was given back: MaxConcurrent calls fit at once.
			if got := counter.InFlight(); got != 0 {
				t.Errorf("in flight after the run = %d, want 0", got)
			}
			var held sync.WaitGroup
			for range tt.cfg.MaxConcurrent {
				held.Go(func() {
					if _, err := ep(context.Background(), -1); err != nil {
						t.Errorf("slot not free after the run: %v", err)
					}
				})
			}
			for counter.InFlight() < tt.cfg.MaxConcurrent && !t.Failed() {
				time.Sleep(time.Millisecond)
			}
			close(hold)
			held.Wait()
			t.Logf("%d calls: %d admitted, %d rejected, %d panics, max in flight %d", stressGoroutines**stressCalls, counter.Calls(), rejected.Load(), panics.Load(), counter.MaxInFlight())
		})
	}
}

// TestStressRateLimit checks, from 64 goroutines x 10,000 calls in fake
// time, that a rate limit never admits more than Burst + Rate x elapsed
// calls, and that admitted + rejected = calls.
func TestStressRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, burst = 10_000.0, 50
		counter := endpointtest.Count(func(context.Context, any) (any, error) { return "ok", nil })
		ep := middleware.RateLimit(middleware.RateLimitConfig{Rate: rate, Burst: burst, Observer: quiet})(counter.Endpoint())
		start := time.Now()
		var rejected atomic.Int64
		var wg sync.WaitGroup
		for range stressGoroutines {
			wg.Go(func() {
				for i := range *stressCalls {
					if _, err := ep(context.Background(), nil); err != nil {
						if !errors.Is(err, middleware.ErrRateLimited) {
							t.Errorf("err = %v, want nil or ErrRateLimited", err)
						}
						rejected.Add(1)
					}
					if i%8 == 7 {
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		limit := burst + int(rate*elapsed.Seconds())
		t.Logf("%d calls over %v: %d admitted (limit %d), %d rejected", stressGoroutines**stressCalls, elapsed, counter.Calls(), limit, rejected.Load())
		if got := counter.Calls(); got > limit {
			t.Errorf("admitted = %d, want at most %d", got, limit)
		}
		if got, want := int64(counter.Calls())+rejected.Load(), int64(stressGoroutines**stressCalls); got != want {
			t.Errorf("admitted + rejected = %d, want %d", got, want)
		}
		if rejected.Load() == 0 {
			t.Errorf("rejected = 0: the load never reached the limit")
		}
	})
}
