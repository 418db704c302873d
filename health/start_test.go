package health_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
)

// counter returns a check that counts its runs and returns the error held
// in *fail at each run.
func counter(runs *atomic.Int64, fail *atomic.Pointer[error]) health.CheckFunc {
	return func(context.Context) error {
		runs.Add(1)
		if p := fail.Load(); p != nil {
			return *p
		}
		return nil
	}
}

// TestStartSchedule: background checks run at once and then every
// interval, and probes read the cache without running checks.
func TestStartSchedule(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		after    time.Duration
		wantRuns int64
	}{
		{name: "first run at once", interval: 10 * time.Second, after: 0, wantRuns: 1},
		{name: "just before second", interval: 10 * time.Second, after: 10*time.Second - time.Nanosecond, wantRuns: 1},
		{name: "second", interval: 10 * time.Second, after: 10 * time.Second, wantRuns: 2},
		{name: "many", interval: time.Second, after: 59*time.Second + time.Millisecond, wantRuns: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var runs atomic.Int64
				var fail atomic.Pointer[error]
				c := health.NewChecker(health.Config{DisableJitter: true})
				c.MustRegister(health.Check{Name: "db", Func: counter(&runs, &fail)})
				if err := c.Start(t.Context(), tt.interval); err != nil {
					t.Fatalf("Start: %v", err)
				}
				defer c.Stop()
				time.Sleep(tt.after)
				synctest.Wait()
				if got := runs.Load(); got != tt.wantRuns {
					t.Errorf("runs = %d, want %d", got, tt.wantRuns)
				}
				// Probes read the cache.
				for range 100 {
					c.CheckAll(t.Context())
					c.IsHealthy(t.Context(), "db")
				}
				if err := c.Require(t.Context()); err != nil {
					t.Errorf("Require = %v, want nil", err)
				}
				synctest.Wait()
				if got := runs.Load(); got != tt.wantRuns {
					t.Errorf("runs after probes = %d, want %d", got, tt.wantRuns)
				}
			})
		})
	}
}

// TestStartCachedResult: a cached result changes only when the background
// run sees the change.
func TestStartCachedResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int64
		var fail atomic.Pointer[error]
		c := health.NewChecker(health.Config{DisableJitter: true})
		c.MustRegister(health.Check{Name: "db", Func: counter(&runs, &fail)})
		if err := c.Start(t.Context(), 10*time.Second); err != nil {
			t.Fatalf("Start: %v", err)
		}
		defer c.Stop()
		synctest.Wait()
		down := errors.New("down")
		fail.Store(&down)
		time.Sleep(5 * time.Second)
		s, _ := c.Check(t.Context(), "db")
		if !s.Healthy {
			t.Errorf("at 5s: Healthy = false, want the cached true")
		}
		if got := s.LastCheck; !got.Equal(time.Now().Add(-5 * time.Second)) {
			t.Errorf("at 5s: LastCheck = %v, want 5s ago", got)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		s, _ = c.Check(t.Context(), "db")
		if s.Healthy || !errors.Is(s.Error, down) {
			t.Errorf("at 10s: status = %v %v, want unhealthy with %v", s.Healthy, s.Error, down)
		}
	})
}

// TestStartNotChecked: until its first run ends a check reads as failed with
// ErrNotChecked, without waiting.
func TestStartNotChecked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.NewChecker(health.Config{DisableJitter: true})
		c.MustRegister(health.Check{Name: "slow", Func: sleeper(2*time.Second, nil)})
		if err := c.Start(t.Context(), 10*time.Second); err != nil {
			t.Fatalf("Start: %v", err)
		}
		defer c.Stop()
		start := time.Now()
		s, _ := c.Check(t.Context(), "slow")
		if got := time.Since(start); got != 0 {
			t.Errorf("Check waited %v, want 0", got)
		}
		if s.Healthy || !errors.Is(s.Error, health.ErrNotChecked) {
			t.Errorf("status = %v %v, want unhealthy with ErrNotChecked", s.Healthy, s.Error)
		}
		if !s.LastCheck.IsZero() {
			t.Errorf("LastCheck = %v, want zero", s.LastCheck)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if s, _ := c.Check(t.Context(), "slow"); !s.Healthy {
			t.Errorf("after first run: Healthy = false (%v), want true", s.Error)
		}
	})
}

