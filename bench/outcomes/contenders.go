package outcomes

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	fscb "github.com/failsafe-go/failsafe-go/circuitbreaker"
	fsfallback "github.com/failsafe-go/failsafe-go/fallback"
	fsretry "github.com/failsafe-go/failsafe-go/retrypolicy"
	fstimeout "github.com/failsafe-go/failsafe-go/timeout"
	kitcb "github.com/go-kit/kit/circuitbreaker"
	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"
	"github.com/sony/gobreaker"

	"github.com/resiliencekit/resilience/balancer"
	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
	"github.com/resiliencekit/resilience/registry"
)

// FallbackValue is what every contender's fallback serves.
const FallbackValue = "fallback"

// The equivalent policy every contender but "none" is given.
const (
	failureThreshold = 5
	resetTimeout     = 10 * time.Second
	maxAttempts      = 3
	retryDelay       = 50 * time.Millisecond // then 100ms: 3 x 250ms + 150ms fits in the 1s deadline
	attemptTimeout   = 250 * time.Millisecond
)

//go:embed testdata/guide.yaml
var guidePolicy []byte

//go:embed testdata/guide-budget.yaml
var budgetPolicy []byte

//go:embed testdata/guide-throttle.yaml
var throttlePolicy []byte

//go:embed testdata/guide-budget-ratio.yaml
var budgetRatioPolicy []byte

//go:embed testdata/guide-hedge.yaml
var hedgePolicy []byte

// Contender wraps the client endpoint with one toolkit's policy. New is
// called once per run, inside the run's synctest bubble, so that no state
// (a breaker, a timer) crosses from one run to the next.
type Contender struct {
	Name string
	// Policy says, in a few words, what New builds.
	Policy string
	New    func(Client) (endpoint.Endpoint, error)
	// Server, if set, returns the middleware each instance of the
	// dependency puts in front of its handler (a server-side concurrency
	// limit); it is called once per run, and its result once per instance.
	Server func() endpoint.Middleware
}

// Contenders returns the contenders in the order the tables list them.
//
// hystrix-go (through go-kit's circuitbreaker.Hystrix) is not among them:
// it cannot run in a synctest bubble. Each hystrix command starts metric
// goroutines that block on a channel forever and have no way to be stopped,
// so synctest.Test fails with "deadlock: main bubble goroutine has exited but
// blocked goroutines remain"; created outside the bubble instead, those
// goroutines stamp hystrix's rolling windows with the real clock while the
// calls and the breaker's sleep window run on the fake one, so its error
// rates would be computed over the wrong calls. Run in real time, the
// scenarios would take an hour and give different numbers on every run.
func Contenders() []Contender {
	return []Contender{
		{Name: "none", Policy: "the client endpoint alone", New: func(c Client) (endpoint.Endpoint, error) { return c.Endpoint, nil }},
		{Name: "resilience", Policy: "policy.Parse of testdata/guide.yaml, policy.StackFor[string], Stack.Apply", New: ours},
		{Name: "failsafe-go", Policy: "failsafe.With(fallback, circuitbreaker, retrypolicy, timeout)", New: failsafeGo},
		{Name: "go-kit", Policy: "lb.Retry over lb.NewRoundRobin of per-instance circuitbreaker.Gobreaker(timeout(instance)), then a fallback", New: goKit},
		{Name: "resilience+limit", Policy: "the guide stack, each instance behind middleware.AdaptiveLimit (the default: gradient) on the server", New: ours, Server: adaptiveLimit},
		{Name: "resilience+throttle", Policy: "the guide stack with a throttle on each attempt (testdata/guide-throttle.yaml: K 2, 60s window)", New: fromFile(throttlePolicy)},
		{Name: "resilience+throttle+limit", Policy: "resilience+throttle against instances behind AdaptiveLimit", New: fromFile(throttlePolicy), Server: adaptiveLimit},
		{Name: "resilience+budget", Policy: "the guide stack with a retry budget (testdata/guide-budget.yaml: 20% of calls, reserve 3)", New: fromFile(budgetPolicy)},
		{Name: "resilience+hedge", Policy: "the guide stack hedging at the p95 of recent latencies (at least 20ms), the hedges and retries within a budget of 10% of calls (testdata/guide-hedge.yaml)", New: fromFile(hedgePolicy)},
		{Name: "resilience+balancer", Policy: "the guide stack with its retry as balancer.Retry over per-instance breakers (package balancer: 5 failures, 10s; at most 10% ejected, at least one), the timeout on each instance", New: balanced(guidePolicy, balancer.RoundRobin)},
		{Name: "resilience+balancer+ewma", Policy: "resilience+balancer picking the cheaper of two instances by calls in flight and peak EWMA latency (balancer.PeakEWMA)", New: balanced(guidePolicy, balancer.PeakEWMA)},
		{Name: "resilience+balancer+hedge", Policy: "resilience+balancer+ewma with testdata/guide-hedge.yaml's hedge on each attempt, to another instance (balancer.RetryHedged)", New: balanced(hedgePolicy, balancer.PeakEWMA)},
		{Name: "fleet+local-limit", Policy: "three client replicas, calls spread over them in turn, each the guide stack behind a rate limit of its own at the dependency's capacity (middleware.RateLimit): the fleet sends three times that", New: fleet(false)},
		{Name: "fleet+leased-limit", Policy: "the same three replicas sharing one limit at the dependency's capacity, leased (middleware.LeasedRateLimit over a NewMemoryLeasePool, as redisstore's LeasePool shares it through Redis)", New: fleet(true)},
		{Name: "resilience+budget+ratio", Policy: "the guide stack with a retry budget and a breaker opening on a 60% failure ratio over 10s, at least 20 calls (testdata/guide-budget-ratio.yaml)", New: fromFile(budgetRatioPolicy)},
	}
}

