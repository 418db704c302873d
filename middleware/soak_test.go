package middleware_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
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

// soakCalls is the number of calls TestSoak makes: 50,000 in `make test`,
// 1,000,000 in `make soak` (go test ./middleware -run TestSoak -soak.calls=1000000).
var (
	soakCalls = flag.Int("soak.calls", 50_000, "calls made by TestSoak")
	soakSeed  = flag.Uint64("soak.seed", 1, "seed of TestSoak's random draws")
)

// The soak's chaos, per attempt that reaches the endpoint.
const (
	soakGoroutines  = 64
	soakTimeout     = 50 * time.Millisecond // per-attempt timeout
	soakPanic       = 0.001                 // 0.1% panics (under Recover)
	soakError       = 0.10                  // 10% errors
	soakSpike       = 0.02                  // 2% latency spikes of 5x the timeout, ctx ignored
	soakCancel      = 0.005                 // 0.5% of calls cancelled by their caller
	soakMaxAttempts = 3
	soakBulkhead    = 60
	// soakMaxAbandoned is just above the abandoned workers the spikes keep
	// running on average, so that the cap is reached now and then.
	soakMaxAbandoned = 85
	// Every soakOutageEvery of fake time, from soakOutageAt on, the endpoint
	// fails every call for soakOutage, so that the breaker opens, half-opens
	// and closes.
	soakOutageEvery = 2 * time.Second
	soakOutageAt    = time.Second
	soakOutage      = 200 * time.Millisecond
	soakThink       = 2 * time.Millisecond // a caller waits up to this between calls
)

var (
	errSoakFlaky = errors.New("soak: flaky endpoint")
	errSoakBoom  = errors.New("soak: boom")
)

// soakCall is one logical call: its caller's random source and what the
// attempt probe saw of it. Only the caller's goroutine touches it, except
// for the attempts' reached flags.
type soakCall struct {
	rng      *rand.Rand
	attempts int
	refused  int             // attempts the timeout layer turned away (ErrBulkheadFull, the abandon cap)
	leftover *[]*soakAttempt // the goroutine's list of unsure attempts
}

// soakAttempt is one attempt: its draws are made on the caller's goroutine
// (by the probe) so that a late worker never shares the caller's source.
type soakAttempt struct {
	u       float64
	latency time.Duration
	reached atomic.Bool
}

// soakObserver counts events by kind and layer.
type soakObserver struct {
	mu     sync.Mutex
	counts map[string]int
}

func (o *soakObserver) Observe(_ context.Context, e middleware.Event) {
	o.mu.Lock()
	o.counts[e.Layer+"/"+e.Kind.String()]++
	o.mu.Unlock()
}

func (o *soakObserver) count(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[key]
}

// soakTally is the accounting of the callers' outcomes.
type soakTally struct {
	calls, returned                                             int
	successes, fallbacks                                        int
	cancelled, bulkheadFull, rateLimited, circuitOpen, panicked int
	timedOut, endpointErr, tooManyAbandoned, other              int
	attempts, refused, unreachedCtx, maxAttempts                int
	attemptHist                                                 [soakMaxAttempts + 2]int
	retryErrMismatch                                            int
}

func (t *soakTally) add(o *soakTally) {
	t.calls += o.calls
	t.returned += o.returned
	t.successes += o.successes
	t.fallbacks += o.fallbacks
	t.cancelled += o.cancelled
	t.bulkheadFull += o.bulkheadFull
	t.rateLimited += o.rateLimited
	t.circuitOpen += o.circuitOpen
	t.panicked += o.panicked
	t.timedOut += o.timedOut
	t.endpointErr += o.endpointErr
	t.tooManyAbandoned += o.tooManyAbandoned
	t.other += o.other
	t.attempts += o.attempts
	t.refused += o.refused
	t.unreachedCtx += o.unreachedCtx
	t.maxAttempts = max(t.maxAttempts, o.maxAttempts)
	for i := range t.attemptHist {
		t.attemptHist[i] += o.attemptHist[i]
	}
	t.retryErrMismatch += o.retryErrMismatch
}

// classify puts one caller outcome in exactly one bucket. The order matters
// where an error matches several (a *RetryError stopped by a cancellation
// matches both its last error and context.Canceled).
func (t *soakTally) classify(resp any, err error) (other error) {
	switch {
	case err == nil && resp == "fallback":
		t.fallbacks++
	case err == nil && resp == "ok":
		t.successes++
	case err == nil:
		t.other++
		return fmt.Errorf("response %v with no error", resp)
	case errors.Is(err, context.Canceled):
		t.cancelled++
	case errors.Is(err, middleware.ErrBulkheadFull):
		t.bulkheadFull++
	case errors.Is(err, middleware.ErrRateLimited):
		t.rateLimited++
	case errors.Is(err, middleware.ErrCircuitOpen):
		t.circuitOpen++
	case errors.Is(err, middleware.ErrBulkheadFull):
		t.tooManyAbandoned++
	case isPanicError(err):
		t.panicked++
	case errors.Is(err, middleware.ErrTimeout):
		t.timedOut++
	case errors.Is(err, errSoakFlaky):
		t.endpointErr++
	default:
		t.other++
		return err
	}
	return nil
}

