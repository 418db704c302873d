package middleware_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// TestThrottleConvergence simulates a server that accepts only capacity
// calls a second (rejecting the rest fast) offered 3x that: the rate the
// client sends converges to about K x the accepted rate. When the server
// recovers, the throttle stops rejecting within the window.
func TestThrottleConvergence(t *testing.T) {
	tests := []struct {
		name     string
		k        float64
		capacity int
		offered  int           // calls per second
		recover  time.Duration // how long after the recovery rejections must have stopped
	}{
		// K >= 2: the rejections stop within the window (plus a bucket).
		{name: "k2_cap100_x3", k: 2, capacity: 100, offered: 300, recover: 66 * time.Second},
		{name: "k3_cap100_x3", k: 3, capacity: 100, offered: 300, recover: 66 * time.Second},
		// K < 2 recovers more slowly: the rejected calls of the new window
		// still count as requests, so the probability decays over windows.
		{name: "k1.5_cap50_x4", k: 1.5, capacity: 50, offered: 200, recover: 3 * 60 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const window = 60 * time.Second
				rng := rand.New(rand.NewPCG(1, 2))
				healthy := false
				var sec int64 = -1
				used := 0
				server := func(context.Context, any) (any, error) {
					if healthy {
						return "ok", nil
					}
					if s := time.Now().Unix(); s != sec {
						sec, used = s, 0
					}
					if used >= tt.capacity {
						return nil, errOverloaded
					}
					used++
					return "ok", nil
				}
				ep := middleware.Throttle(middleware.ThrottleConfig{
					K: tt.k, Window: window, Observer: throttleQuiet, Rand: rng.Float64,
				})(server)
				gap := time.Second / time.Duration(tt.offered)
				run := func(d time.Duration) (sent, accepted, throttled int) {
					for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(gap) {
						_, err := ep(context.Background(), nil)
						switch {
						case errors.Is(err, middleware.ErrThrottled):
							throttled++
						case err == nil:
							sent++
							accepted++
						default:
							sent++
						}
					}
					return
				}
				run(2 * window) // warm up to the steady state
				sent, accepted, _ := run(30 * time.Second)
				sentRate, accRate := float64(sent)/30, float64(accepted)/30
				want := tt.k * accRate
				if math.Abs(sentRate-want) > 0.1*want {
					t.Errorf("overloaded: sent %.1f/s, accepted %.1f/s; want sent about %.1f/s (K x accepted)", sentRate, accRate, want)
				}
				if accRate < 0.9*float64(tt.capacity) {
					t.Errorf("overloaded: accepted %.1f/s, want about the capacity %d/s", accRate, tt.capacity)
				}
				healthy = true
				run(tt.recover)
				_, _, throttled := run(10 * time.Second)
				if throttled != 0 {
					t.Errorf("recovered: %d calls throttled %v after the recovery, want 0", throttled, tt.recover)
				}
			})
		})
	}
}
