package bench

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/afex/hystrix-go/hystrix"
	retrygo "github.com/avast/retry-go/v4"
	backoff "github.com/cenkalti/backoff/v5"
	eapache "github.com/eapache/go-resiliency/breaker"
	"github.com/eapache/go-resiliency/retrier"
	"github.com/failsafe-go/failsafe-go"
	fsadaptivelimiter "github.com/failsafe-go/failsafe-go/adaptivelimiter"
	fsadaptivethrottler "github.com/failsafe-go/failsafe-go/adaptivethrottler"
	fsbudget "github.com/failsafe-go/failsafe-go/budget"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"
	fscb "github.com/failsafe-go/failsafe-go/circuitbreaker"
	fsfallback "github.com/failsafe-go/failsafe-go/fallback"
	fshedge "github.com/failsafe-go/failsafe-go/hedgepolicy"
	fsratelimiter "github.com/failsafe-go/failsafe-go/ratelimiter"
	fsretry "github.com/failsafe-go/failsafe-go/retrypolicy"
	fstimeout "github.com/failsafe-go/failsafe-go/timeout"
	kitcb "github.com/go-kit/kit/circuitbreaker"
	kitratelimit "github.com/go-kit/kit/ratelimit"
	gobreakerv1 "github.com/sony/gobreaker"
	gobreakerv2 "github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/kitmetrics"
	"github.com/resiliencekit/resilience/registry"
)

// The suite: BenchmarkSuite/row=<row>/impl=<contender>/mode=<serial|parallel>.
//
// Every contender is built outside the timed loop, as a service builds its
// endpoints once, and checked once (the expected outcome) before timing. The
// names are benchfmt keys, so benchstat can lay the run out by row:
//
//	go tool benchstat -table /row -row /impl -col /mode results.txt
//
// cmd/results turns the same output into RESULTS.md.

var (
	errDown        = errors.New("down")
	errLimited     = errors.New("rate limited")
	errFull        = errors.New("bulkhead full")
	quiet          = middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	fallbackV  any = []float32{}
)

// nopMiddleware is the floor's layer: a go-kit middleware that only calls
// next.
func nopMiddleware(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) { return next(ctx, req) }
}

func nopChain(n int) endpoint.Middleware {
	mws := make([]endpoint.Middleware, n-1)
	for i := range mws {
		mws[i] = nopMiddleware
	}
	return endpoint.Chain(nopMiddleware, mws...)
}

// failing always fails.
func failing(context.Context, any) (any, error) { return nil, errDown }

// fail2 fails twice, then succeeds, and again: attempts 3k-2 and 3k-1 fail,
// 3k succeeds. The count lives in the request (one *int per goroutine), so
// parallel goroutines each see their own sequence.
func fail2(_ context.Context, req any) (any, error) {
	n := req.(*int)
	if *n++; *n%3 != 0 {
		return nil, errDown
	}
	return struct{}{}, nil
}

// metricsObserver is the toolkit's Prometheus metrics observer
// (observe/kitmetrics), on a registry of its own.
func metricsObserver() middleware.Observer {
	o, err := kitmetrics.NewPrometheus("bench", prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	return o
}

// outcome is what a contender's call must return in a row, checked once
// before timing.
type outcome int

const (
	wantOK       outcome = iota // nil error
	wantRejected                // an error, and not the endpoint's
)

type contender struct {
	name  string
	build func() endpoint.Endpoint
}

type row struct {
	name  string
	want  outcome
	impls []contender
}

// ---- the peers as go-kit middlewares ----

func eapacheBreaker(b *eapache.Breaker) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (resp any, err error) {
			err = b.Run(func() error {
				var e error
				resp, e = next(ctx, req)
				return e
			})
			return resp, err
		}
	}
}

func eapacheRetrier(r *retrier.Retrier) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (resp any, err error) {
			err = r.RunCtx(ctx, func(ctx context.Context) error {
				var e error
				resp, e = next(ctx, req)
				return e
			})
			return resp, err
		}
	}
}

