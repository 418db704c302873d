package redisstore_test

import (
	"context"
	"errors"
	"math"
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
)

// eventLog records middleware events.
type eventLog struct {
	mu   sync.Mutex
	list []middleware.Event
}

func (l *eventLog) Observe(_ context.Context, e middleware.Event) {
	l.mu.Lock()
	l.list = append(l.list, e)
	l.mu.Unlock()
}

func (l *eventLog) count(k middleware.EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.list {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func TestRateLimitGlobalRate(t *testing.T) {
	srv := redistest.Start(t)
	const (
		replicas = 3
		workers  = 4
		calls    = 10000
		perSec   = 1000.0
		burst    = 200 // banks 200ms of a busy machine's gaps in demand: tokens due while no call came are not lost
	)
	var admitted, made atomic.Int64
	eps := make([]endpoint.Endpoint, replicas)
	for i := range eps {
		s := newStore(t, srv.Addr, testCfg)
		eps[i] = s.RateLimit("global", middleware.RateLimitConfig{Rate: perSec, Burst: burst, Observer: &eventLog{}})(endpoint.Nop)
		// Warm up: connections dialled and the script loaded before the clock starts.
		warm := s.RateLimit("warm", middleware.RateLimitConfig{Rate: 1e6, Burst: 1e6})(endpoint.Nop)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() { warm(context.Background(), nil) })
		}
		wg.Wait()
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range replicas * workers {
		ep := eps[i%replicas]
		wg.Go(func() {
			for made.Add(1) <= calls {
				_, err := ep(context.Background(), nil)
				switch {
				case err == nil:
					admitted.Add(1)
				case !errors.Is(err, middleware.ErrRateLimited):
					t.Errorf("call: %v, want nil or ErrRateLimited", err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	got := float64(admitted.Load())
	want := burst + perSec*elapsed.Seconds()
	t.Logf("%d calls in %v: admitted %.0f, configured rate allows %.1f (%.2f%% off)", calls, elapsed, got, want, 100*(got-want)/want)
	if got >= calls {
		t.Fatalf("every call admitted: the calls came slower than the rate (%v for %d), the test proves nothing", elapsed, calls)
	}
	if math.Abs(got-want) > 0.05*want {
		t.Errorf("admitted = %.0f, want %.1f ± 5%%", got, want)
	}
}

func TestRateLimitRejectsAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	var events eventLog
	cfg := middleware.RateLimitConfig{Rate: 1, Burst: 2, Name: "api", Observer: &events}
	a := newStore(t, srv.Addr, testCfg).RateLimit("", cfg)(endpoint.Nop)
	b := newStore(t, srv.Addr, testCfg).RateLimit("", cfg)(endpoint.Nop)
	ctx := context.Background()
	for i, ep := range []endpoint.Endpoint{a, b} {
		if _, err := ep(ctx, nil); err != nil {
			t.Fatalf("call %d: %v, want admitted (burst 2)", i+1, err)
		}
	}
	_, err := a(ctx, nil)
	if !errors.Is(err, middleware.ErrRateLimited) {
		t.Fatalf("third call: %v, want ErrRateLimited", err)
	}
	e, ok := errors.AsType[*middleware.RateLimitError](err)
	if !ok {
		t.Fatalf("third call: %T, want *RateLimitError", err)
	}
	if e.Name != "api" || e.RetryAfter() <= 0 || e.RetryAfter() > time.Second {
		t.Errorf("error = %+v, want Name api and RetryAfter in (0, 1s]", e)
	}
	if got, want := events.count(middleware.EventRejected), 1; got != want {
		t.Errorf("rejected events = %d, want %d", got, want)
	}
}

func TestRateLimitWait(t *testing.T) {
	srv := redistest.Start(t)
	tests := []struct {
		name     string
		deadline time.Duration
		wantErr  bool
	}{
		{name: "waits for its slot", deadline: time.Second},
		{name: "rejects a wait past the deadline", deadline: 20 * time.Millisecond, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newStore(t, srv.Addr, testCfg).RateLimit(tt.name, middleware.RateLimitConfig{Rate: 10, Burst: 1, Wait: true, Observer: &eventLog{}})(endpoint.Nop)
			if _, err := ep(context.Background(), nil); err != nil {
				t.Fatalf("first call: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
			defer cancel()
			start := time.Now()
			_, err := ep(ctx, nil)
			took := time.Since(start)
			if tt.wantErr {
				if !errors.Is(err, middleware.ErrRateLimited) || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want ErrRateLimited and DeadlineExceeded", err)
				}
				if took > 10*time.Millisecond {
					t.Errorf("rejection took %v, want at once", took)
				}
				return
			}
			if err != nil {
				t.Fatalf("second call: %v, want admitted after a wait", err)
			}
			if took < 50*time.Millisecond || took > 300*time.Millisecond {
				t.Errorf("second call waited %v, want about 100ms", took)
			}
		})
	}
}

func TestRateLimitFallback(t *testing.T) {
	srv := redistest.Start(t)
	var log statusLog
	cfg := testCfg
	cfg.OnStatus = log.add
	s := newStore(t, srv.Addr, cfg)
	ep := s.RateLimit("fb", middleware.RateLimitConfig{Rate: 1, Burst: 3, Observer: &eventLog{}})(endpoint.Nop)
	ctx := context.Background()
	if _, err := ep(ctx, nil); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// The local limiter (rate 1, burst 3) decides now: 3 admitted, then rejected.
	admitted := 0
	start := time.Now()
	for range 5 {
		if _, err := ep(ctx, nil); err == nil {
			admitted++
		} else if !errors.Is(err, middleware.ErrRateLimited) {
			t.Fatalf("call during the outage: %v, want nil or ErrRateLimited", err)
		}
	}
	if took := time.Since(start); took > 2*timeout {
		t.Errorf("5 calls took %v during the outage, want under %v", took, 2*timeout)
	}
	if admitted != 3 {
		t.Errorf("admitted during the outage = %d, want 3 (the local burst)", admitted)
	}
	if st := s.LimiterStats(); st.Healthy || st.Errors == 0 || st.LocalDecisions == 0 {
		t.Errorf("LimiterStats = %+v, want unhealthy with errors and local decisions", st)
	}
	if !log.has(false) {
		t.Error("no status event for the outage")
	}
	srv.Restart(t)
	if _, ok := waitFor(3*resync, func() bool {
		ep(ctx, nil)
		return s.LimiterStats().Healthy
	}); !ok {
		t.Fatal("the rate limit did not go back to Redis")
	}
	if !log.has(true) {
		t.Error("no status event for the return")
	}
}

func TestRateLimitAuth(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "s3cret")
	tests := []struct {
		name      string
		password  string
		wantLocal bool
	}{
		{name: "password passed through", password: "s3cret"},
		{name: "wrong password falls back", password: "nope", wantLocal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: tt.password, ContextTimeoutEnabled: true})
			defer c.Close()
			s := redisstore.New(c, testCfg)
			ep := s.RateLimit("auth", middleware.RateLimitConfig{Rate: 100, Burst: 10, Observer: &eventLog{}})(endpoint.Nop)
			if _, err := ep(context.Background(), nil); err != nil {
				t.Fatalf("call: %v, want admitted", err)
			}
			if got := s.LimiterStats().LocalDecisions > 0; got != tt.wantLocal {
				t.Errorf("local decision = %v, want %v", got, tt.wantLocal)
			}
		})
	}
}

func TestRateLimitConfigPanics(t *testing.T) {
	tests := []struct {
		name string
		key  string
		cfg  middleware.RateLimitConfig
	}{
		{name: "no key nor name", cfg: middleware.RateLimitConfig{Rate: 1, Burst: 1}},
		{name: "invalid rate", key: "k", cfg: middleware.RateLimitConfig{Burst: 1}},
		{name: "key not printable", key: "a\nb", cfg: middleware.RateLimitConfig{Rate: 1, Burst: 1}},
	}
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), redisstore.Config{})
	defer s.Client().Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, middleware.ErrInvalidConfig) {
					t.Errorf("panic = %v, want ErrInvalidConfig", err)
				}
			}()
			s.RateLimit(tt.key, tt.cfg)
		})
	}
}