// TestStartMaxAge: a cached result older than the max age reads as failed
// with ErrStale.
func TestStartMaxAge(t *testing.T) {
	tests := []struct {
		name      string
		maxAge    time.Duration // 0: the default
		interval  time.Duration
		timeout   time.Duration
		hangAfter bool          // the check hangs from its second run on
		fresh     time.Duration // still fresh at this time
		stale     time.Duration // stale at this time
		wantFresh error         // the error when fresh
	}{
		{name: "explicit max age shorter than interval", maxAge: 5 * time.Second, interval: 10 * time.Second, timeout: time.Second,
			fresh: 5 * time.Second, stale: 5*time.Second + time.Nanosecond},
		// Runs at 0 and 10s; the 10s run hangs and times out at 11s; no new
		// result until it returns. Default max age = 2*10s + 1s = 21s, so
		// stale after 11s + 21s = 32s.
		{name: "default max age on a hung check", interval: 10 * time.Second, timeout: time.Second, hangAfter: true,
			fresh: 32 * time.Second, stale: 32*time.Second + time.Nanosecond, wantFresh: middleware.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				defer close(release)
				var runs atomic.Int64
				c := health.NewChecker(health.Config{DisableJitter: true, MaxAge: tt.maxAge})
				c.MustRegister(health.Check{Name: "db", Func: func(context.Context) error {
					if runs.Add(1) > 1 && tt.hangAfter {
						<-release
					}
					return nil
				}, Timeout: tt.timeout})
				if err := c.Start(t.Context(), tt.interval); err != nil {
					t.Fatalf("Start: %v", err)
				}
				defer c.Stop()

				time.Sleep(tt.fresh)
				synctest.Wait()
				s, _ := c.Check(t.Context(), "db")
				if tt.wantFresh == nil && s.Error != nil || tt.wantFresh != nil && !errors.Is(s.Error, tt.wantFresh) {
					t.Errorf("at %v: Error = %v, want %v", tt.fresh, s.Error, tt.wantFresh)
				}
				time.Sleep(tt.stale - tt.fresh)
				s, _ = c.Check(t.Context(), "db")
				if s.Healthy || !errors.Is(s.Error, health.ErrStale) {
					t.Errorf("at %v: status = %v %v, want unhealthy with ErrStale", tt.stale, s.Healthy, s.Error)
				}
				if rep := health.Endpoint(c, health.HandlerConfig{}); rep != nil {
					r, _ := rep(t.Context(), nil)
					if got := r.(health.Report).Status; got != health.Fail {
						t.Errorf("report status = %q, want fail", got)
					}
				}
			})
		})
	}
}

func TestStartErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		interval time.Duration
		twice    bool
		want     error
	}{
		{name: "zero interval", ctx: context.Background(), interval: 0, want: middleware.ErrInvalidConfig},
		{name: "negative interval", ctx: context.Background(), interval: -time.Second, want: middleware.ErrInvalidConfig},
		{name: "cancelled context", ctx: cancelled, interval: time.Second, want: context.Canceled},
		{name: "twice", ctx: context.Background(), interval: time.Second, twice: true, want: health.ErrStarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := health.NewChecker(health.Config{})
				c.MustRegister(health.Check{Name: "db", Func: ok})
				defer c.Stop()
				err := c.Start(tt.ctx, tt.interval)
				if tt.twice {
					if err != nil {
						t.Fatalf("first Start: %v", err)
					}
					err = c.Start(tt.ctx, tt.interval)
				}
				if !errors.Is(err, tt.want) {
					t.Errorf("Start = %v, want %v", err, tt.want)
				}
			})
		})
	}
}

