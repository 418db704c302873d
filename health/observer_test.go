package health_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
)

// statusLog is a WithObserver function that keeps what it is given.
type statusLog struct {
	mu   sync.Mutex
	seen []health.Status
}

func (l *statusLog) observe(s health.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, s)
}

func (l *statusLog) all() []health.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]health.Status(nil), l.seen...)
}

// WithObserver sees each run once, with its result and latency: runs on
// demand, a timed-out run, and runs of the background loop; never a cached
// read.
func TestWithObserver(t *testing.T) {
	errDown := errors.New("down")
	tests := []struct {
		name        string
		fn          health.CheckFunc
		wantResult  health.Result
		wantLatency time.Duration
		wantErr     error
	}{
		{"pass", sleeper(20*time.Millisecond, nil), health.Pass, 20 * time.Millisecond, nil},
		{"fail", sleeper(30*time.Millisecond, errDown), health.Fail, 30 * time.Millisecond, errDown},
		{"degraded", sleeper(10*time.Millisecond, health.Degraded(errDown)), health.Warn, 10 * time.Millisecond, health.ErrDegraded},
		{"timeout", sleeper(time.Hour, nil), health.Fail, time.Second, middleware.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := &statusLog{}
				c := health.NewChecker(health.Config{Observer: log.observe})
				c.MustRegister(health.Check{Name: "db", Func: tt.fn, Timeout: time.Second})
				c.CheckAll(t.Context())
				synctest.Wait()
				seen := log.all()
				if got, want := len(seen), 1; got != want {
					t.Fatalf("observed = %d, want %d", got, want)
				}
				s := seen[0]
				if s.Name != "db" || s.Result != tt.wantResult {
					t.Errorf("status = %s %s, want db %s", s.Name, s.Result, tt.wantResult)
				}
				if got, want := s.Latency, tt.wantLatency; got != want {
					t.Errorf("latency = %v, want %v", got, want)
				}
				if !errors.Is(s.Error, tt.wantErr) || (tt.wantErr == nil && s.Error != nil) {
					t.Errorf("error = %v, want %v", s.Error, tt.wantErr)
				}
			})
		})
	}
}

func TestWithObserverBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &statusLog{}
		c := health.NewChecker(health.Config{Observer: log.observe, DisableJitter: true})
		c.MustRegister(health.Check{Name: "db", Func: sleeper(time.Millisecond, nil)})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if err := c.Start(ctx, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Second) // runs at 0s, 10.001s, 20.002s
		for range 5 {
			c.CheckAll(ctx) // cached reads: not observed
		}
		c.Stop()
		synctest.Wait()
		if got, want := len(log.all()), 3; got != want {
			t.Errorf("observed = %d, want %d", got, want)
		}
	})
}
