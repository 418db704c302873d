// Package health checks the health of a service's dependencies and serves it
// to orchestrators: the guide's HealthChecker, grown into what a service on
// Kubernetes needs.
//
// # Checks
//
// A check is a [CheckFunc], func(ctx) error, registered under a name with
// [Checker.Register]: nil means healthy. [Bool] and [BoolCtx] adapt the
// guide's boolean checks. Each check has a timeout (default 5s, see
// [Timeout]) and is critical unless registered [Optional].
//
//	c := health.NewChecker()
//	c.MustRegister("chromadb", chroma.Heartbeat)
//	c.MustRegister("embedding_api", api.HealthCheck, health.Timeout(2*time.Second))
//	c.MustRegister("filesystem", health.Bool(corpusExists), health.Optional())
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
// reported as failed with [ErrTimeout] at its deadline and is not started
// again until it returns, so a hung dependency holds one goroutine however
// often it is probed. A check that panics is reported as failed with a
// [*PanicError]; the panic is recovered in the check's own goroutine and the
// process goes on.
//
// # Background checking
//
// [Checker.Start] runs the checks on a schedule, with jitter, and from then
// on every question reads the cache, so probes cost nothing and never hit a
// dependency. A result older than a max age ([WithMaxAge]) reads as failed
// with [ErrStale]. Start returns at once; background checking ends with its
// context or [Checker.Stop].
//
// # Serving health
//
// [Handler] serves a readiness report in the IETF draft "Health Check
// Response Format for HTTP APIs" (application/health+json), 200 or 503;
// [LivenessHandler] answers pass as long as the process serves. [Endpoint]
// returns the same [Report] from a go-kit endpoint. Error text may hold
// secrets, so it is left out of reports unless [WithErrorDetails] is given.
//
//	mux.Handle("GET /livez", health.LivenessHandler())
//	mux.Handle("GET /readyz", health.Handler(c))
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
// [ErrNilCheck], [ErrDuplicateCheck], [ErrInvalidOption] and [ErrStarted]
// from setup; [ErrUnknownCheck] for a name never registered; [ErrTimeout],
// [ErrPanic], [ErrDegraded], [ErrCheckFailed], [ErrNotChecked] and [ErrStale]
// in a Status; [ErrUnavailable] from Require.
//
// # Defaults
//
// Check timeout 5s ([DefaultTimeout]); checks critical; jitter ±10%
// ([DefaultJitter]); max age twice the interval plus the check's timeout;
// error text hidden.
package health