func TestRateLimitStoreHangs(t *testing.T) {
	srv := redistest.Start(t)
	const short = 100 * time.Millisecond
	s := newStore(t, srv.Addr, redisstore.Config{Timeout: short, ResyncInterval: time.Minute})
	ep := s.RateLimit("hang", middleware.RateLimitConfig{Rate: 1000, Burst: 1000, Observer: &eventLog{}})(endpoint.Nop)
	ctx := context.Background()
	if _, err := ep(ctx, nil); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	if _, err := ep(ctx, nil); err != nil {
		t.Fatalf("first call during the hang: %v, want admitted by the local limiter", err)
	}
	if took := time.Since(start); took < short || took > short+200*time.Millisecond {
		t.Errorf("first call during the hang took %v, want the store timeout (%v)", took, short)
	}
	start = time.Now()
	for range 100 {
		if _, err := ep(ctx, nil); err != nil {
			t.Fatalf("call during the hang: %v, want admitted", err)
		}
	}
	if took := time.Since(start); took > 20*time.Millisecond {
		t.Errorf("100 later calls took %v, want no store wait", took)
	}
}

// tatAhead returns how far past Redis's clock the TAT at key is (0 when
// the key is absent).
func tatAhead(c *redis.Client, key string) (time.Duration, error) {
	ctx := context.Background()
	now, err := c.Time(ctx).Result()
	if err != nil {
		return 0, err
	}
	v, err := c.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	tat, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(tat-float64(now.UnixMicro())) * time.Microsecond, nil
}

