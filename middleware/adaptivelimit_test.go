package middleware_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// server is a simulated server for the limit's tests: workers serving one
// FIFO queue, log-normal service times (median 10ms, p99 50ms) from a seeded
// source. A call whose context ends while queued is dropped.
type server struct {
	jobs chan serverJob
	wg   sync.WaitGroup
	mu   sync.Mutex
	rng  *rand.Rand
}

type serverJob struct {
	ctx  context.Context
	d    time.Duration
	done chan struct{}
}

func newServer(workers int, seed uint64) *server {
	s := &server{jobs: make(chan serverJob, 1<<16), rng: rand.New(rand.NewPCG(seed, 2))}
	for range workers {
		s.wg.Go(func() {
			for j := range s.jobs {
				if j.ctx.Err() == nil {
					time.Sleep(j.d)
				}
				close(j.done)
			}
		})
	}
	return s
}

func (s *server) close() { close(s.jobs); s.wg.Wait() }

func (s *server) endpoint(ctx context.Context, _ any) (any, error) {
	s.mu.Lock()
	sigma := math.Log(5) / 2.3263
	d := time.Duration(float64(10*time.Millisecond) * math.Exp(sigma*s.rng.NormFloat64()))
	s.mu.Unlock()
	j := serverJob{ctx: ctx, d: d, done: make(chan struct{})}
	s.jobs <- j
	select {
	case <-j.done:
		return "ok", ctx.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestAdaptiveLimitOverload drives a 4-worker server (capacity about 300
// calls/s) at 3 times its capacity for 10s, then at half of it, and checks
// both algorithms: the admitted calls are served about as fast as without
// load (p99 within 2x the unloaded p99), the server stays busy (at least 90%
// of its capacity answered), and once the load drops calls are let in again.
func TestAdaptiveLimitOverload(t *testing.T) {
	for _, algo := range []string{middleware.LimitGradient, middleware.LimitAIMD} {
		t.Run(algo, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(4, 1)
				defer srv.close()
				limits := &endpointtest.Recorder{}
				ep := middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{Algorithm: algo, Observer: limits})(srv.endpoint)
				run := func(rate float64, d time.Duration, seed uint64) (lats []time.Duration, rejected, failed int) {
					rng := rand.New(rand.NewPCG(seed, 3))
					var mu sync.Mutex
					var wg sync.WaitGroup
					for end := time.Now().Add(d); time.Now().Before(end); {
						time.Sleep(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
						wg.Go(func() {
							ctx, cancel := context.WithTimeout(context.Background(), time.Second)
							defer cancel()
							start := time.Now()
							_, err := ep(ctx, nil)
							mu.Lock()
							defer mu.Unlock()
							switch {
							case errors.Is(err, middleware.ErrLimited):
								rejected++
							case err != nil:
								failed++
							default:
								lats = append(lats, time.Since(start))
							}
						})
					}
					wg.Wait()
					return lats, rejected, failed
				}
				base, _, _ := run(100, 20*time.Second, 1)
				slices.Sort(base)
				baseP99 := base[len(base)*99/100]

				lats, rejected, failed := run(900, 10*time.Second, 2)
				slices.Sort(lats)
				p99 := lats[len(lats)*99/100]
				served := float64(len(lats)) / 10
				t.Logf("%s: unloaded p99 %v; at 3x: %.0f/s answered, p99 %v, %d rejected, %d failed", algo, baseP99, served, p99, rejected, failed)
				if p99 > 2*baseP99 {
					t.Errorf("p99 of admitted calls under overload = %v, want at most 2x the unloaded %v", p99, baseP99)
				}
				if capacity := 4 / (12.9e-3); served < 0.9*capacity {
					t.Errorf("answered %.0f calls/s under overload, want at least 90%% of the capacity %.0f/s", served, capacity)
				}
				if failed > len(lats)/100 {
					t.Errorf("%d calls failed (timed out) under overload, want the limit to keep them out", failed)
				}

				// Once the load drops, the limit follows: at half the
				// capacity at most a burst's call in 200 is turned away
				// (AIMD grows by one a window).
				time.Sleep(time.Second)
				lats, rejected, _ = run(150, 5*time.Second, 3)
				if n := len(lats) + rejected; rejected*200 > n {
					t.Errorf("%d of %d calls rejected at half the capacity after the overload, want at most 1 in 200", rejected, n)
				}
				if len(limits.Events()) == 0 {
					t.Error("no EventLimit reported")
				}
			})
		})
	}
}