// TestStopAndRestart: after Stop or the context's end, checks run on demand
// again; the checker can be started again.
func TestStopAndRestart(t *testing.T) {
	tests := []struct {
		name string
		stop func(c *health.Checker, cancel context.CancelFunc)
	}{
		{name: "Stop", stop: func(c *health.Checker, _ context.CancelFunc) { c.Stop() }},
		{name: "cancel", stop: func(_ *health.Checker, cancel context.CancelFunc) { cancel() }},
		{name: "cancel then Stop", stop: func(c *health.Checker, cancel context.CancelFunc) { cancel(); c.Stop() }},
		{name: "Stop twice", stop: func(c *health.Checker, _ context.CancelFunc) { c.Stop(); c.Stop() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var runs atomic.Int64
				var fail atomic.Pointer[error]
				c := health.NewChecker(health.Config{DisableJitter: true})
				c.MustRegister(health.Check{Name: "db", Func: counter(&runs, &fail)})
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if err := c.Start(ctx, time.Second); err != nil {
					t.Fatalf("Start: %v", err)
				}
				synctest.Wait()
				tt.stop(c, cancel)
				synctest.Wait()
				time.Sleep(time.Hour) // no background runs any more
				if got := runs.Load(); got != 1 {
					t.Errorf("runs after stop = %d, want 1", got)
				}
				c.CheckAll(t.Context()) // on demand again
				if got := runs.Load(); got != 2 {
					t.Errorf("runs after CheckAll = %d, want 2", got)
				}
				if err := c.Start(t.Context(), time.Second); err != nil {
					t.Fatalf("second Start: %v", err)
				}
				synctest.Wait()
				if got := runs.Load(); got != 3 {
					t.Errorf("runs after restart = %d, want 3", got)
				}
				c.Stop()
			})
		})
	}
}

// TestRegisterWhileStarted: a check registered after Start joins the schedule.
func TestRegisterWhileStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.NewChecker(health.Config{DisableJitter: true})
		if err := c.Start(t.Context(), time.Second); err != nil {
			t.Fatalf("Start: %v", err)
		}
		defer c.Stop()
		var runs atomic.Int64
		var fail atomic.Pointer[error]
		c.MustRegister(health.Check{Name: "late", Func: counter(&runs, &fail)})
		synctest.Wait()
		if s, _ := c.Check(t.Context(), "late"); !s.Healthy {
			t.Errorf("late: Healthy = false (%v), want true", s.Error)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := runs.Load(); got != 2 {
			t.Errorf("runs = %d, want 2", got)
		}
	})
}

// TestStartJitter: waits stay within interval ± jitter and are not all
// equal; the zero Config jitters by DefaultJitter, and DisableJitter makes
// every wait exactly the interval.
func TestStartJitter(t *testing.T) {
	tests := []struct {
		name   string
		cfg    health.Config
		jitter float64 // the jitter the waits must show
	}{
		{name: "zero is the default", jitter: health.DefaultJitter},
		{name: "default", cfg: health.Config{Jitter: health.DefaultJitter}, jitter: health.DefaultJitter},
		{name: "half", cfg: health.Config{Jitter: 0.5}, jitter: 0.5},
		{name: "disabled", cfg: health.Config{DisableJitter: true}, jitter: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const interval = 10 * time.Second
				var mu sync.Mutex
				var at []time.Time
				c := health.NewChecker(tt.cfg)
				c.MustRegister(health.Check{Name: "db", Func: func(context.Context) error {
					mu.Lock()
					at = append(at, time.Now())
					mu.Unlock()
					return nil
				}})
				if err := c.Start(t.Context(), interval); err != nil {
					t.Fatalf("Start: %v", err)
				}
				time.Sleep(50 * interval)
				c.Stop()
				mu.Lock()
				defer mu.Unlock()
				lo := time.Duration(float64(interval) * (1 - tt.jitter))
				hi := time.Duration(float64(interval) * (1 + tt.jitter))
				distinct := map[time.Duration]bool{}
				for i := 1; i < len(at); i++ {
					gap := at[i].Sub(at[i-1])
					if gap < lo || gap > hi {
						t.Errorf("gap %d = %v, want within [%v, %v]", i, gap, lo, hi)
					}
					distinct[gap] = true
				}
				if len(at) < 30 {
					t.Errorf("%d runs, want ≥30", len(at))
				}
				if jittered := len(distinct) > 1; jittered != (tt.jitter > 0) {
					t.Errorf("%d distinct gaps, want jittered = %v", len(distinct), tt.jitter > 0)
				}
			})
		})
	}
}
