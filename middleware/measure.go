package middleware

import (
	"context"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/callctx"
)

// MeasureConfig configures a [Measure] layer. The zero value reports to
// [slog.Default] at Debug level (so, by default, nowhere).
type MeasureConfig struct {
	// Name labels the calls measured, such as the dependency's name
	// ("chromadb"). Default none.
	Name string
	// Observer receives an [EventCall] for every call. Default nil: log
	// with Logger.
	Observer Observer
}

// Validate returns nil when c is valid, and else a [*ConfigError] matching
// [ErrInvalidConfig]: the one possible problem is an Observer holding a nil
// [ObserverFunc].
func (c MeasureConfig) Validate() error {
	p := problems{layer: "measure", goType: "MeasureConfig"}
	validateObserver(&p, c.Observer)
	return p.err()
}

// Measure returns a middleware that reports every call it passes on as one
// [EventCall] (Layer "measure") to cfg.Observer: its Outcome
// ([OutcomeSuccess], [OutcomeFailure], [OutcomeRejected] or
// [OutcomeCanceled]), its latency in Delay and its error in Err. It is the
// layer that sees every call, successes included, so metrics can count calls
// by outcome and time them; the other layers report only what they do.
//
// Put Measure outermost, or just inside a fallback: it reports the outcome
// at its place in the chain, so outside a fallback that catches everything
// every call is a success (the fallback's own [EventFallback] counts the
// calls it served).
//
//	endpoint.Chain(
//		middleware.FallbackValue([]float32{}),
//		middleware.Measure(middleware.MeasureConfig{Name: "embed", Observer: obs}),
//		middleware.CircuitBreaker("embed", middleware.BreakerConfig{Observer: obs}),
//		middleware.Retry(middleware.RetryConfig{Observer: obs}),
//	)(embed)
//
// Measure is the one layer that reads the clock on the success path; it
// allocates nothing and takes no lock. A call that panics is not reported: the panic goes on up
// ([Recover] reports panics). Measure never changes the call's result.
func Measure(cfg MeasureConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	obs := observer(cfg.Observer)
	name := cfg.Name
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("measure", next)
		return func(ctx context.Context, request any) (response any, err error) {
			start := time.Now()
			response, err = next(ctx, request)
			latency := time.Since(start)
			outcome := OutcomeSuccess
			if err != nil {
				outcome = outcomeOf(ctx, err)
			}
			obs.Observe(ctx, Event{Kind: EventCall, Layer: "measure", Name: name, Latency: latency, Err: err, Outcome: outcome})
			return response, err
		}
	}
}

// outcomeOf classifies a failed call by the package's one rule
// (internal/callctx, as the breaker does): canceled when the caller has gone,
// whatever err says, or on a cancellation; a failure when a deadline of the
// library's own cut the call.
func outcomeOf(ctx context.Context, err error) Outcome {
	switch {
	case rejection(err):
		return OutcomeRejected
	case callctx.Neutral(ctx, err):
		return OutcomeCanceled
	}
	return OutcomeFailure
}
