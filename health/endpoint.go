package health

import (
	"context"

	"github.com/resiliencekit/resilience/endpoint"
)

// Endpoint returns a go-kit endpoint that ignores its request and returns
// c's [Report] (a Report value, never an error), so that health can be served
// over any go-kit transport. cfg is as for [Handler]: error text is left out
// unless cfg.ErrorDetails is set. Endpoint panics when c is nil, and with an
// error matching [middleware.ErrInvalidConfig] when cfg is not valid.
//
// A Report is a go-kit transport/http StatusCoder and Headerer, so the go-kit
// HTTP server with EncodeJSONResponse answers 503 on Fail and sends
// Cache-Control: no-store. (EncodeJSONResponse sets its own Content-Type,
// application/json; use [Handler] for application/health+json.)
func Endpoint(c *Checker, cfg HandlerConfig) endpoint.Endpoint {
	if c == nil {
		panic("health: Endpoint: nil Checker")
	}
	hc := newHandlerConfig(cfg)
	return func(ctx context.Context, _ any) (any, error) {
		return c.report(ctx, hc), nil
	}
}
