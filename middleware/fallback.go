package middleware

import (
	"context"
	"fmt"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/callctx"
)

// FallbackConfig configures a [FallbackWith] layer: what to serve when the
// wrapped endpoint fails, and which failures to serve it for. The zero value
// replaces every failure by a nil response and a nil error.
//
// The fallback is one of, in order of precedence: Endpoint (another
// endpoint, a cache say), Func, or else Value. At most one of Endpoint and Func may be set, and
// Value must be nil when either is.
//
// A fallback is never used on success, nor when the caller has gone (its
// context was cancelled, with or without a cause, or passed its deadline):
// the endpoint's error is then returned unchanged. A context ended by a
// deadline of the library's own (a [Timeout] layer outside this one) is a
// failure like any other, and falls back. A panic in the wrapped endpoint is
// never replaced by a fallback; it propagates (put [Recover] inside the
// fallback layer to fall back on panics too).
type FallbackConfig struct {
	// Value is served, with a nil error, in place of a failure when neither
	// Endpoint nor Func is set. Default nil (the guide's None).
	Value any

	// Endpoint, when set, is called with the caller's context and request
	// in place of a failure, and its response is returned with a nil error.
	// When it fails, the call returns a nil response and a error
	// matching both errors. Default nil. Not serialisable.
	Endpoint endpoint.Endpoint

	// Func, when set, is called with the caller's context, the request and
	// the endpoint's error, in place of a failure, and its response is
	// returned with a nil error. When it fails, the call returns a nil
	// response and a error matching both errors. A Func may
	// decline to fall back by returning the very error it was given: that
	// error is then returned unchanged and no event is reported. Default
	// nil. Not serialisable.
	Func func(ctx context.Context, req any, err error) (any, error)

	// FallbackOn lists the errors that fall back, matched with [errors.Is].
	// Default empty. When both FallbackOn and FallbackIf are empty, every
	// error falls back; otherwise an error falls back when it matches
	// FallbackOn or FallbackIf reports true, and any other error is
	// returned unchanged. Not serialisable.
	FallbackOn []error

	// FallbackIf reports whether an error falls back (see FallbackOn).
	// Default nil. It is called on the caller's goroutine and must be safe
	// for concurrent use. Not serialisable.
	FallbackIf func(error) bool

	// Name names the layer in its events. Default "".
	Name string

	// Observer receives an [EventFallback] each time the fallback is used.
	// Default nil: a [LogObserver] on [slog.Default].
	Observer Observer
}

// Validate returns nil when c is usable, and otherwise every problem at once,
// joined with [errors.Join]; each is a [*ConfigError] matching
// [ErrInvalidConfig]. Problems: both Endpoint and Func set; Value set
// together with Endpoint or Func; a nil entry in FallbackOn.
func (c FallbackConfig) Validate() error {
	p := problems{layer: "fallback", goType: "FallbackConfig"}
	if c.Endpoint != nil && c.Func != nil {
		p.add("func", "Func", nil, "must not be set together with endpoint: set at most one")
	}
	if c.Value != nil && (c.Endpoint != nil || c.Func != nil) {
		p.add("value", "Value", c.Value, "must be nil when endpoint or func is set")
	}
	for i, e := range c.FallbackOn {
		if e == nil {
			p.add(fmt.Sprintf("fallback_on[%d]", i), fmt.Sprintf("FallbackOn[%d]", i), nil, "must not be nil")
		}
	}
	validateObserver(&p, c.Observer)
	return p.err()
}

// fallbackError is returned by a fallback layer when its fallback endpoint or
// func itself fails. It unwraps to both errors, so [errors.Is] matches the
// endpoint's original error and the fallback's error alike, and
// [errors.AsType] finds a typed error in either (the original first).
type fallbackError struct {
	err   error // the wrapped endpoint's error, which the fallback was to replace
	fbErr error // the error the fallback returned
}

func (e *fallbackError) Error() string {
	return fmt.Sprintf("middleware: fallback failed: %v (replacing: %v)", e.fbErr, e.err)
}

func (e *fallbackError) Unwrap() []error { return []error{e.err, e.fbErr} }