// TestAdaptiveLimitSlots checks, with a fixed limit of 3, that no more
// than 3 calls are ever in the endpoint at once, however calls end (success,
// error, panic, the caller gone, a rejection), and that every slot comes
// back: afterwards 3 calls run at once again.
func TestAdaptiveLimitSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var in, most atomic.Int64
		rng := rand.New(rand.NewPCG(7, 7))
		var mu sync.Mutex
		ep := func(ctx context.Context, req any) (any, error) {
			n := in.Add(1)
			defer in.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			if block, ok := req.(chan struct{}); ok {
				<-block
				return "held", nil
			}
			mu.Lock()
			d, kind := time.Duration(rng.IntN(50))*time.Millisecond, rng.IntN(4)
			mu.Unlock()
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			switch kind {
			case 0:
				return nil, errors.New("failed")
			case 1:
				panic("endpoint panic")
			}
			return "ok", nil
		}
		for _, cfg := range []middleware.AdaptiveLimitConfig{
			{InitialLimit: 3, MinLimit: 3, MaxLimit: 3, Observer: quiet},
			{InitialLimit: 3, MinLimit: 3, MaxLimit: 3, MaxQueue: 5, MaxWait: 20 * time.Millisecond, Observer: quiet},
		} {
			in.Store(0)
			most.Store(0)
			call := middleware.AdaptiveLimit(cfg)(ep)
			var wg sync.WaitGroup
			for i := range 500 {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%40)*time.Millisecond)
					defer cancel()
					defer func() { _ = recover() }()
					_, _ = call(ctx, nil)
				})
				if i%7 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			wg.Wait()
			if got := most.Load(); got > 3 {
				t.Errorf("queue %d: %d calls in the endpoint at once, want at most the limit 3", cfg.MaxQueue, got)
			}
			// Every slot came back: three calls run at once, a fourth is
			// turned away.
			in.Store(0)
			block := make(chan struct{})
			var held sync.WaitGroup
			for range 3 {
				held.Go(func() { _, _ = call(context.Background(), block) })
			}
			synctest.Wait()
			if got := in.Load(); got != 3 {
				t.Errorf("queue %d: %d calls running after the storm, want 3: a slot was lost", cfg.MaxQueue, got)
			}
			if _, err := call(context.Background(), nil); !errors.Is(err, middleware.ErrLimited) {
				t.Errorf("queue %d: a fourth call: %v, want ErrLimited", cfg.MaxQueue, err)
			}
			close(block)
			held.Wait()
		}
	})
}

// TestAdaptiveLimitQueue checks the queue: a call over the limit waits for
// the slot of a call that ends, in order; beyond MaxQueue it is rejected at
// once; a wait that runs out is a rejection with the time waited; a caller
// who leaves while queued gets its context's error and no event.
func TestAdaptiveLimitQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &endpointtest.Recorder{}
		release := make(chan struct{})
		ep := func(ctx context.Context, req any) (any, error) {
			if req == "hold" {
				<-release
			}
			return req, nil
		}
		call := middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{InitialLimit: 1, MinLimit: 1, MaxLimit: 1, MaxQueue: 1, MaxWait: time.Second, Observer: rec})(ep)
		go func() { _, _ = call(context.Background(), "hold") }()
		synctest.Wait()

		queued := make(chan error, 1)
		go func() { _, err := call(context.Background(), "queued"); queued <- err }()
		synctest.Wait()
		// The queue is full: rejected at once.
		if _, err := call(context.Background(), "third"); !errors.Is(err, middleware.ErrLimited) {
			t.Fatalf("third call: %v, want ErrLimited", err)
		} else if ra, ok := err.(interface{ RetryAfter() time.Duration }); !ok || ra.RetryAfter() <= 0 {
			t.Errorf("rejection %v carries no Retry-After", err)
		}
		close(release)
		if err := <-queued; err != nil {
			t.Errorf("queued call: %v, want the slot of the call that ended", err)
		}

		// A wait that runs out.
		release = make(chan struct{})
		go func() { _, _ = call(context.Background(), "hold") }()
		synctest.Wait()
		start := time.Now()
		_, err := call(context.Background(), "late")
		if !errors.Is(err, middleware.ErrLimited) || time.Since(start) != time.Second {
			t.Errorf("after %v: %v, want ErrLimited after MaxWait 1s", time.Since(start), err)
		}
		ev := rec.Events()
		if last := ev[len(ev)-1]; last.Kind != middleware.EventRejected || last.Wait != time.Second || last.Layer != "adaptive_limit" {
			t.Errorf("last event %+v, want a rejection after waiting 1s", last)
		}

		// A caller who leaves while queued.
		n := len(rec.Events())
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(10 * time.Millisecond); cancel() }()
		if _, err := call(ctx, "gone"); !errors.Is(err, context.Canceled) {
			t.Errorf("caller gone: %v, want context.Canceled", err)
		}
		if got := rec.Events()[n:]; len(got) != 0 {
			t.Errorf("caller gone: events %v, want none", got)
		}
		close(release)
	})
}

