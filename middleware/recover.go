package middleware

import (
	"context"
	"log/slog"

	"github.com/resiliencekit/resilience/endpoint"
)

// RecoverConfig configures a [RecoverWith] layer. The zero value logs each
// recovered panic with [slog.Default].
type RecoverConfig struct {
	// Name names the layer in its events. Default "".
	Name string

	// Observer receives an [EventPanic] for each recovered panic.
	// Default nil: a [LogObserver] on [slog.Default].
	Observer Observer

}

// Validate returns nil when c is valid, and else a [*ConfigError] matching
// [ErrInvalidConfig]: the one possible problem is an Observer holding a nil
// [ObserverFunc].
func (c RecoverConfig) Validate() error {
	p := problems{layer: "recover", goType: "RecoverConfig"}
	validateObserver(&p, c.Observer)
	return p.err()
}

// Recover returns a middleware that turns a panic in the wrapped endpoint
// into a [*PanicError] returned with a nil response, and logs it with
// [slog.Default]. It is RecoverWith(RecoverConfig{}); see [RecoverWith].
func Recover() endpoint.Middleware { return RecoverWith(RecoverConfig{}) }

// RecoverWith returns a middleware that turns a panic in the wrapped endpoint
// into an error: the call returns a nil response and a [*PanicError] holding
// the panic value and the stack of the goroutine that panicked, captured
// where it panicked. When the panic value is an error, the *PanicError
// unwraps to it, so [errors.Is] matches it. A *PanicError re-panicked by an
// inner layer (one that carried a panic across goroutines) is returned as is,
// keeping its original stack. A panic(nil) arrives as a
// [*runtime.PanicNilError] value and is handled like any other.
//
// Each recovered panic is reported once, as an [EventPanic] (layer
// "recover", Err the *PanicError), to cfg's observer. A call that does not
// panic costs one deferred call and allocates nothing. [runtime.Goexit] (as
// in t.FailNow) is not a panic and is never stopped.
//
// The other layers of this package never swallow panics; put Recover inside
// a [Fallback] layer to fall back on panics too.
func RecoverWith(cfg RecoverConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	obs := observer(cfg.Observer)
	name := cfg.Name
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("recover", next)
		return func(ctx context.Context, req any) (resp any, err error) {
			defer func() {
				if v := recover(); v != nil {
					// Still on the panicking goroutine, its frames not yet
					// unwound: the stack shows where the panic happened.
					pe := newPanicError(v)
					obs.Observe(ctx, Event{Kind: EventPanic, Layer: "recover", Name: name, Err: pe})
					resp, err = nil, pe
				}
			}()
			return next(ctx, req)
		}
	}
}
