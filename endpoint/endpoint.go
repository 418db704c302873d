package endpoint

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	kitendpoint "github.com/go-kit/kit/endpoint"
)

// Endpoint is a single RPC method: go-kit's endpoint type itself (a type
// alias), so values flow to and from go-kit with no conversion.
type Endpoint = kitendpoint.Endpoint

// Middleware is a chainable behaviour modifier for endpoints: go-kit's
// middleware type itself (a type alias).
type Middleware = kitendpoint.Middleware

// Nop is an endpoint that does nothing: it returns an empty struct and a nil
// error. Useful in tests and benchmarks.
func Nop(context.Context, any) (any, error) { return struct{}{}, nil }

// Chain returns a middleware that applies outer and then others, so that the
// first middleware is the outermost: a request traverses them in the order
// they are declared. Chain panics if any middleware is nil, at construction
// rather than at request time.
func Chain(outer Middleware, others ...Middleware) Middleware {
	if outer == nil {
		panic("endpoint: Chain: middleware 0 is nil")
	}
	for i, m := range others {
		if m == nil {
			panic(fmt.Sprintf("endpoint: Chain: middleware %d is nil", i+1))
		}
	}
	return func(next Endpoint) Endpoint {
		for i := len(others) - 1; i >= 0; i-- {
			next = others[i](next)
		}
		return outer(next)
	}
}

// ErrType is matched (with [errors.Is]) by every [*TypeError].
var ErrType = errors.New("endpoint: wrong type")

// TypeError reports a request or response whose dynamic type is not the one a
// typed bridge expects. It matches [ErrType].
type TypeError struct {
	// Role is "request" or "response".
	Role string
	// Want is the type the bridge expects.
	Want reflect.Type
	// Got is the dynamic type of the value received; nil for a nil interface.
	Got reflect.Type
}

// Error implements error.
func (e *TypeError) Error() string {
	got := "nil"
	if e.Got != nil {
		got = e.Got.String()
	}
	return fmt.Sprintf("endpoint: %s has type %s, want %s", e.Role, got, e.Want)
}

// Is reports whether target is [ErrType].
func (e *TypeError) Is(target error) bool { return target == ErrType }

// Func is a typed endpoint: a plain function from a request of type Req to a
// response of type Resp.
type Func[Req, Resp any] func(ctx context.Context, req Req) (Resp, error)

// FromTyped returns an [Endpoint] that calls f. A request that is not a Req
// makes the endpoint return a [*TypeError] without calling f; a nil request is
// accepted as the zero Req when Req is an interface, pointer, map, slice,
// channel or func type. FromTyped panics if f is nil.
func FromTyped[Req, Resp any](f func(ctx context.Context, req Req) (Resp, error)) Endpoint {
	if f == nil {
		panic("endpoint: FromTyped: nil func")
	}
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(Req)
		if !ok {
			if request != nil || !nilable[Req]() {
				return nil, typeError[Req]("request", request)
			}
		}
		return f(ctx, req)
	}
}

// Typed returns a typed function that calls e. A response that is not a Resp
// (when e returns no error) becomes a [*TypeError]; when e returns an error,
// the error is returned with the zero Resp, whatever the response. A nil
// response is accepted as the zero Resp when Resp is a nilable type. Typed
// panics if e is nil.
func Typed[Req, Resp any](e Endpoint) Func[Req, Resp] {
	if e == nil {
		panic("endpoint: Typed: nil endpoint")
	}
	return func(ctx context.Context, req Req) (Resp, error) {
		var zero Resp
		response, err := e(ctx, req)
		if err != nil {
			return zero, err
		}
		resp, ok := response.(Resp)
		if !ok {
			if response != nil || !nilable[Resp]() {
				return zero, typeError[Resp]("response", response)
			}
		}
		return resp, nil
	}
}

func typeError[T any](role string, v any) *TypeError {
	return &TypeError{Role: role, Want: reflect.TypeFor[T](), Got: reflect.TypeOf(v)}
}

// nilable reports whether the zero value of T can stand for a nil interface.
func nilable[T any]() bool {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Interface, reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func:
		return true
	}
	return false
}