// TestRateLimitSharedCancelledWaitersGiveBack books 100 waiting calls
// (10 s of a 10/s limit) and cancels them: each gives its slot back, so a
// fresh waiting call is admitted within about one interval, not after
// about 10 s.
func TestRateLimitSharedCancelledWaitersGiveBack(t *testing.T) {
	srv := redistest.Start(t)
	const waiters = 100
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	s := newStore(t, srv.Addr, testCfg)
	ep := s.RateLimit("giveback", middleware.RateLimitConfig{Rate: 10, Burst: 1, Wait: true, MaxWait: time.Minute, Observer: &eventLog{}})(endpoint.Nop)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var canceled atomic.Int64
	for range waiters {
		wg.Go(func() {
			_, err := ep(ctx, nil)
			switch {
			case errors.Is(err, context.Canceled):
				canceled.Add(1)
			case err != nil:
				t.Errorf("waiter: %v, want nil or context.Canceled", err)
			}
		})
	}
	var ahead time.Duration
	if _, ok := waitFor(5*time.Second, func() bool {
		var err error
		ahead, err = tatAhead(c, "resilience:rate:giveback")
		return err == nil && ahead >= 9*time.Second
	}); !ok {
		t.Fatalf("the waiters booked %v ahead, want about 10s", ahead)
	}
	cancel()
	wg.Wait()
	if got := canceled.Load(); got < waiters-2 {
		t.Errorf("cancelled waiters = %d, want at least %d", got, waiters-2)
	}
	if ahead, err := tatAhead(c, "resilience:rate:giveback"); err != nil || ahead > 200*time.Millisecond {
		t.Errorf("after the cancellations the TAT is %v ahead (%v), want at most about one interval", ahead, err)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer fcancel()
	start := time.Now()
	_, err := ep(fctx, nil)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("fresh call: %v, want admitted", err)
	}
	if took > 300*time.Millisecond {
		t.Errorf("fresh call waited %v, want about one interval (100ms) at most", took)
	}
}