func isPanicError(err error) bool {
	_, ok := errors.AsType[*middleware.PanicError](err)
	return ok
}

// TestSoak runs the full stack over a chaotic endpoint in fake time and
// checks the accounting to the unit: see RELIABILITY.md.
func TestSoak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		runtime.GC()
		var m0 runtime.MemStats
		runtime.ReadMemStats(&m0)
		baseline := runtime.NumGoroutine()
		start := time.Now()

		obs := &soakObserver{counts: map[string]int{}}
		var illegal atomic.Int64
		var transitions sync.Map // "from->to" -> *atomic.Int64
		reg := registry.New(registry.Config{Listeners: []func(registry.StateChange){func(c registry.StateChange) {
			legal := (c.From == registry.StateClosed && c.To == registry.StateOpen) ||
				(c.From == registry.StateOpen && c.To == registry.StateHalfOpen) ||
				(c.From == registry.StateHalfOpen && (c.To == registry.StateOpen || c.To == registry.StateClosed))
			if !legal {
				illegal.Add(1)
			}
			n, _ := transitions.LoadOrStore(c.From.String()+"->"+c.To.String(), new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}}})

		raw := endpointtest.Count(func(ctx context.Context, req any) (any, error) {
			a := req.(*soakAttempt)
			a.reached.Store(true)
			switch {
			case a.u < soakPanic:
				panic(errSoakBoom)
			case (time.Since(start)+soakOutageEvery-soakOutageAt)%soakOutageEvery < soakOutage, a.u < soakPanic+soakError:
				time.Sleep(a.latency)
				return nil, errSoakFlaky
			case a.u < soakPanic+soakError+soakSpike:
				time.Sleep(5 * soakTimeout) // ignores ctx
				return "ok", nil
			}
			time.Sleep(a.latency)
			return "ok", nil
		})

		// probe sits between Retry and Timeout: it counts the attempts of
		// each call and makes each attempt's draws on the caller's goroutine.
		probe := func(next endpoint.Endpoint) endpoint.Endpoint {
			return func(ctx context.Context, req any) (any, error) {
				c := req.(*soakCall)
				c.attempts++
				a := &soakAttempt{u: c.rng.Float64(), latency: time.Duration(500+c.rng.IntN(1500)) * time.Microsecond}
				resp, err := next(ctx, a)
				switch {
				case errors.Is(err, middleware.ErrBulkheadFull):
					c.refused++
				case err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
					*c.leftover = append(*c.leftover, a)
				}
				return resp, err
			}
		}

		ep := endpoint.Chain(
			middleware.FallbackWith(middleware.FallbackConfig{Value: "fallback", FallbackOn: []error{middleware.ErrCircuitOpen}, Observer: obs}),
			middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: soakBulkhead, Observer: obs}),
			middleware.RateLimit(middleware.RateLimitConfig{Rate: 100_000, Burst: 128, Observer: obs}),
			// The timeout layer's abandon-cap rejection (ErrBulkheadFull) is a rejection, not a
			// fault of the endpoint: the breaker counts it neither way
			// (TestCircuitBreakerIgnoresInnerRejections).
			middleware.CircuitBreaker("soak", middleware.BreakerConfig{Registry: reg, ResetTimeout: 250 * time.Millisecond, Observer: obs}),
			middleware.Retry(middleware.RetryConfig{MaxAttempts: soakMaxAttempts, Delay: 5 * time.Millisecond, DisableJitter: true, Observer: obs}),
			probe,
			middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: soakTimeout, Abandon: true, MaxAbandoned: soakMaxAbandoned, Observer: obs}),
			recoverWith("", obs),
		)(raw.Endpoint())

		n := *soakCalls
		tallies := make([]soakTally, soakGoroutines)
		leftovers := make([][]*soakAttempt, soakGoroutines)
		var wg sync.WaitGroup
		for g := range soakGoroutines {
			calls := n / soakGoroutines
			if g < n%soakGoroutines {
				calls++
			}
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(*soakSeed, uint64(g)))
				tally := &tallies[g]
				for range calls {
					time.Sleep(time.Duration(rng.Int64N(int64(soakThink))))
					tally.calls++
					ctx, cancel := context.WithCancel(context.Background())
					var stop func() bool
					if rng.Float64() < soakCancel {
						stop = time.AfterFunc(time.Duration(rng.Int64N(int64(10*time.Millisecond))), cancel).Stop
					}
					c := &soakCall{rng: rng, leftover: &leftovers[g]}
					resp, err := ep(ctx, c)
					tally.returned++
					if stop != nil {
						stop()
					}
					cancel()
					if e := tally.classify(resp, err); e != nil {
						t.Errorf("call outcome not accounted for: %v", e)
					}
					tally.attempts += c.attempts
					tally.refused += c.refused
					tally.maxAttempts = max(tally.maxAttempts, c.attempts)
					tally.attemptHist[min(c.attempts, len(tally.attemptHist)-1)]++
					if re, ok := errors.AsType[*middleware.RetryError](err); ok && re.Attempts != c.attempts {
						tally.retryErrMismatch++
					}
				}
			})
		}
		wg.Wait()
		// Let the abandoned workers finish (they ignore ctx and sleep at
		// most 5x the timeout) and the breaker's timer fire.
		time.Sleep(10 * soakTimeout)
		synctest.Wait()
		elapsed := time.Since(start)

		var total soakTally
		for i := range tallies {
			total.add(&tallies[i])
		}
		for _, list := range leftovers {
			for _, a := range list {
				if !a.reached.Load() {
					total.unreachedCtx++
				}
			}
		}
		leftovers = nil

		runtime.GC()
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		goroutines := runtime.NumGoroutine()

		// The accounting table.
		var b strings.Builder
		row := func(name string, v any) { fmt.Fprintf(&b, "  %-34s %12v\n", name, v) }
		row("calls", total.calls)
		row("returned", total.returned)
		row("  successes", total.successes)
		row("  fallbacks (circuit open)", total.fallbacks)
		row("  endpoint errors (*RetryError)", total.endpointErr)
		row("  timeouts (ErrTimeout)", total.timedOut)
		row("  panics (*PanicError)", total.panicked)
		row("  cancelled (context.Canceled)", total.cancelled)
		row("  bulkhead full", total.bulkheadFull)
		row("  rate limited", total.rateLimited)
		row("  too many abandoned", total.tooManyAbandoned)
		row("  circuit open (unhandled)", total.circuitOpen)
		row("  other", total.other)
		row("attempts (retry layer)", total.attempts)
		row("  refused by timeout layer", total.refused)
		row("  not started, caller gone", total.unreachedCtx)
		row("endpoint calls", raw.Calls())
		row("  endpoint errors", raw.Errors())
		row("  endpoint panics", raw.Panics())
		row("  most in flight at once", raw.MaxInFlight())
		row("max attempts of one call", total.maxAttempts)
		row("calls by attempts 0/1/2/3", fmt.Sprint(total.attemptHist[:soakMaxAttempts+1]))
		transitions.Range(func(k, v any) bool {
			row("breaker "+k.(string), v.(*atomic.Int64).Load())
			return true
		})
		row("events retry", obs.count("retry/retry"))
		row("events timeout", obs.count("timeout/timeout"))
		row("fake time", elapsed)
		row("heap start / end (KiB)", fmt.Sprintf("%d / %d", m0.HeapAlloc>>10, m1.HeapAlloc>>10))
		row("goroutines start / end", fmt.Sprintf("%d / %d", baseline, goroutines))
		t.Logf("soak: %d calls from %d goroutines, seed %d\n%s", n, soakGoroutines, *soakSeed, b.String())

		// The pass conditions.
		sum := total.successes + total.fallbacks + total.endpointErr + total.timedOut + total.panicked +
			total.cancelled + total.bulkheadFull + total.rateLimited + total.tooManyAbandoned + total.circuitOpen
		checks := []struct {
			name      string
			got, want int
		}{
			{"calls made", total.calls, n},
			{"calls returned", total.returned, n},
			{"outcomes accounted for", sum, n},
			{"unclassified outcomes", total.other, 0},
			{"endpoint calls", raw.Calls(), total.attempts - total.refused - total.unreachedCtx},
			{"calls past MaxAttempts", total.attemptHist[soakMaxAttempts+1], 0},
			{"*RetryError.Attempts differing from attempts made", total.retryErrMismatch, 0},
			{"fallbacks served = fallback events", total.fallbacks, obs.count("fallback/fallback")},
			{"endpoint panics = recovered panics", raw.Panics(), obs.count("recover/panic")},
			{"illegal breaker transitions", int(illegal.Load()), 0},
			{"goroutines", goroutines, baseline},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
			}
		}
		// The bulkhead bounds the calls through it, not the abandoned
		// workers behind it: the endpoint runs at most MaxConcurrent calls
		// whose caller waits, plus the abandoned ones (the cap, plus the
		// calls that passed the cap check together).
		if got, limit := raw.MaxInFlight(), 2*soakBulkhead+soakMaxAbandoned; got > limit {
			t.Errorf("endpoint calls in flight at once = %d, want at most %d", got, limit)
		}
		if total.maxAttempts > soakMaxAttempts {
			t.Errorf("max attempts of one call = %d, want at most %d", total.maxAttempts, soakMaxAttempts)
		}
		const heapSlack = 16 << 20
		if grow := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grow > heapSlack {
			t.Errorf("heap grew by %d bytes, want at most %d", grow, heapSlack)
		}
		// The chaos must have happened, or the soak proves nothing.
		for _, c := range []struct {
			name string
			n    int
		}{
			{"successes", total.successes}, {"fallbacks", total.fallbacks}, {"endpoint errors", total.endpointErr},
			{"timeouts", total.timedOut}, {"endpoint panics", raw.Panics()}, {"cancellations", total.cancelled},
			{"retries", obs.count("retry/retry")},
		} {
			if c.n == 0 {
				t.Errorf("%s = 0: the soak did not exercise it", c.name)
			}
		}
	})
}