func gobreakerV2(cb *gobreakerv2.CircuitBreaker[any]) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			return cb.Execute(func() (any, error) { return next(ctx, req) })
		}
	}
}

// failsafeMW runs next through a failsafe-go executor. Policies that need
// the context (timeout) get it with WithContext, which copies the executor
// per call; the others reuse the executor as it is, the cheapest way to use
// them.
func failsafeMW(withCtx bool, policies ...failsafe.Policy[any]) endpoint.Middleware {
	exec := failsafe.With(policies...)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		if withCtx {
			return func(ctx context.Context, req any) (any, error) {
				return exec.WithContext(ctx).GetWithExecution(func(e failsafe.Execution[any]) (any, error) {
					return next(e.Context(), req)
				})
			}
		}
		return func(ctx context.Context, req any) (any, error) {
			return exec.Get(func() (any, error) { return next(ctx, req) })
		}
	}
}

// avastRetry and backoffRetry take their options built once, without the
// context (the benchmark's is Background): their cheapest use.
func avastRetry(opts ...retrygo.Option) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			return retrygo.DoWithData(func() (any, error) { return next(ctx, req) }, opts...)
		}
	}
}

func backoffRetry(opts ...backoff.RetryOption) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			return backoff.Retry(ctx, func() (any, error) { return next(ctx, req) }, opts...)
		}
	}
}

func rateAllow(lim *rate.Limiter) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			if !lim.Allow() {
				return nil, errLimited
			}
			return next(ctx, req)
		}
	}
}

// chanSemaphore is the hand-written bulkhead: a buffered channel.
func chanSemaphore(n int) endpoint.Middleware {
	slots := make(chan struct{}, n)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			select {
			case slots <- struct{}{}:
			default:
				return nil, errFull
			}
			defer func() { <-slots }()
			return next(ctx, req)
		}
	}
}

// bareTimeout is the floor of a cooperative timeout: context.WithTimeoutCause
// and its cancel, nothing else.
func bareTimeout(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		ctx2, cancel := context.WithTimeoutCause(ctx, time.Second, middleware.ErrTimeout)
		resp, err := next(ctx2, req)
		cancel()
		return resp, err
	}
}

var hystrixSeq atomic.Int64

// hystrixCommand configures a fresh hystrix command that opens on the first
// failure and stays open an hour, and returns its name.
func hystrixCommand() string {
	name := fmt.Sprintf("bench-%d", hystrixSeq.Add(1))
	hystrix.ConfigureCommand(name, hystrix.CommandConfig{
		Timeout:                10_000,
		MaxConcurrentRequests:  10_000,
		RequestVolumeThreshold: 1,
		ErrorPercentThreshold:  1,
		SleepWindow:            3_600_000,
	})
	return name
}

// hystrixOpen fails calls of e until hystrix's circuit opens (its metrics
// are updated asynchronously).
func hystrixOpen(name string, e endpoint.Endpoint) {
	for range 5000 {
		_, _ = e(context.Background(), nil)
		if c, _, _ := hystrix.GetCircuit(name); c.IsOpen() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	panic("hystrix circuit did not open")
}

// ---- our contenders ----

func ourBreaker(reg *registry.Registry, name string) endpoint.Middleware {
	return middleware.CircuitBreaker(name, middleware.BreakerConfig{Registry: reg, Observer: quiet, FailureThreshold: 1})
}

func trip(reg *registry.Registry, name string) {
	b, ok := reg.Get(name)
	if !ok {
		panic("no breaker " + name)
	}
	b.Trip()
}

// guideHand is the guide's stack by hand: FallbackValue, CircuitBreaker,
// Retry (and a per-attempt Timeout when timeout is set).
func guideHand(reg *registry.Registry, obs middleware.Observer, timeout bool) endpoint.Middleware {
	mws := []endpoint.Middleware{
		middleware.FallbackWith(middleware.FallbackConfig{Value: fallbackV, Observer: obs}),
		middleware.CircuitBreaker("embedding_api", middleware.BreakerConfig{Registry: reg, Observer: obs, FailureThreshold: 5, ResetTimeout: 2 * time.Minute}),
		middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second, RetryOn: []error{errDown, middleware.ErrTimeout}, Observer: obs}),
	}
	if timeout {
		mws = append(mws, middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: 10 * time.Second, Observer: obs}))
	}
	return endpoint.Chain(mws[0], mws[1:]...)
}

