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
//     backoff and jitter (the guide's @retry).
//   - [Timeout] and [TimeoutWith]: bound how long an attempt may take (the
//     guide's @with_timeout), cooperatively through the context by default,
//     or by abandoning a callee that ignores it.
//   - [Fallback], [FallbackFunc], [FallbackValue] and [FallbackWith]: serve
//     another endpoint, a function's result or a fixed value when a call
//     fails (the guide's @fallback and @with_fallback_value).
//   - [CircuitBreaker]: stop calling a failing service (the guide's
//     @circuit_breaker), on sony/gobreaker, shared by name through a
//     registry.
//   - [RateLimit] and [Bulkhead]: shed load before it reaches the service.
//   - [Recover]: turn a panic into a [*PanicError].
//   - [Chaos]: inject errors, latency and panics on purpose, at rates that
//     change at run time, to rehearse failure in tests and on game days.
//   - [Stack] and [LoadStacks]: compose the layers declaratively, in code or
//     from a policy file, always in the guide's order.
//   - [Measure]: report every call's outcome and latency, for metrics.
//
// Named error classes ([IsTimeout], [IsConnection], [IsHTTP5xx], [IsHTTP429],
// [ErrorClasses]) choose what is retried.
//
// # Composition order
//
// The guide stacks its decorators with the fallback outermost, then the
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
// [ErrRateLimited], [ErrBulkheadFull],
// [ErrCircuitOpen]); conditions with data are types with Unwrap
// ([*RetryError], [*PanicError], [*ConfigError]). The cause is never hidden:
// errors.Is(err, cause) holds for the endpoint's own error through every
// layer. A timeout matches both [ErrTimeout] and [context.DeadlineExceeded].
// The caller's own cancellation is passed through unchanged: it is never
// retried, never replaced by a fallback and never counted as a timeout.
//
// # Defaults
//
// Every pattern takes a config struct whose zero value means the guide's
// defaults; each field's comment gives its default. A config's Validate
// method reports every problem at once, each a [*ConfigError] naming the field
// and its value and matching [ErrInvalidConfig]; the constructors panic with
// that error, at construction, never at request time.
//
// # Events
//
// Every layer reports what it does (a retry with its attempt and delay, a
// timeout, a fallback used, a panic) as an [Event] to an [Observer]. The
// default observer logs with log/slog ([LogObserver] over [slog.Default]);
// set a config's Logger to log elsewhere, or its Observer to do anything
// else ([Observers] fans out to several: log, metrics and traces at once). A
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
