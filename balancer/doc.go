// Package balancer puts a circuit breaker on each instance of a service
// found through go-kit's service discovery (package sd), balances calls over
// the instances whose breakers are closed, and retries on another instance.
//
// A breaker around the whole service opens for all instances when one of
// three is bad; a breaker per instance with go-kit's lb.Retry does not help
// either, because a rejection is never retried on another instance. Here
// one bad instance opens its own breaker and leaves the rotation; the
// others serve every call.
//
//	e, err := balancer.NewEndpointer(instancer, factory, balancer.Config{Name: "users"})
//	defer e.Close()
//	b, err := balancer.New(e, balancer.BalancerConfig{})
//	users := balancer.Retry(b, middleware.RetryConfig{MaxAttempts: 3, Delay: 10 * time.Millisecond})
//
// # Pieces
//
//   - [Endpointer] is an sd.Endpointer: it keeps the instances an
//     sd.Instancer reports, makes each one's endpoint with an sd.Factory, and
//     wraps it in a breaker of its own ([middleware.CircuitBreaker]) named by
//     the instance, in [Config.Registry] (so an operations handler shows
//     them). An instance that leaves is closed and its breaker removed.
//   - [Balancer] is an lb.Balancer: round robin over the instances whose
//     breakers are not open. Ejection is bounded by
//     [BalancerConfig.MaxEjectedShare] (Envoy's max_ejection_percent, gRPC's
//     A50), at least one instance and never all: past the share, the
//     instances whose breakers opened last stay in rotation.
//   - [Retry] calls the Balancer with [middleware.Retry]'s semantics
//     (backoff, deadline, budget, rejections never retried), each attempt
//     on an instance the call has not tried yet. An instance whose own
//     breaker rejects is no attempt: the call moves on at once.
//
// # Composition
//
// Per-instance breakers detect outliers; they are not the service's
// breaker. Keep the guide's layers outside, for an outage of every
// instance: fallback, then the service's circuit breaker, then
// balancer.Retry. The stack's own Retry layer is left out (Retry is it):
//
//	stack := middleware.Stack{Name: "users", Fallback: ..., CircuitBreaker: ...}
//	users := stack.Build(balancer.Retry(b, retryConfig))
//
// # Errors
//
// Constructors return errors matching [middleware.ErrInvalidConfig] that
// name the bad input. [Balancer.Endpoint] returns go-kit's lb.ErrNoEndpoints
// when there is no instance and [ErrClosed] after [Endpointer.Close].
package balancer
