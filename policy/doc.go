// Package policy reads resilience policies from files: named stacks of
// layers (fallback, circuit breaker, retry, timeout, and the others of
// package middleware) written in YAML or JSON, validated and bounded, and
// turned into [middleware.Stack] values; and keeps endpoints on a file's
// current policies as it changes.
//
//	set, err := policy.Load("policies.yaml")
//	s, err := policy.StackFor[[]float32](set, "embedding_api")
//	ep, err := s.Apply(embed)
//
// # File format
//
// A policy file is a map from stack name to stack; a stack is a map from
// layer to that layer's settings, in snake case (the fields of the
// middleware config of the same name):
//
//	embedding_api:
//	  fallback: {value: []}
//	  circuit_breaker: {failure_threshold: 5, reset_timeout: 2m}
//	  retry: {max_attempts: 3, delay: 1s, retry_on: [connection, timeout]}
//	  timeout: {timeout: 10s}
//
// The keys of a stack, whatever order the file writes them in (the layers
// always run in the order of [middleware.Stack]):
//
//	name             the stack's name and its layers' default name (default: the key)
//	budget           a duration for the whole call (Stack.Budget)
//	measure          true, false or {} (Stack.Measure)
//	recover          true, false or {} (Stack.Recover)
//	fallback         value, fallback_on, name
//	bulkhead         max_concurrent, max_wait, max_queue, name
//	adaptive_limit   algorithm (gradient, aimd), initial_limit, min_limit, max_limit,
//	                 tolerance, window, max_queue, max_wait, name
//	rate_limit       rate, burst, wait, max_wait, shared, name
//	circuit_breaker  name, failure_threshold, success_threshold, reset_timeout, fail_on,
//	                 count_business_errors, failure_ratio, min_requests, window, window_buckets,
//	                 slow_call_duration, slow_call_ratio, max_reset_timeout, reset_backoff,
//	                 reset_jitter
//	retry            max_attempts, delay, no_delay, backoff, max_delay, disable_jitter,
//	                 retry_on, retry_business_errors, name,
//	                 budget: {ratio, min_retries} (a RetryBudget of the stack's own,
//	                 shared by every endpoint built from the stack)
//	hedge            delay, quantile, max_hedges, idempotent (required, true: every call
//	                 of the stack may be sent more than once), retry_budget (true:
//	                 the hedges count against the stack's retry budget), name
//	throttle         k, window, min_requests, name
//	timeout          timeout, abandon, max_abandoned, default, return_default, name
//
// Durations are strings ("1.5s", "2m") or numbers of seconds (1.5).
// retry_on, fail_on and fallback_on list error classes by name (see package
// errclass: "connection", "timeout", "http-5xx", "http-429", and those of
// [Config].Classes). A layer and its circuit breaker take the stack's name
// unless they name themselves. Unknown keys and layers are errors, never
// ignored; keys are exact and lowercase. What a file cannot hold (an
// Observer, a Registry, a fallback endpoint) is set on the Stack it gives.
//
// # Errors
//
// [Parse] and [Load] report every problem of a file at once, each naming
// the stack and the field and matching middleware.ErrInvalidConfig (a
// *middleware.ConfigError where a field is to blame, with its Path such as
// "retry.max_attempts"). A file past [Config].MaxBytes matches
// [ErrTooLarge]; a name the [Set] has no stack of matches
// [ErrUnknownStack] and lists the known ones.
//
// # Typed values
//
// A fallback value or a timeout's default is, from [Set.Stack], of JSON's
// types ([]any, map[string]any, float64, ...). [StackFor] decodes it into
// the type the caller's endpoint returns, so resp.([]float32) holds; a
// value that does not fit is an error naming "fallback.value".
//
// # Reloading
//
// A [Reloader] keeps endpoints on the policies of the last [Set] given to
// [Reloader.Update]; [Watch] calls a function with the file's new Set (or
// its problems) each time it changes:
//
//	r := policy.NewReloader(set, nil)
//	ep, err := policy.EndpointFor[[]float32](r, "embedding_api", embed)
//	go policy.Watch(ctx, "policies.yaml", func(set *policy.Set, err error) {
//		if err == nil {
//			err = r.Update(set)
//		}
//		if err != nil {
//			slog.Error("policies not reloaded", "err", err)
//		}
//	})
//
// A valid new file swaps in, for every endpoint at once, for the calls that
// start after it; an invalid one changes nothing. A circuit breaker whose
// thresholds changed keeps its state (open stays open, a failure streak is
// kept) and takes the new thresholds in place.
package policy
