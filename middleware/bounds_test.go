package middleware_test

import (
	"context"
	"errors"
	"flag"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// timeoutBoundCalls is the number of calls TestTimeoutAbandonLatencyBound
// makes: 2,000 in `make test`, 10,000 in `make soak`.
var timeoutBoundCalls = flag.Int("timeout.calls", 2_000, "calls made by TestTimeoutAbandonLatencyBound")

// timeoutStrict makes TestTimeoutAbandonLatencyBound hold the absolute
// bound whatever the machine's own latency (`make soak`).
var timeoutStrict = flag.Bool("timeout.strict", false, "TestTimeoutAbandonLatencyBound: no allowance for a loaded machine")

// TestTimeoutAbandonLatencyBound measures, in real time, how late an
// abandon-mode timeout returns from an endpoint that ignores its context and
// sleeps 10x the timeout: p99 must be at most the timeout + 2ms. The
// abandoned workers still running never exceed the cap (plus the calls
// already past the cap check), and once they end the goroutines are back to
// the baseline.
//
// Latency in real time depends on the machine. Each caller interleaves its
// calls with a control, time.Sleep(timeout) with no middleware, measured
// under the same load. A run passes when its p99 is within the timeout + 2ms,
// or (unless -timeout.strict) within 2ms of the control's p99: on a loaded
// machine (make test runs packages in parallel, with -race, on shared CI
// cores) the layer must add at most 2ms to what the machine's own timers
// give. The test fails when 3 runs in a row miss.
func TestTimeoutAbandonLatencyBound(t *testing.T) {
	const limit = time.Millisecond + 2*time.Millisecond
	for run := 1; run <= 3; run++ {
		p99, control := timeoutLatencyRun(t, run)
		if p99 <= limit || (!*timeoutStrict && p99 <= control+2*time.Millisecond) {
			return
		}
		t.Logf("run %d missed: p99 %v, control p99 %v, bound %v", run, p99, control, limit)
	}
	t.Errorf("p99 latency over the bound in 3 runs out of 3")
}

// timeoutLatencyRun is one run of TestTimeoutAbandonLatencyBound; it returns
// the p99 latency of the layer and of the control, and fails t for every
// other problem.
func timeoutLatencyRun(t *testing.T, run int) (p99, control time.Duration) {
	const (
		timeout = time.Millisecond
		sleep   = 10 * timeout
		callers = 4
		maxAb   = 15
	)
	baseline := runtime.NumGoroutine()
	counter := endpointtest.Count(func(context.Context, any) (any, error) {
		time.Sleep(sleep) // ignores ctx
		return "late", nil
	})
	var events recorder
	ep := middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: timeout, Abandon: true, MaxAbandoned: maxAb, Observer: &events})(counter.Endpoint())

	n := *timeoutBoundCalls
	latencies := make([][]time.Duration, callers)
	controls := make([][]time.Duration, callers)
	rejected := make([]int, callers)
	late := make([]int, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for range n / callers {
				start := time.Now()
				time.Sleep(timeout)
				controls[c] = append(controls[c], time.Since(start))
				start = time.Now()
				_, err := ep(context.Background(), nil)
				lat := time.Since(start)
				switch {
				case err == nil:
					// The worker finished first: the caller's goroutine ran
					// late (a loaded machine), and a success is returned as
					// it is. Its latency counts.
					late[c]++
				case errors.Is(err, middleware.ErrBulkheadFull):
					rejected[c]++
					time.Sleep(timeout) // back off, as a caller would
					continue            // turned away at once: not a timed-out call
				case !errors.Is(err, middleware.ErrTimeout):
					t.Errorf("err = %v, want ErrTimeout or ErrBulkheadFull (the abandon cap)", err)
				}
				latencies[c] = append(latencies[c], lat)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(latencies...)
	slices.Sort(all)
	var rej, lateOK int
	for c := range callers {
		rej += rejected[c]
		lateOK += late[c]
	}
	if len(all) == 0 {
		t.Fatalf("no call timed out (%d rejected)", rej)
	}
	p := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	t.Logf("run %d: timeout %v, endpoint sleeps %v ignoring ctx, %d callers, cap %d: %d calls timed out, %d returned a late success, %d rejected at the cap; latency p50 %v, p99 %v, max %v; endpoint max in flight %d",
		run, timeout, sleep, callers, maxAb, len(all)-lateOK, lateOK, rej, p(0.5), p(0.99), all[len(all)-1], counter.MaxInFlight())
	p99 = p(0.99)
	ctl := slices.Concat(controls...)
	slices.Sort(ctl)
	control = ctl[min(len(ctl)-1, int(0.99*float64(len(ctl))))]
	t.Logf("run %d: control (time.Sleep(%v), interleaved) p50 %v, p99 %v", run, timeout, ctl[len(ctl)/2], control)
	// The cap is checked as a call starts: at most cap abandoned workers
	// plus one running worker per caller.
	if got, limit := counter.MaxInFlight(), maxAb+callers; got > limit {
		t.Errorf("endpoint max in flight = %d, want at most %d (cap %d + %d callers)", got, limit, maxAb, callers)
	}
	if got, want := len(events.Events()), n/callers*callers-lateOK; got != want {
		t.Errorf("events = %d, want %d (one per timeout or rejection)", got, want)
	}
	// Once the abandoned workers end, the goroutines are back to the baseline.
	deadline := time.Now().Add(10 * time.Second)
	for (runtime.NumGoroutine() > baseline || counter.InFlight() > 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > baseline {
		t.Errorf("goroutines = %d after the workers ended, want %d", got, baseline)
	}
	if got := counter.InFlight(); got != 0 {
		t.Errorf("endpoint calls still running = %d, want 0", got)
	}
	return p99, control
}

// TestCompositionDeadline checks that with a caller deadline of 1s, a
// per-attempt timeout of 300ms and 5 attempts, every call returns within the
// caller's deadline (exactly, in fake time), whatever the endpoint does, and
// that the error names the deadline. An endpoint that ignores its context is
// bounded only in abandon mode: the cooperative timeout waits for it by
// design (see TimeoutWith).
func TestCompositionDeadline(t *testing.T) {
	const (
		deadline = time.Second
		perTry   = 300 * time.Millisecond
	)
	behaviours := []struct {
		name          string
		ep            endpoint.Endpoint
		ignoresCtx    bool
		alwaysSucceed bool
	}{
		{name: "hangs until ctx ends", ep: func(ctx context.Context, _ any) (any, error) { <-ctx.Done(); return nil, ctx.Err() }},
		{name: "fails at once", ep: func(context.Context, any) (any, error) { return nil, errConn }},
		{name: "fails after 299ms", ep: func(ctx context.Context, _ any) (any, error) {
			select {
			case <-time.After(perTry - time.Millisecond):
				return nil, errConn
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}},
		{name: "ignores ctx, sleeps 10s", ignoresCtx: true, ep: func(context.Context, any) (any, error) { time.Sleep(10 * time.Second); return "late", nil }},
		{name: "ignores ctx, fails after 400ms", ignoresCtx: true, ep: func(context.Context, any) (any, error) { time.Sleep(400 * time.Millisecond); return nil, errConn }},
		{name: "panics", ep: func(context.Context, any) (any, error) { panic(errConn) }},
	}
	retries := []struct {
		name string
		cfg  middleware.RetryConfig
	}{
		{name: "no delay", cfg: middleware.RetryConfig{MaxAttempts: 5, NoDelay: true}},
		{name: "100ms doubling", cfg: middleware.RetryConfig{MaxAttempts: 5, Delay: 100 * time.Millisecond, DisableJitter: true}},
		{name: "default jittered 1s", cfg: middleware.RetryConfig{MaxAttempts: 5}},
		{name: "250ms constant", cfg: middleware.RetryConfig{MaxAttempts: 5, Delay: 250 * time.Millisecond, Backoff: 1, DisableJitter: true}},
	}
	for _, b := range behaviours {
		for _, r := range retries {
			for _, abandon := range []bool{false, true} {
				if b.ignoresCtx && !abandon {
					continue // cooperative mode waits for the endpoint, by design
				}
				mode := "cooperative"
				if abandon {
					mode = "abandon"
				}
				t.Run(b.name+"/"+r.name+"/"+mode, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						rc := r.cfg
						rc.Observer = quiet
						mw, err := middleware.Stack{
							CircuitBreaker: middleware.BreakerConfig{Name: "deadline", Registry: registry.New(registry.Config{}), FailureThreshold: 100},
							Retry:          rc,
							Timeout:        middleware.TimeoutConfig{Timeout: perTry, Abandon: abandon},
							Observer:       quiet,
						}.Build()
						if err != nil {
							t.Fatal(err)
						}
						ep := endpoint.Chain(mw, recoverWith("", quiet))(b.ep)
						ctx, cancel := context.WithTimeout(context.Background(), deadline)
						defer cancel()
						start := time.Now()
						_, err = ep(ctx, nil)
						elapsed := time.Since(start)
						if elapsed > deadline {
							t.Errorf("call returned after %v, want at most %v", elapsed, deadline)
						}
						if err == nil {
							t.Errorf("err = nil, want an error")
						}
						if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
							t.Errorf("err = %v after the caller's deadline, want it to match context.DeadlineExceeded", err)
						}
						cancel()
						time.Sleep(10 * time.Second) // let abandoned workers end
					})
				})
			}
		}
	}
}
