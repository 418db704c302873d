package middleware

import (
	"context"

	"github.com/resiliencekit/resilience/endpoint"
)

// Recover returns a middleware that turns a panic in the wrapped endpoint
// into an error: the call returns a nil response and a [*PanicError] holding
// the panic value and the stack of the goroutine that panicked, captured
// where it panicked. When the panic value is an error, the *PanicError
// unwraps to it, so [errors.Is] matches it. A *PanicError re-panicked by an
// inner layer (one that carried a panic across goroutines) is returned as is,
// keeping its original stack. A panic(nil) arrives as a
// [*runtime.PanicNilError] value and is handled like any other.
//
// Each recovered panic is reported once, as an [EventPanic] (layer
// "recover", Err the *PanicError), logged with [slog.Default]; in a [Stack]
// (Recover true) it goes to the stack's Observer, with the stack's Name. A
// call that does not panic allocates nothing. [runtime.Goexit] (as
// in t.FailNow) is not a panic and is never stopped.
//
// The other layers of this package never swallow panics; put Recover inside
// a [Fallback] layer to fall back on panics too.
func Recover() endpoint.Middleware { return recoverWith("", nil) }

// recoverWith is Recover reporting to obs (nil: the default) under name.
func recoverWith(name string, obs Observer) endpoint.Middleware {
	obs = observer(obs)
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
