// Package oteltrace turns the middleware's events into OpenTelemetry span
// events on the span active in the call's context: each retry with its
// attempt, delay and error, a timeout, a fallback used, a rejection (with
// the breaker's state for an open circuit), a panic. A trace then shows what
// happened inside one request:
//
//	ctx, span := tracer.Start(ctx, "embed")
//	resp, err := ep(ctx, req) // span events: resilience.retry, resilience.retry, resilience.fallback
//	span.End()
//
// It uses the OpenTelemetry API alone (go.opentelemetry.io/otel/trace and
// attribute): the application chooses and installs the SDK. The package is
// named oteltrace so that it imports beside the API's trace package without
// a rename.
//
// # Events and attributes
//
// Event names are "resilience." and the [middleware.EventKind]'s name; the
// attributes follow OpenTelemetry's semantic-convention style (lowercase,
// dot-separated namespaces, the general error.type key):
//
//	resilience.retry            resilience.layer, resilience.name, resilience.attempt, resilience.delay_ms, error.type, error.message
//	resilience.retry_exhausted  resilience.layer, resilience.name, resilience.attempt, error.type, error.message
//	resilience.timeout          resilience.layer, resilience.name, resilience.timeout_ms, error.type
//	resilience.fallback         resilience.layer, resilience.name, error.type, error.message
//	resilience.rejected         resilience.layer, resilience.name, resilience.delay_ms (rate limit, bulkhead),
//	                            resilience.circuit_breaker.state and resilience.retry_after_ms (open circuit), error.type
//	resilience.panic            resilience.layer, resilience.name, error.type, error.message
//	resilience.state_change     resilience.layer, resilience.name, resilience.circuit_breaker.from, resilience.circuit_breaker.to
//
// error.type is "timeout", "circuit_open", "rate_limited", "bulkhead_full",
// "canceled" or "deadline_exceeded" for the errors the
// toolkit knows, and the Go type of the error otherwise ("*net.OpError").
//
// A breaker reports no event of its own when it rejects a call: the
// rejection is seen by [middleware.Measure], whose [middleware.EventCall]
// this observer turns into resilience.rejected. Put a Measure layer in the
// stack to see breaker rejections in traces. A breaker's state changes are
// reported outside any request (with context.Background), so they reach a
// span only through an observer that gives them one.
//
// # Cost
//
// When the context carries no recording span (no SDK, or the request not
// sampled), an event costs one context lookup and nothing else; a success
// reports no event at all, so tracing costs nothing on the success path.
package oteltrace
