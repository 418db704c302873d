package outcomes_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/bench/outcomes"
)

// serve makes one call to a fresh dependency with fault f active from the
// start, and returns its error and how long it took in fake time.
func serve(t *testing.T, f outcomes.Fault, id int, deadline time.Duration) (time.Duration, error) {
	t.Helper()
	d := outcomes.NewDependency(outcomes.DependencyConfig{}, f, 1, time.Now())
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := d.Call(ctx, &outcomes.Request{ID: id})
	return time.Since(start), err
}

func TestDependencyFaults(t *testing.T) {
	window := func(kind string, factor, share float64) outcomes.Fault {
		var f outcomes.Fault
		if err := unmarshal(`{"kind": "`+kind+`", "start": "0s", "end": "1h"}`, &f); err != nil {
			t.Fatal(err)
		}
		f.Factor, f.Share = factor, share
		return f
	}
	healthy := window(outcomes.FaultNone, 0, 0)
	tests := []struct {
		name    string
		fault   outcomes.Fault
		want    func(base time.Duration) time.Duration // elapsed, from the healthy call's
		wantErr error
	}{
		{"fail", window(outcomes.FaultFail, 0, 0), func(time.Duration) time.Duration { return 0 }, outcomes.ErrUnavailable},
		{"hang", window(outcomes.FaultHang, 0, 0), func(time.Duration) time.Duration { return time.Second }, context.DeadlineExceeded},
		{"slow x10", window(outcomes.FaultSlow, 10, 0), func(b time.Duration) time.Duration { return 10 * b }, nil},
		{"fail share 1", window(outcomes.FaultFailShare, 0, 1), func(time.Duration) time.Duration { return 0 }, outcomes.ErrUnavailable},
		{"fail share 0", window(outcomes.FaultFailShare, 0, 0), func(b time.Duration) time.Duration { return b }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The same (call, attempt) draws the same service time.
				base, err := serve(t, healthy, 7, time.Minute)
				if err != nil || base <= 0 {
					t.Fatalf("healthy call: %v after %v", err, base)
				}
				got, err := serve(t, tt.fault, 7, time.Second)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if want := tt.want(base); got != want {
					t.Errorf("elapsed = %v, want %v", got, want)
				}
			})
		})
	}
}

// TestDependencyServiceTime checks the log-normal's median and p99 on a
// dependency with one worker, one call at a time.
func TestDependencyServiceTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var none outcomes.Fault
		none.Kind = outcomes.FaultNone
		d := outcomes.NewDependency(outcomes.DependencyConfig{Workers: 1}, none, 3, time.Now())
		defer d.Close()
		var lats []time.Duration
		for i := range 20_000 {
			start := time.Now()
			if _, err := d.Call(context.Background(), &outcomes.Request{ID: i}); err != nil {
				t.Fatal(err)
			}
			lats = append(lats, time.Since(start))
		}
		slices.Sort(lats)
		p50, p99 := lats[len(lats)/2], lats[len(lats)*99/100]
		if p50 < 9500*time.Microsecond || p50 > 10500*time.Microsecond {
			t.Errorf("median = %v, want 10ms ± 5%%", p50)
		}
		if p99 < 45*time.Millisecond || p99 > 55*time.Millisecond {
			t.Errorf("p99 = %v, want 50ms ± 10%%", p99)
		}
	})
}

// TestDependencyQueue checks that calls beyond the workers wait their turn,
// first come first served.
func TestDependencyQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var none outcomes.Fault
		none.Kind = outcomes.FaultNone
		d := outcomes.NewDependency(outcomes.DependencyConfig{Workers: 1}, none, 1, time.Now())
		defer d.Close()
		t0 := time.Now()
		var ends [3]time.Duration
		var wg sync.WaitGroup
		for i := range ends {
			wg.Go(func() {
				if _, err := d.Call(context.Background(), &outcomes.Request{ID: i}); err != nil {
					t.Error(err)
				}
				ends[i] = time.Since(t0)
			})
			synctest.Wait() // call i is queued before call i+1 arrives
		}
		wg.Wait()
		if !slices.IsSorted(ends[:]) || ends[0] == ends[1] || ends[1] == ends[2] {
			t.Errorf("ends = %v, want one after another", ends)
		}
		if got, want := d.Peak(), 3; got != want {
			t.Errorf("peak = %d, want %d", got, want)
		}
	})
}
