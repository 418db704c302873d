package oteltrace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// Attribute keys set on span events.
const (
	KeyLayer        = attribute.Key("resilience.layer")
	KeyName         = attribute.Key("resilience.name")
	KeyAttempt      = attribute.Key("resilience.attempt")
	KeyDelay        = attribute.Key("resilience.delay_ms")
	KeyTimeout      = attribute.Key("resilience.timeout_ms")
	KeyRetryAfter   = attribute.Key("resilience.retry_after_ms")
	KeyBreakerState = attribute.Key("resilience.circuit_breaker.state")
	KeyBreakerFrom  = attribute.Key("resilience.circuit_breaker.from")
	KeyBreakerTo    = attribute.Key("resilience.circuit_breaker.to")
	KeyErrorType    = attribute.Key("error.type")
	KeyErrorMessage = attribute.Key("error.message")
)

// Observer is a [middleware.Observer] that adds each event to the span
// active in the event's context as a span event. It is safe for concurrent
// use; make one with [New].
type Observer struct {
	messages bool
}

// Option configures an [Observer].
type Option func(*Observer)

// WithoutErrorMessages returns an Option that leaves error.message out of
// the events (error.type stays), for errors whose text may hold data that
// must not reach the tracing backend.
func WithoutErrorMessages() Option { return func(o *Observer) { o.messages = false } }

// New returns an Observer configured by opts.
func New(opts ...Option) *Observer {
	o := &Observer{messages: true}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// Observe adds e to the recording span in ctx, if any, as described in the
// package documentation; a measured call that was not rejected by a circuit
// breaker adds nothing.
func (o *Observer) Observe(ctx context.Context, e middleware.Event) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	name := "resilience." + e.Kind.String()
	layer, svc := e.Layer, e.Name
	attrs := make([]attribute.KeyValue, 0, 8)
	switch e.Kind {
	case middleware.EventCall:
		open, ok := errors.AsType[*registry.CircuitOpenError](e.Err)
		if e.Outcome != middleware.OutcomeRejected || !ok {
			return
		}
		name, layer, svc = "resilience.rejected", "circuit_breaker", open.Service
		attrs = append(attrs, KeyBreakerState.String(open.State.String()))
		if d := open.RetryAfter(); d > 0 {
			attrs = append(attrs, KeyRetryAfter.Float64(ms(d)))
		}
	case middleware.EventRetry:
		if _, gaveUp := e.Err.(*middleware.RetryError); gaveUp {
			name = "resilience.retry_exhausted"
			attrs = append(attrs, KeyAttempt.Int(e.Attempt))
		} else {
			attrs = append(attrs, KeyAttempt.Int(e.Attempt), KeyDelay.Float64(ms(e.Wait)))
		}
	case middleware.EventTimeout:
		attrs = append(attrs, KeyTimeout.Float64(ms(e.Latency)))
	case middleware.EventRejected:
		if e.Wait > 0 {
			attrs = append(attrs, KeyDelay.Float64(ms(e.Wait)))
		}
	case middleware.EventStateChange:
		attrs = append(attrs, KeyBreakerFrom.String(e.From.String()), KeyBreakerTo.String(e.To.String()))
	}
	attrs = append(attrs, KeyLayer.String(layer))
	if svc != "" {
		attrs = append(attrs, KeyName.String(svc))
	}
	if e.Err != nil {
		attrs = append(attrs, KeyErrorType.String(ErrorType(e.Err)))
		if o.messages && e.Kind != middleware.EventCall && e.Kind != middleware.EventRejected &&
			e.Kind != middleware.EventTimeout {
			attrs = append(attrs, KeyErrorMessage.String(e.Err.Error()))
		}
	}
	span.AddEvent(name, trace.WithAttributes(attrs...))
}

// ErrorType returns the value of the error.type attribute for err: a short
// name for the errors the toolkit knows ("timeout", "circuit_open",
// "rate_limited", "bulkhead_full", "canceled",
// "deadline_exceeded"), else err's Go type, such as "*net.OpError"; "" for
// nil.
func ErrorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, middleware.ErrTimeout):
		return "timeout"
	case errors.Is(err, middleware.ErrCircuitOpen):
		return "circuit_open"
	case errors.Is(err, middleware.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, middleware.ErrBulkheadFull):
		return "bulkhead_full"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return fmt.Sprintf("%T", err)
}

// ms returns d in milliseconds, with a fraction.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
