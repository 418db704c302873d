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
// retry, and every wait is capped at [MaxPushback].
package grpc