// TestAdaptiveLimitRejectionIsLoadShedding checks that Retry never retries
// an ErrLimited and a breaker never counts it.
func TestAdaptiveLimitRejectionIsLoadShedding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New(registry.Config{})
		block := make(chan struct{})
		calls := 0
		limited := middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{InitialLimit: 1, MinLimit: 1, MaxLimit: 1, Observer: quiet})(func(ctx context.Context, req any) (any, error) {
			calls++
			if req == "hold" {
				<-block
			}
			return nil, nil
		})
		ep, err := middleware.Stack{
			CircuitBreaker: middleware.BreakerConfig{Name: "svc", FailureThreshold: 1},
			Retry:          middleware.RetryConfig{MaxAttempts: 3, NoDelay: true},
			Registry:       reg, Observer: quiet,
		}.Apply(limited)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = limited(context.Background(), "hold") }()
		synctest.Wait()
		for range 5 {
			if _, err := ep(context.Background(), nil); !errors.Is(err, middleware.ErrLimited) {
				t.Fatalf("err = %v, want ErrLimited", err)
			}
		}
		if calls != 1 {
			t.Errorf("the endpoint saw %d calls, want 1 (the held one): rejections are never retried", calls)
		}
		if b, _ := reg.Get("svc"); b.Snapshot().State != registry.StateClosed {
			t.Errorf("breaker %v after 5 rejections, want closed: a rejection is no failure", b.Snapshot().State)
		}
		close(block)
	})
}

func TestAdaptiveLimitConfig(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   middleware.AdaptiveLimitConfig
		field string
	}{
		{"unknown algorithm", middleware.AdaptiveLimitConfig{Algorithm: "vegas"}, "adaptive_limit.algorithm"},
		{"negative min", middleware.AdaptiveLimitConfig{MinLimit: -1}, "adaptive_limit.min_limit"},
		{"min above max", middleware.AdaptiveLimitConfig{MinLimit: 10, MaxLimit: 5}, "adaptive_limit.min_limit"},
		{"initial above max", middleware.AdaptiveLimitConfig{InitialLimit: 50, MaxLimit: 10}, "adaptive_limit.initial_limit"},
		{"tolerance below 1", middleware.AdaptiveLimitConfig{Tolerance: 0.5}, "adaptive_limit.tolerance"},
		{"NaN tolerance", middleware.AdaptiveLimitConfig{Tolerance: math.NaN()}, "adaptive_limit.tolerance"},
		{"negative window", middleware.AdaptiveLimitConfig{Window: -time.Second}, "adaptive_limit.window"},
		{"queue without a wait", middleware.AdaptiveLimitConfig{MaxQueue: 3}, "adaptive_limit.max_wait"},
		{"wait without a queue", middleware.AdaptiveLimitConfig{MaxWait: time.Second}, "adaptive_limit.max_queue"},
		{"nil ObserverFunc", middleware.AdaptiveLimitConfig{Observer: middleware.ObserverFunc(nil)}, "adaptive_limit.observer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var ce *middleware.ConfigError
			if !errors.Is(err, middleware.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Path != tt.field {
				t.Fatalf("Validate() = %v, want a ConfigError for %s", err, tt.field)
			}
			if _, err := (middleware.Stack{AdaptiveLimit: tt.cfg}).Build(); !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Errorf("Stack.Build: %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := (middleware.Stack{AdaptiveLimit: middleware.AdaptiveLimitConfig{MinLimit: 5, MaxLimit: 5}}).Apply(endpoint.Nop); err != nil {
		t.Errorf("a fixed limit of 5: %v", err)
	}
}