// guideStack is the same stack declared with middleware.Stack.
func guideStack(reg *registry.Registry, obs middleware.Observer, timeout bool) endpoint.Middleware {
	s := middleware.Stack{
		Fallback:       middleware.FallbackConfig{Value: fallbackV},
		CircuitBreaker: middleware.BreakerConfig{Name: "embedding_api", Registry: reg, FailureThreshold: 5, ResetTimeout: 2 * time.Minute},
		Retry:          middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second, RetryOn: []error{errDown, middleware.ErrTimeout}},
		Observer:       obs,
	}
	if timeout {
		s.Timeout = middleware.TimeoutConfig{Timeout: 10 * time.Second}
	}
	mw, err := s.Build()
	if err != nil {
		panic(err)
	}
	return mw
}

func failsafeGuide(open, timeout bool) endpoint.Middleware {
	cb := fscb.NewBuilder[any]().WithFailureThreshold(5).WithDelay(2 * time.Minute).Build()
	if open {
		cb.Open()
	}
	policies := []failsafe.Policy[any]{
		fsfallback.NewWithResult[any](fallbackV),
		cb,
		fsretry.NewBuilder[any]().WithMaxAttempts(3).WithDelay(time.Second).Build(),
	}
	if timeout {
		policies = append(policies, fstimeout.New[any](10*time.Second))
	}
	return failsafeMW(timeout, policies...)
}

// breakerContenders builds the same breaker (opens on the first failure,
// stays open a minute) around next, open or closed.
func breakerContenders(open bool) []contender {
	next := endpoint.Endpoint(endpoint.Nop)
	if open {
		next = failing
	}
	return []contender{
		{"resilience", func() endpoint.Endpoint {
			reg := registry.New(registry.Config{})
			e := ourBreaker(reg, "bench")(next)
			if open {
				trip(reg, "bench")
			}
			return e
		}},
		{"eapache", func() endpoint.Endpoint {
			b := eapache.New(1, 1, time.Minute)
			if open {
				_ = b.Run(func() error { return errDown })
			}
			return eapacheBreaker(b)(next)
		}},
		{"gobreaker_v2", func() endpoint.Endpoint {
			cb := gobreakerv2.NewCircuitBreaker[any](gobreakerv2.Settings{Name: "bench", Timeout: time.Minute,
				ReadyToTrip: func(c gobreakerv2.Counts) bool { return c.ConsecutiveFailures >= 1 }})
			if open {
				_, _ = cb.Execute(func() (any, error) { return nil, errDown })
			}
			return gobreakerV2(cb)(next)
		}},
		{"gokit_gobreaker_v1", func() endpoint.Endpoint {
			cb := gobreakerv1.NewCircuitBreaker(gobreakerv1.Settings{Name: "bench", Timeout: time.Minute,
				ReadyToTrip: func(c gobreakerv1.Counts) bool { return c.ConsecutiveFailures >= 1 }})
			if open {
				_, _ = cb.Execute(func() (any, error) { return nil, errDown })
			}
			return kitcb.Gobreaker(cb)(next)
		}},
		{"failsafe", func() endpoint.Endpoint {
			cb := fscb.NewBuilder[any]().WithFailureThreshold(1).WithDelay(time.Minute).Build()
			if open {
				cb.Open()
			}
			return failsafeMW(false, cb)(next)
		}},
		{"gokit_hystrix", func() endpoint.Endpoint {
			name := hystrixCommand()
			e := kitcb.Hystrix(name)(next)
			if open {
				hystrixOpen(name, e)
			}
			return e
		}},
	}
}

