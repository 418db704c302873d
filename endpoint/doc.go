// Package endpoint is the bottom layer of resilience: the go-kit endpoint
// types, composition helpers, and typed bridges.
//
// [Endpoint] and [Middleware] are type aliases of go-kit's
// [github.com/go-kit/kit/endpoint.Endpoint] and
// [github.com/go-kit/kit/endpoint.Middleware], not new types: a value built by
// go-kit (a transport client endpoint, a go-kit middleware) passes into every
// middleware of this module, and every value this module returns passes back
// into go-kit, with no conversion.
//
// # Composition order
//
// [Chain] composes middlewares so that the first one is the outermost: a
// request passes through them in the order they are written, and the response
// comes back in reverse.
//
// # Typed endpoints
//
// go-kit endpoints take and return values of type any. [FromTyped] and
// [Typed] bridge to and from plain typed functions; a value of the wrong type
// becomes a [*TypeError] (matching [ErrType]), never a panic.
package endpoint