// Fallback returns a middleware that calls fb with the caller's context and
// request when the wrapped endpoint fails: the guide's
// It is [FallbackWith] with Endpoint set; see
// [FallbackConfig] for when the fallback is used and what a failing fallback
// returns. Fallback panics with an error matching [ErrInvalidConfig] if fb is
// nil.
func Fallback(fb endpoint.Endpoint) endpoint.Middleware {
	if fb == nil {
		p := problems{layer: "fallback", goType: "FallbackConfig"}
		p.add("endpoint", "Endpoint", nil, "must not be nil")
		mustValid(p.err())
	}
	return FallbackWith(FallbackConfig{Endpoint: fb})
}

// FallbackFunc returns a middleware that calls f with the caller's context,
// the request and the endpoint's error when the wrapped endpoint fails, and
// returns what f returns. It is [FallbackWith] with Func set. FallbackFunc
// panics with an error matching [ErrInvalidConfig] if f is nil.
func FallbackFunc(f func(ctx context.Context, req any, err error) (any, error)) endpoint.Middleware {
	if f == nil {
		p := problems{layer: "fallback", goType: "FallbackConfig"}
		p.add("func", "Func", nil, "must not be nil")
		mustValid(p.err())
	}
	return FallbackWith(FallbackConfig{Func: f})
}

// FallbackValue returns a middleware that returns (v, nil) when the wrapped
// endpoint fails. v may be nil (the
// guide's None). It is [FallbackWith] with Value set.
func FallbackValue(v any) endpoint.Middleware {
	return FallbackWith(FallbackConfig{Value: v})
}

// FallbackWith returns a middleware that serves the fallback configured by
// cfg when the wrapped endpoint fails. For each failed call whose error
// passes the filter (FallbackOn, FallbackIf) and whose context has not ended,
// the fallback is used exactly once and an [EventFallback] (layer "fallback")
// is reported to the layer's observer after it returns; the event's Err is
// the endpoint's error, or the error when the fallback failed
// (which matches the endpoint's error too). Other failures are returned
// unchanged, with the endpoint's response; successes pass through untouched
// and cost nothing but the error check. A panic, in the endpoint or in the
// fallback, propagates: no fallback, no event.
//
// FallbackWith panics with cfg's [FallbackConfig.Validate] error if cfg is
// invalid. The middleware is safe for concurrent use if the fallback and the
// filter are.
func FallbackWith(cfg FallbackConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	f := &fallback{
		value:  cfg.Value,
		ep:     cfg.Endpoint,
		fn:     cfg.Func,
		filter: newFilter(cfg.FallbackOn, cfg.FallbackIf),
		name:   cfg.Name,
		obs:    observer(cfg.Observer),
	}
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("fallback", next)
		return func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			if err == nil {
				return resp, nil
			}
			return f.fail(ctx, req, resp, err)
		}
	}
}

// fallback is the immutable state of one FallbackWith layer.
type fallback struct {
	value  any
	ep     endpoint.Endpoint
	fn     func(ctx context.Context, req any, err error) (any, error)
	name   string
	obs    Observer
	filter filter // FallbackOn, FallbackIf
}

// fail handles a failed call: it decides whether to fall back and does.
func (f *fallback) fail(ctx context.Context, req, resp any, err error) (any, error) {
	if callctx.Gone(ctx) || !f.matches(err) { // the package's one rule: no fallback for a caller who has gone
		return resp, err
	}
	var fbResp any
	var fbErr error
	switch {
	case f.ep != nil:
		fbResp, fbErr = f.ep(ctx, req)
	case f.fn != nil:
		fbResp, fbErr = f.fn(ctx, req, err)
		if fbErr != nil && sameError(fbErr, err) {
			return resp, err // declined
		}
	default:
		fbResp = f.value
	}
	if fbErr != nil {
		fe := &fallbackError{err: err, fbErr: fbErr}
		f.obs.Observe(ctx, Event{Kind: EventFallback, Layer: "fallback", Name: f.name, Err: fe})
		return nil, fe
	}
	f.obs.Observe(ctx, Event{Kind: EventFallback, Layer: "fallback", Name: f.name, Err: err})
	return fbResp, nil
}

// matches reports whether err passes the layer's filter.
func (f *fallback) matches(err error) bool {
	return f.filter.matches(err)
}

// sameError reports whether a and b are the same error value, without
// panicking on errors of an incomparable dynamic type.
func sameError(a, b error) (same bool) {
	defer func() {
		if recover() != nil { // comparing two incomparable values of one type
			same = false
		}
	}()
	return a == b
}