// TestRateLimitSharedWaitBound checks that no shared wait books further
// ahead than MaxWait: a call whose slot would come later is rejected at
// once, without waiting and without booking it, whatever its deadline.
func TestRateLimitSharedWaitBound(t *testing.T) {
	srv := redistest.Start(t)
	tests := []struct {
		name         string
		rate         float64       // calls a second, burst 1
		deadline     time.Duration // 0: none
		wantWait     bool          // admitted after about one interval
		wantDeadline bool          // rejected, matching context.DeadlineExceeded
	}{
		{name: "no deadline", rate: 0.5},
		{name: "deadline past MaxWait", rate: 0.5, deadline: time.Minute},
		{name: "deadline before MaxWait", rate: 0.5, deadline: 500 * time.Millisecond, wantDeadline: true},
		{name: "slot within MaxWait", rate: 4, wantWait: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr})
			defer c.Close()
			key := "bound-" + tt.name
			ep := newStore(t, srv.Addr, testCfg).RateLimit(key, middleware.RateLimitConfig{Rate: tt.rate, Burst: 1, Wait: true, MaxWait: time.Second, Observer: &eventLog{}})(endpoint.Nop)
			if _, err := ep(context.Background(), nil); err != nil {
				t.Fatalf("first call: %v, want admitted", err)
			}
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			before, err := tatAhead(c, "resilience:rate:"+key)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = ep(ctx, nil)
			took := time.Since(start)
			if tt.wantWait {
				if err != nil {
					t.Fatalf("second call: %v, want admitted after a wait", err)
				}
				if took < 150*time.Millisecond || took > 600*time.Millisecond {
					t.Errorf("second call waited %v, want about 250ms", took)
				}
				return
			}
			e, ok := errors.AsType[*middleware.RateLimitError](err)
			if !ok {
				t.Fatalf("second call: %v (after %v), want a *middleware.RateLimitError", err, took)
			}
			if took > 100*time.Millisecond {
				t.Errorf("rejection took %v, want at once", took)
			}
			if got := errors.Is(err, context.DeadlineExceeded); got != tt.wantDeadline {
				t.Errorf("errors.Is(err, DeadlineExceeded) = %v, want %v", got, tt.wantDeadline)
			}
			if d := e.RetryAfter(); d <= time.Second || d > 2*time.Second {
				t.Errorf("RetryAfter = %v, want in (1s, 2s]", d)
			}
			if after, err := tatAhead(c, "resilience:rate:"+key); err != nil || after > before {
				t.Errorf("TAT ahead %v before the rejection, %v after (%v): want no slot booked", before, after, err)
			}
		})
	}
}

// TestRateLimitSharedGiveBackLeavesForeignValue checks that a waiter that
// gives its slot back leaves a key that no longer holds a sane TAT as it
// is.
func TestRateLimitSharedGiveBackLeavesForeignValue(t *testing.T) {
	srv := redistest.Start(t)
	const key = "resilience:rate:foreign-giveback"
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ep := newStore(t, srv.Addr, testCfg).RateLimit("foreign-giveback", middleware.RateLimitConfig{Rate: 1, Burst: 1, Wait: true, Observer: &eventLog{}})(endpoint.Nop)
	if _, err := ep(context.Background(), nil); err != nil {
		t.Fatalf("first call: %v, want admitted", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := ep(ctx, nil)
		done <- err
	}()
	if _, ok := waitFor(bound, func() bool { d, err := tatAhead(c, key); return err == nil && d > time.Second }); !ok {
		t.Fatal("the waiter booked no slot")
	}
	if err := c.Set(context.Background(), key, "hello", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter: %v, want context.Canceled", err)
	}
	if got, err := c.Get(context.Background(), key).Result(); err != nil || got != "hello" {
		t.Errorf("key = %q (%v) after the give-back, want %q left as it was", got, err, "hello")
	}
}
