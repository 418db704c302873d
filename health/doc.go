// Package health checks the health of a service's dependencies and serves it
// to orchestrators such as Kubernetes.
//
// # Checks
//
// A check is a [CheckFunc], func(ctx) error, registered as a [Check] with
// [Checker.Register]: nil means healthy. [Bool] and [BoolCtx] adapt
// functions that return a bool. Each check has a timeout (default 5s, see
// [Check].Timeout and [Config].DefaultTimeout) and is critical unless
// registered with [Check].Optional.
//
//	c := health.NewChecker(health.Config{})
//	c.MustRegister(health.Check{Name: "chromadb", Func: chroma.Heartbeat})
//	c.MustRegister(health.Check{Name: "embedding_api", Func: api.HealthCheck, Timeout: 2 * time.Second})
//	c.MustRegister(health.Check{Name: "filesystem", Func: health.Bool(corpusExists), Optional: true})
//
// # Results
//
// A check's [Status] has a [Result]: [Pass], [Warn] or [Fail]. A check
// returns an error made with [Degraded] to report Warn: it works, degraded
// (a half-open circuit breaker, a replica lagging). Warn counts as healthy.
// A [Report] is Fail when a critical check fails, Warn when a check warns or
// an optional check fails, and Pass otherwise.
//
// # Running checks
//
// [Checker.CheckAll] runs every check concurrently, so it takes about as long
// as the slowest check; [Checker.Check] and [Checker.IsHealthy] run one.
// Runs are shared: while a check runs, every caller asking for it waits for
// that run instead of starting another. A check that ignores its context is
// reported as failed at its deadline, with an error matching
// [middleware.ErrTimeout], and is not started again until it returns, so a
// hung dependency holds one goroutine however often it is probed. The check's
// context carries that deadline with a cause of the library's own, so
// [context.Cause] tells it from a caller's deadline, and a caller that leaves
// early is never told that the check failed. A check that panics is reported
// as failed with an error that names the check and wraps a
// [*middleware.PanicError]; the panic is recovered in the check's own
// goroutine and the process goes on.
//
// # Background checking
//
// [Checker.Start] runs the checks on a schedule, with jitter, and from then
// on every question reads the cache, so probes never hit a dependency. A
// result older than a max age ([Config].MaxAge) reads as failed with
// [ErrStale]. Start returns at once; background checking ends with its
// context or [Checker.Stop].
//
// # Serving health
//
// [Handler] serves a readiness report in the IETF draft "Health Check
// Response Format for HTTP APIs" (application/health+json), 200 or 503;
// [LivenessHandler] answers pass as long as the process serves. [Endpoint]
// returns the same [Report] from a go-kit endpoint. Error text may hold
// secrets, so it is left out of reports unless [HandlerConfig].ErrorDetails
// is set.
//
//	mux.Handle("GET /livez", health.LivenessHandler())
//	mux.Handle("GET /readyz", health.Handler(c, health.HandlerConfig{}))
//
// # Startup
//
// [Checker.Require] returns an [*UnavailableError] naming every required
// service that is not healthy, for a service that must not start without
// them.
//
// # Errors
//
// Every error matches a sentinel with [errors.Is]: [ErrEmptyName],
// [ErrNilCheck], [ErrDuplicateCheck], [middleware.ErrInvalidConfig] and [ErrStarted]
// from setup; [ErrUnknownCheck] for a name never registered;
// [middleware.ErrTimeout], [ErrDegraded], [ErrCheckFailed], [ErrNotChecked]
// and [ErrStale] in a Status; [registry.ErrOpen] from [BreakerCheck];
// [ErrUnavailable] from Require. A panicking check's error wraps a
// [*middleware.PanicError], found with [errors.As].
//
// # Defaults
//
// The zero [Config], [Check] and [HandlerConfig] are the defaults: check
// timeout 5s ([DefaultTimeout]); checks critical; jitter ±10%
// ([DefaultJitter]); max age twice the interval plus the check's timeout;
// every check in a report; error text hidden.
package health
