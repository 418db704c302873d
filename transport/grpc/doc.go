// Package grpc maps the toolkit's errors to and from gRPC status codes, for
// go-kit's transport/grpc. Import it as
//
//	resiliencegrpc "github.com/resiliencekit/resilience/transport/grpc"
//
// Error classes: [Unavailable], [DeadlineExceeded], [ResourceExhausted],
// [Aborted], [Internal] and [Unknown] report whether an error carries that
// gRPC status code (by status.FromError, so a wrapped status error counts);
// [Code] builds a class for any set of codes; [Transient] is the default
// retryable class, UNAVAILABLE only, as gRPC's retry guidance (A6) names it.
// [Register] adds the classes to an errclass.Set under the names
// "grpc_unavailable", "grpc_deadline_exceeded", "grpc_resource_exhausted",
// "grpc_aborted", "grpc_internal", "grpc_unknown" and "grpc_transient", so a
// policy file can say retry: {retry_on: [grpc_unavailable]}.
//
// Pushback: [UnaryClientInterceptor] (or [Pushback] by hand) turns the
// server's request to wait (the grpc-retry-pushback-ms trailer, or a
// google.rpc.RetryInfo detail) into a [*PushbackError] whose RetryAfter
// middleware.Retry waits out; a negative or malformed trailer means do not
// retry, and every wait is capped at [MaxPushback]. On the server,
// [ServerErrors] (or [EncodeError] by hand) sends the toolkit's rejections
// as the statuses a client retries, with the wait as a RetryInfo detail.
//
// # Health
//
// [HealthServer] serves a health.Checker as the standard gRPC health
// service, grpc.health.v1.Health, which grpc_health_probe, Kubernetes' gRPC
// probes and load balancers ask:
//
//	hs := resiliencegrpc.NewHealthServer(checker, resiliencegrpc.HealthConfig{})
//	resiliencegrpc.RegisterHealth(srv, hs)
//
// Check with the empty service name answers the whole report: SERVING
// unless a critical check fails (a warning, or an optional check failing,
// still serves). Any other name is the check registered under it: SERVING
// when it passes or warns, NOT_SERVING when it fails, and a NOT_FOUND
// error for a name never registered. The checks run under the call's
// context, so the caller's deadline bounds them. List answers every check
// and the whole report (under ""). Watch sends the status at once, then a
// message each time it changes, asking the checker every
// [HealthConfig].WatchInterval (default [DefaultWatchInterval], 5s); an
// unknown name is SERVICE_UNKNOWN, not an error, as the protocol says.
// After health.Checker.Start every question reads the checker's cache, so
// neither probes nor watches touch the dependencies.
package grpc
