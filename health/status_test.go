package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
)

func TestStatusJSON(t *testing.T) {
	at := time.Date(2026, 1, 13, 17, 45, 0, 0, time.UTC)
	tests := []struct {
		name      string
		status    health.Status
		wantMS    float64
		wantError any
	}{
		{name: "guide example", status: health.Status{Name: "chromadb", Healthy: true, Result: health.Pass, Latency: 15200 * time.Microsecond, LastCheck: at}, wantMS: 15.2, wantError: nil},
		{name: "sub-millisecond", status: health.Status{Name: "fs", Latency: 250 * time.Microsecond}, wantMS: 0.25, wantError: nil},
		{name: "error text", status: health.Status{Name: "api", Result: health.Fail, Latency: 2 * time.Second, Error: errors.New("refused")}, wantMS: 2000, wantError: "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.status)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got["latency_ms"] != tt.wantMS {
				t.Errorf("latency_ms = %v, want %v", got["latency_ms"], tt.wantMS)
			}
			if got["error"] != tt.wantError {
				t.Errorf("error = %v, want %v", got["error"], tt.wantError)
			}
			if got["name"] != tt.status.Name || got["healthy"] != tt.status.Healthy {
				t.Errorf("name, healthy = %v, %v, want %v, %v", got["name"], got["healthy"], tt.status.Name, tt.status.Healthy)
			}
			if _, hasLastCheck := got["last_check"]; !hasLastCheck {
				t.Errorf("last_check missing from %s", b)
			}
		})
	}
}

// TestCheckContext: a check's context keeps the caller's values, not its
// cancellation, and carries the check's own deadline.
func TestCheckContext(t *testing.T) {
	type key struct{}
	synctest.Test(t, func(t *testing.T) {
		var gotValue any
		var gotDeadline time.Duration
		c := health.NewChecker(health.Config{})
		c.MustRegister(health.Check{Name: "db", Func: func(ctx context.Context) error {
			gotValue = ctx.Value(key{})
			d, _ := ctx.Deadline()
			gotDeadline = time.Until(d)
			time.Sleep(time.Second)
			return ctx.Err()
		}, Timeout: 3 * time.Second})
		ctx, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
		cancel()
		s, _ := c.Check(ctx, "db") // the caller has gone already
		if !errors.Is(s.Error, context.Canceled) {
			t.Errorf("caller's status error = %v, want context.Canceled", s.Error)
		}
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if gotValue != "v" {
			t.Errorf("value = %v, want v", gotValue)
		}
		if gotDeadline != 3*time.Second {
			t.Errorf("deadline in %v, want %v", gotDeadline, 3*time.Second)
		}
		// The run was not cancelled with its caller: its result is kept.
		if err := c.Start(t.Context(), time.Hour); err != nil {
			t.Fatal(err)
		}
		s, _ = c.Check(t.Context(), "db")
		c.Stop()
		time.Sleep(time.Second) // let Start's own run end
		if !s.Healthy || s.Latency != time.Second {
			t.Errorf("cached status = %v %v %v, want healthy after 1s", s.Healthy, s.Latency, s.Error)
		}
	})
}

// TestLateResultDropped: a hung run that returns after its deadline does not
// overwrite the timeout it was reported with.
func TestLateResultDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		first := true
		c := health.NewChecker(health.Config{DisableJitter: true})
		c.MustRegister(health.Check{Name: "db", Func: func(context.Context) error {
			if first {
				first = false
				<-release
			}
			return nil
		}, Timeout: time.Second})
		if err := c.Start(t.Context(), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		time.Sleep(3 * time.Second)
		close(release) // the first run returns nil, 2s late
		synctest.Wait()
		s, _ := c.Check(t.Context(), "db")
		if !errors.Is(s.Error, middleware.ErrTimeout) {
			t.Errorf("at 3s: Error = %v, want ErrTimeout", s.Error)
		}
		if want := time.Now().Add(-2 * time.Second); !s.LastCheck.Equal(want) {
			t.Errorf("at 3s: LastCheck = %v, want %v", s.LastCheck, want)
		}
		// The next run starts an interval after the first one ended (at its
		// deadline, 1s): at 11s.
		time.Sleep(8*time.Second - time.Nanosecond)
		synctest.Wait()
		if s, _ := c.Check(t.Context(), "db"); s.Healthy {
			t.Errorf("just before 11s: Healthy = true, want false")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if s, _ := c.Check(t.Context(), "db"); !s.Healthy {
			t.Errorf("at 11s: Healthy = false (%v), want true", s.Error)
		}
	})
}