// ours is this toolkit's guide stack, built from a policy file as the
// README shows, with a fresh registry per run.
func ours(c Client) (endpoint.Endpoint, error) { return fromFile(guidePolicy)(c) }

// stackOf returns the stack "dependency" of a policy file, with a fresh
// registry and the run's observer.
func stackOf(file []byte, c Client) (middleware.Stack, error) {
	set, err := policy.Parse(file)
	if err != nil {
		return middleware.Stack{}, err
	}
	stack, err := policy.StackFor[string](set, "dependency")
	if err != nil {
		return middleware.Stack{}, err
	}
	stack.Registry = registry.New(registry.Config{})
	stack.Observer = c.Observer
	return stack, nil
}

// fromFile builds the stack "dependency" of a policy file, as ours does.
// A throttle draws from a seeded source of its own, so that runs repeat.
func fromFile(file []byte) func(Client) (endpoint.Endpoint, error) {
	return func(c Client) (endpoint.Endpoint, error) {
		stack, err := stackOf(file, c)
		if err != nil {
			return nil, err
		}
		if stack.Throttle.K != 0 {
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(15, 16))
			stack.Throttle.Rand = func() float64 {
				mu.Lock()
				defer mu.Unlock()
				return rng.Float64()
			}
		}
		return stack.Apply(c.Endpoint)
	}
}

// balanced is a policy file's stack with package balancer: the stack keeps
// its fallback and service breaker, its retry becomes balancer.Retry over
// the instances (each behind a breaker of its own with the guide's
// thresholds, as in go-kit's contender), its timeout bounds each attempt on
// an instance, and its hedge, if the file has one, hedges each attempt on
// another instance (balancer.RetryHedged). pick is the balancer's choice of
// instance, drawing from a seeded source so that runs repeat.
func balanced(file []byte, pick balancer.Pick) func(Client) (endpoint.Endpoint, error) {
	return func(c Client) (endpoint.Endpoint, error) {
		stack, err := stackOf(file, c)
		if err != nil {
			return nil, err
		}
		retry, timeout, hedge, cb := stack.Retry, stack.Timeout, stack.Hedge, stack.CircuitBreaker
		stack.Retry, stack.Timeout, stack.Hedge = middleware.RetryConfig{}, middleware.TimeoutConfig{}, middleware.HedgeConfig{}
		retry.Observer, timeout.Observer, hedge.Observer = c.Observer, c.Observer, c.Observer
		names := make([]string, len(c.Instances))
		for i := range names {
			names[i] = fmt.Sprintf("instance-%d", i)
		}
		factory := func(instance string) (kitendpoint.Endpoint, io.Closer, error) {
			i := slices.Index(names, instance)
			return middleware.TimeoutWith(timeout)(c.Instances[i]), nil, nil
		}
		e, err := balancer.NewEndpointer(sd.FixedInstancer(names), factory, balancer.Config{
			Breaker:  middleware.BreakerConfig{FailureThreshold: cb.FailureThreshold, ResetTimeout: cb.ResetTimeout, Observer: middleware.Discard},
			Registry: stack.Registry,
			Logger:   slog.New(slog.DiscardHandler),
		})
		if err != nil {
			return nil, err
		}
		c.Defer(e.Close)
		var mu sync.Mutex
		rng := rand.New(rand.NewPCG(17, 18))
		b, err := balancer.New(e, balancer.BalancerConfig{Pick: pick, Rand: func() uint64 {
			mu.Lock()
			defer mu.Unlock()
			return rng.Uint64()
		}})
		if err != nil {
			return nil, err
		}
		if hedge.Idempotent != nil {
			return stack.Apply(balancer.RetryHedged(b, retry, hedge))
		}
		return stack.Apply(balancer.Retry(b, retry))
	}
}

