// Package middleware holds the fault-tolerance patterns of the resilience
// guide as go-kit middleware: each constructor returns an
// [endpoint.Middleware], a func(Endpoint) Endpoint that drops into any go-kit
// transport unchanged.
//
//	fetch := middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second})(embed)
//	query := middleware.Timeout(30 * time.Second)(query)
//	enrich := middleware.FallbackValue([]string{})(enrich)
//
// # Patterns
//
//   - [Retry]: call again after transient failures, with exponential
//     backoff and jitter.
//   - [Timeout] and [TimeoutWith]: bound how long an attempt may take,
//     cooperatively through the context by default, or by abandoning a
//     callee that ignores it.
//   - [Fallback], [FallbackFunc], [FallbackValue] and [FallbackWith]: serve
//     another endpoint, a function's result or a fixed value when a call
//     fails.
//   - [CircuitBreaker]: stop calling a failing service, on sony/gobreaker,
//     shared by name through a registry.
//   - [RateLimit] and [Bulkhead]: shed load before it reaches the service.
//   - [Recover]: turn a panic into a [*PanicError].
//   - [Measure]: report every call's outcome and latency, for metrics.
//   - [Stack]: compose the layers declaratively, always in one order.
//   - Load management: [RetryBudget], [AdaptiveLimit], [Throttle], [Hedge].
//   - Keyed layers: [KeyedCircuitBreaker] and [KeyedRateLimit], a breaker
//     or a limiter per key of the request (a tenant, a host, a route), with
//     the keys held bounded and idle ones evicted.
//
// Which errors count is said the same way for every pattern: a list of
// errors matched with [errors.Is] (RetryOn, FailOn, FallbackOn) and a
// predicate (RetryIf, FailIf, FallbackIf), which package errclass builds
// from error classes (errclass.Connection, errclass.Timeout, ...). Where
// events go is said by one field, Observer. Policy files (package policy)
// produce Stacks; package chaos injects faults; package transport/http maps
// the errors to and from HTTP statuses.
//
// # Composition order
//
// The layers compose with the fallback outermost, then the
// circuit breaker, then retry, then the endpoint; a per-attempt timeout sits
// inside retry, and a total deadline comes from the caller's context:
//
//	caller → Fallback → CircuitBreaker → Retry → Timeout → endpoint
//
// With [endpoint.Chain] the first middleware is the outermost, so the guide's
// stack is written in the order it reads:
//
//	endpoint.Chain(
//		middleware.FallbackValue([]float32{}),
//		middleware.Retry(middleware.RetryConfig{MaxAttempts: 3}),
//		middleware.Timeout(10*time.Second),
//	)(embed)
//
// In this order a breaker sees one outcome per logical call (after the
// retries), an open breaker short-circuits the whole retry loop, and the
// fallback serves whatever is left.
//
// # Errors
//
// Static conditions are sentinel errors ([ErrTimeout], [ErrInvalidConfig],
// [ErrRateLimited], [ErrBulkheadFull], [ErrCircuitOpen], [ErrLimited],
// [ErrThrottled], [ErrKeyRejected]); conditions with data are types with Unwrap
// ([*RetryError], [*PanicError], [*ConfigError]). The cause is never hidden:
// errors.Is(err, cause) holds for the endpoint's own error through every
// layer. A timeout matches both [ErrTimeout] and [context.DeadlineExceeded].
// The caller's own cancellation is passed through unchanged: it is never
// retried, never replaced by a fallback and never counted as a timeout.
//
// # Defaults
//
// Every pattern takes a config struct whose zero value means the defaults
// (the resilience guide's: 3 attempts, 5 failures, a 60s reset timeout); each field's comment gives its default. A config's Validate
// method reports every problem at once, each a [*ConfigError] naming the field
// and its value and matching [ErrInvalidConfig]; the constructors panic with
// that error, at construction, never at request time.
//
// # Events
//
// Every layer reports what it does (a retry with its attempt and wait, a
// timeout, a fallback used, a panic) as an [Event] to an [Observer]. The
// default observer logs with log/slog ([LogObserver] over [slog.Default]);
// set a config's Observer to log elsewhere (LogObserver(yourLogger)) or to do
// anything else ([Observers] fans out to several: log, metrics and traces at once). A
// success that needs no retry reports nothing; only a [Measure] layer
// reports every call, as an [EventCall] with its outcome and latency. The
// packages observe/kitmetrics (go-kit metrics, Prometheus) and
// observe/oteltrace (OpenTelemetry span events) hold ready-made observers,
// so that this package imports neither.
//
// # Panics
//
// Panics are never swallowed: a layer releases what it holds and lets the
// panic continue to the caller's goroutine. [Recover] turns them into errors
// for those who want that.
package middleware