// retryContenders: three attempts in all, no wait between them.
func retryContenders(next endpoint.Endpoint) []contender {
	return []contender{
		{"resilience", func() endpoint.Endpoint {
			return middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Observer: quiet})(next)
		}},
		{"eapache_retrier", func() endpoint.Endpoint {
			return eapacheRetrier(retrier.New(retrier.ConstantBackoff(2, 0), nil))(next)
		}},
		{"failsafe", func() endpoint.Endpoint {
			return failsafeMW(false, fsretry.NewBuilder[any]().WithMaxAttempts(3).Build())(next)
		}},
		{"avast_retry_go", func() endpoint.Endpoint {
			return avastRetry(retrygo.Attempts(3), retrygo.Delay(0), retrygo.DelayType(retrygo.FixedDelay), retrygo.LastErrorOnly(true))(next)
		}},
		{"cenkalti_backoff_v5", func() endpoint.Endpoint {
			return backoffRetry(backoff.WithBackOff(&backoff.ZeroBackOff{}), backoff.WithMaxTries(3))(next)
		}},
	}
}

// stackContenders: the guide's stack, ours in every build and failsafe-go's
// failsafe.With(fallback, breaker, retry[, timeout]); open trips the breaker,
// so the fallback is served.
func stackContenders(open bool) []contender {
	next := endpoint.Endpoint(endpoint.Nop)
	if open {
		next = failing
	}
	ours := func(mw func(*registry.Registry, middleware.Observer, bool) endpoint.Middleware, obs middleware.Observer, timeout bool) func() endpoint.Endpoint {
		return func() endpoint.Endpoint {
			reg := registry.New(registry.Config{})
			e := mw(reg, obs, timeout)(next)
			if open {
				trip(reg, "embedding_api")
			}
			return e
		}
	}
	return []contender{
		{"hand", ours(guideHand, quiet, false)},
		{"stack", ours(guideStack, quiet, false)},
		{"hand+timeout", ours(guideHand, quiet, true)},
		{"stack+timeout", ours(guideStack, quiet, true)},
		{"hand+observer", ours(guideHand, metricsObserver(), false)},
		{"stack+observer", ours(guideStack, metricsObserver(), false)},
		{"failsafe", func() endpoint.Endpoint { return failsafeGuide(open, false)(next) }},
		{"failsafe+timeout", func() endpoint.Endpoint { return failsafeGuide(open, true)(next) }},
	}
}

// depthContenders: chains of 1, 2, 4 and 8 layers of one kind.
func depthContenders() []contender {
	var cs []contender
	kinds := []struct {
		name  string
		layer func(reg *registry.Registry, i int) endpoint.Middleware
	}{
		{"nop", func(*registry.Registry, int) endpoint.Middleware { return nopMiddleware }},
		{"retry", func(*registry.Registry, int) endpoint.Middleware {
			return middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Observer: quiet})
		}},
		{"breaker", func(reg *registry.Registry, i int) endpoint.Middleware {
			return ourBreaker(reg, fmt.Sprintf("b%d", i))
		}},
		{"guide", func(reg *registry.Registry, i int) endpoint.Middleware {
			mw, err := middleware.Stack{
				Fallback:       middleware.FallbackConfig{Value: fallbackV},
				CircuitBreaker: middleware.BreakerConfig{Name: fmt.Sprintf("g%d", i), Registry: reg},
				Retry:          middleware.RetryConfig{NoDelay: true},
				Observer:       quiet,
			}.Build()
			if err != nil {
				panic(err)
			}
			return mw
		}},
	}
	for _, k := range kinds {
		for _, n := range []int{1, 2, 4, 8} {
			cs = append(cs, contender{fmt.Sprintf("%s_x%d", k.name, n), func() endpoint.Endpoint {
				reg := registry.New(registry.Config{})
				e := endpoint.Endpoint(endpoint.Nop)
				for i := range n {
					e = k.layer(reg, i)(e)
				}
				return e
			}})
		}
	}
	return cs
}