// fleet is three client replicas of the guide stack, the run's calls
// spread over them in turn, each behind a rate limit at the dependency's
// capacity, between the fallback and the breaker: a limit of each
// replica's own (leased false), or one the replicas lease from a shared
// pool (leased true).
func fleet(leased bool) func(Client) (endpoint.Endpoint, error) {
	return func(c Client) (endpoint.Endpoint, error) {
		const replicas = 3
		burst := max(1, int(c.Capacity/10)) // a tenth of a second
		pool := middleware.NewMemoryLeasePool(c.Capacity, burst)
		eps := make([]endpoint.Endpoint, replicas)
		for i := range eps {
			stack, err := stackOf(guidePolicy, c)
			if err != nil {
				return nil, err
			}
			fb := stack.Fallback
			fb.Observer = c.Observer
			stack.Fallback = middleware.FallbackConfig{}
			inner, err := stack.Apply(c.Endpoint)
			if err != nil {
				return nil, err
			}
			var limit kitendpoint.Middleware
			if leased {
				limit = middleware.LeasedRateLimit(middleware.LeasedRateLimitConfig{Pool: pool, Observer: c.Observer})
			} else {
				limit = middleware.RateLimit(middleware.RateLimitConfig{Rate: c.Capacity, Burst: burst, Observer: c.Observer})
			}
			eps[i] = middleware.FallbackWith(fb)(limit(inner))
		}
		var next atomic.Uint64
		return func(ctx context.Context, req any) (any, error) {
			return eps[(next.Add(1)-1)%replicas](ctx, req)
		}, nil
	}
}

// adaptiveLimit is the server side of "resilience+limit": each instance's
// handler behind an AdaptiveLimit of its own, with every default.
func adaptiveLimit() endpoint.Middleware {
	return middleware.AdaptiveLimit(middleware.AdaptiveLimitConfig{Observer: middleware.Discard})
}

// failsafeGo is failsafe-go's equivalent, as its docs compose policies:
// outermost first, a per-attempt timeout innermost, the context handed to
// the executor so the timeout can cancel the attempt.
func failsafeGo(c Client) (endpoint.Endpoint, error) {
	exec := failsafe.With[any](
		fsfallback.NewWithResult[any](FallbackValue),
		fscb.NewBuilder[any]().WithFailureThreshold(failureThreshold).WithDelay(resetTimeout).Build(),
		fsretry.NewBuilder[any]().WithMaxAttempts(maxAttempts).WithBackoff(retryDelay, 2*retryDelay).Build(),
		fstimeout.New[any](attemptTimeout),
	)
	next := c.Endpoint
	return func(ctx context.Context, req any) (any, error) {
		return exec.WithContext(ctx).GetWithExecution(func(e failsafe.Execution[any]) (any, error) {
			return next(e.Context(), req)
		})
	}, nil
}

// goKit is go-kit's own way, as its stringsvc3 example and its sd/lb docs
// build a client: each instance's endpoint wrapped in a gobreaker breaker
// (here opening on 5 consecutive failures, with a 10s reset) over a
// per-attempt timeout (stringsvc3 gets it from its HTTP client; go-kit has
// no timeout middleware), balanced round-robin, with lb.Retry making the 3
// attempts (at once, each on the next instance: lb.Retry has no backoff)
// within the caller's deadline. go-kit has no fallback either: a small
// wrapper serves the fallback value on any error.
func goKit(c Client) (endpoint.Endpoint, error) {
	var eps []kitendpoint.Endpoint
	for i, inst := range c.Instances {
		cb := gobreaker.NewCircuitBreaker(gobreaker.Settings{
			Name:        fmt.Sprintf("instance-%d", i),
			Timeout:     resetTimeout,
			ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= failureThreshold },
		})
		eps = append(eps, kitcb.Gobreaker(cb)(perAttemptTimeout(inst)))
	}
	retry := lb.Retry(maxAttempts, time.Second, lb.NewRoundRobin(sd.FixedEndpointer(eps)))
	return func(ctx context.Context, req any) (any, error) {
		resp, err := retry(ctx, req)
		if err != nil {
			return FallbackValue, nil
		}
		return resp, nil
	}, nil
}

// perAttemptTimeout bounds each attempt, as an HTTP client's Timeout does.
func perAttemptTimeout(next endpoint.Endpoint) kitendpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		return next(ctx, req)
	}
}
