package outcomes

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/failsafe-go/failsafe-go"
	fscb "github.com/failsafe-go/failsafe-go/circuitbreaker"
	fsfallback "github.com/failsafe-go/failsafe-go/fallback"
	fsretry "github.com/failsafe-go/failsafe-go/retrypolicy"
	fstimeout "github.com/failsafe-go/failsafe-go/timeout"

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

// Contender wraps the client endpoint with one toolkit's policy. New is
// called once per run, inside the run's synctest bubble, so that no state
// (a breaker, a timer) crosses from one run to the next.
type Contender struct {
	Name string
	// Policy says, in a few words, what New builds.
	Policy string
	New    func(next endpoint.Endpoint) (endpoint.Endpoint, error)
}

// Contenders returns the contenders in the order the tables list them.
func Contenders() []Contender {
	return []Contender{
		{"none", "the client endpoint alone", func(next endpoint.Endpoint) (endpoint.Endpoint, error) { return next, nil }},
		{"resilience", "policy.Parse of testdata/guide.yaml, policy.StackFor[string], Stack.Apply", ours},
		{"failsafe-go", "failsafe.With(fallback, circuitbreaker, retrypolicy, timeout)", failsafeGo},
	}
}

// ours is this toolkit's guide stack, built from a policy file as the
// README shows, with a fresh registry per run and events discarded.
func ours(next endpoint.Endpoint) (endpoint.Endpoint, error) {
	set, err := policy.Parse(guidePolicy)
	if err != nil {
		return nil, err
	}
	stack, err := policy.StackFor[string](set, "dependency")
	if err != nil {
		return nil, err
	}
	stack.Registry = registry.New(registry.Config{})
	stack.Observer = middleware.Discard
	return stack.Apply(next)
}

// failsafeGo is failsafe-go's equivalent, as its docs compose policies:
// outermost first, a per-attempt timeout innermost, the context handed to
// the executor so the timeout can cancel the attempt.
func failsafeGo(next endpoint.Endpoint) (endpoint.Endpoint, error) {
	exec := failsafe.With[any](
		fsfallback.NewWithResult[any](FallbackValue),
		fscb.NewBuilder[any]().WithFailureThreshold(failureThreshold).WithDelay(resetTimeout).Build(),
		fsretry.NewBuilder[any]().WithMaxAttempts(maxAttempts).WithBackoff(retryDelay, 2*retryDelay).Build(),
		fstimeout.New[any](attemptTimeout),
	)
	return func(ctx context.Context, req any) (any, error) {
		return exec.WithContext(ctx).GetWithExecution(func(e failsafe.Execution[any]) (any, error) {
			return next(e.Context(), req)
		})
	}, nil
}

// client is the client endpoint every contender wraps.
func client(d *Dependency) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r, ok := req.(*Request)
		if !ok {
			return nil, fmt.Errorf("outcomes: request %T, want *Request", req)
		}
		return d.Call(ctx, r)
	}
}