// floorContenders are the floor: every row but depth runs the 1-nop Chain
// (and the stack rows the 3-nop Chain) next to its contenders, so that each
// ratio compares benchmarks run moments apart.
func floorContenders(n ...int) []contender {
	var cs []contender
	for _, n := range n {
		cs = append(cs, contender{fmt.Sprintf("chain%dnop", n), func() endpoint.Endpoint { return nopChain(n)(endpoint.Nop) }})
	}
	return cs
}

func rows() []row {
	rs := suiteRows()
	for i, r := range rs {
		switch r.name {
		case "floor", "depth":
		case "stack_success", "stack_open":
			rs[i].impls = append(floorContenders(1, 3), r.impls...)
		default:
			rs[i].impls = append(floorContenders(1), r.impls...)
		}
	}
	return rs
}

func suiteRows() []row {
	return []row{
		{name: "floor", impls: append([]contender{
			{"direct", func() endpoint.Endpoint { return endpoint.Nop }},
		}, floorContenders(1, 3)...)},
		{name: "breaker_closed", impls: breakerContenders(false)},
		{name: "breaker_open", want: wantRejected, impls: breakerContenders(true)},
		{name: "retry_first_try", impls: retryContenders(endpoint.Nop)},
		{name: "retry_2_failures", impls: retryContenders(fail2)},
		{name: "timeout_success", impls: []contender{
			{"bare_WithTimeoutCause", func() endpoint.Endpoint { return bareTimeout(endpoint.Nop) }},
			{"resilience", func() endpoint.Endpoint {
				return middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: time.Second, Observer: quiet})(endpoint.Nop)
			}},
			{"failsafe", func() endpoint.Endpoint {
				return failsafeMW(true, fstimeout.New[any](time.Second))(endpoint.Nop)
			}},
		}},
		{name: "ratelimit_allow", impls: []contender{
			{"resilience", func() endpoint.Endpoint {
				return middleware.RateLimit(middleware.RateLimitConfig{Rate: 1e12, Burst: 1 << 20, Observer: quiet})(endpoint.Nop)
			}},
			{"x_time_rate", func() endpoint.Endpoint { return rateAllow(rate.NewLimiter(1e12, 1<<20))(endpoint.Nop) }},
			{"gokit_ratelimit", func() endpoint.Endpoint {
				return kitratelimit.NewErroringLimiter(rate.NewLimiter(1e12, 1<<20))(endpoint.Nop)
			}},
			{"failsafe", func() endpoint.Endpoint {
				return failsafeMW(false, fsratelimiter.NewBursty[any](1<<40, time.Second))(endpoint.Nop)
			}},
		}},
		{name: "bulkhead_admit", impls: []contender{
			{"resilience", func() endpoint.Endpoint {
				return middleware.Bulkhead(middleware.BulkheadConfig{MaxConcurrent: 1024, Observer: quiet})(endpoint.Nop)
			}},
			{"chan_semaphore", func() endpoint.Endpoint { return chanSemaphore(1024)(endpoint.Nop) }},
			{"failsafe", func() endpoint.Endpoint { return failsafeMW(false, fsbulkhead.New[any](1024))(endpoint.Nop) }},
		}},
		{name: "fallback_success", impls: []contender{
			{"resilience", func() endpoint.Endpoint {
				return middleware.FallbackWith(middleware.FallbackConfig{Value: fallbackV, Observer: quiet})(endpoint.Nop)
			}},
			{"failsafe", func() endpoint.Endpoint {
				return failsafeMW(false, fsfallback.NewWithResult[any](fallbackV))(endpoint.Nop)
			}},
		}},
		{name: "recover_success", impls: []contender{
			{"resilience", func() endpoint.Endpoint {
				return middleware.Recover()(endpoint.Nop)
			}},
		}},
		{name: "retry_budget_first_try", impls: []contender{
			{"resilience", func() endpoint.Endpoint {
				return middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Observer: quiet,
					Budget: middleware.NewRetryBudget(middleware.RetryBudgetConfig{})})(endpoint.Nop)
			}},
			{"failsafe", func() endpoint.Endpoint {
				return failsafeMW(false, fsretry.NewBuilder[any]().WithMaxAttempts(3).WithBudget(fsbudget.New()).Build())(endpoint.Nop)
			}},
		}},
		{name: "adaptive_limit_admit", impls: []contender{
			{"resilience", func() endpoint.Endpoint {
				return middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{Observer: quiet})(endpoint.Nop)
			}},
			{"failsafe", func() endpoint.Endpoint {
				return failsafeMW(false, fsadaptivelimiter.NewWithDefaults[any]())(endpoint.Nop)
			}},
		}},
		{name: "throttle_accept", impls: []contender{
			{"resilience", func() endpoint.Endpoint {
				return middleware.Throttle(middleware.ThrottleConfig{Observer: quiet})(endpoint.Nop)
			}},
			{"failsafe", func() endpoint.Endpoint {
				return failsafeMW(false, fsadaptivethrottler.NewWithDefaults[any]())(endpoint.Nop)
			}},
		}},
		{name: "hedge_not_hedged", impls: []contender{
			{"resilience", func() endpoint.Endpoint {
				return middleware.Hedge(middleware.HedgeConfig{Delay: time.Second, Observer: quiet,
					Idempotent: func(context.Context, any) bool { return true }})(endpoint.Nop)
			}},
			{"failsafe", func() endpoint.Endpoint {
				return failsafeMW(true, fshedge.NewWithDelay[any](time.Second))(endpoint.Nop)
			}},
		}},
		{name: "stack_success", impls: stackContenders(false)},
		{name: "stack_open", impls: stackContenders(true)},
		{name: "depth", impls: depthContenders()},
		{name: "registry_size", impls: []contender{
			{"breakers_1", func() endpoint.Endpoint { return ourBreaker(registry.New(registry.Config{}), "bench")(endpoint.Nop) }},
			{"breakers_10000", func() endpoint.Endpoint {
				reg := registry.New(registry.Config{MaxBreakers: -1})
				for i := range 9_999 {
					if _, err := reg.Breaker(fmt.Sprintf("other-%d", i), registry.Settings{}); err != nil {
						panic(err)
					}
				}
				return ourBreaker(reg, "bench")(endpoint.Nop)
			}},
		}},
	}
}

// BenchmarkSuite runs every row of issue 8, every contender, serial and
// RunParallel, in one run.
func BenchmarkSuite(b *testing.B) {
	for _, r := range rows() {
		b.Run("row="+r.name, func(b *testing.B) {
			for _, c := range r.impls {
				b.Run("impl="+c.name, func(b *testing.B) {
					for _, mode := range []string{"serial", "parallel"} {
						b.Run("mode="+mode, func(b *testing.B) {
							e := c.build()
							want := r.want
							if strings.HasPrefix(c.name, "chain") {
								want = wantOK // the floor in every row
							}
							if err := check(e, want); err != nil {
								b.Fatal(err)
							}
							// Collect what the build left (10,000 breakers, for
							// one), so that no GC cycle it started runs during
							// the timing, on one of the two CPUs.
							runtime.GC()
							run(b, e, mode == "parallel")
						})
					}
				})
			}
		})
	}
}

// check calls e once (through a fresh fail2 sequence) and reports an
// outcome other than want.
func check(e endpoint.Endpoint, want outcome) error {
	_, err := e(context.Background(), new(int))
	switch {
	case want == wantOK && err != nil:
		return fmt.Errorf("err = %v, want nil", err)
	case want == wantRejected && (err == nil || errors.Is(err, errDown)):
		return fmt.Errorf("err = %v, want a rejection", err)
	}
	return nil
}

func run(b *testing.B, e endpoint.Endpoint, parallel bool) {
	ctx := context.Background()
	b.ReportAllocs()
	if parallel {
		b.ResetTimer() // RunParallel's timer runs from the start: leave the build out
		b.RunParallel(func(pb *testing.PB) {
			req := new(int)
			for pb.Next() {
				_, _ = e(ctx, req)
			}
		})
		return
	}
	req := new(int)
	for b.Loop() {
		_, _ = e(ctx, req)
	}
}
