package grpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// EncodeError turns the toolkit's errors into the gRPC status a server
// should send, the way transport/http's EncodeHTTPError picks an HTTP
// status: a rate limit is RESOURCE_EXHAUSTED (HTTP's 429); an open circuit,
// a full bulkhead, an adaptive limit's or a throttle's rejection is
// UNAVAILABLE (HTTP's 503), the code a gRPC client retries; a timeout of the
// toolkit's own is DEADLINE_EXCEEDED (504); a cancellation is CANCELLED.
// When the error carries a Retry-After hint, the status carries it as a
// google.rpc.RetryInfo detail, which [Pushback] reads on the client. A nil
// error, a status error and any other error are returned as they are (gRPC
// sends a plain error as UNKNOWN).
func EncodeError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	var c codes.Code
	switch {
	case errors.Is(err, middleware.ErrRateLimited):
		c = codes.ResourceExhausted
	case errors.Is(err, middleware.ErrKeyRejected) && errors.Is(err, registry.ErrInvalidName):
		c = codes.InvalidArgument // the request's key is not a valid name
	case errors.Is(err, middleware.ErrCircuitOpen), errors.Is(err, middleware.ErrBulkheadFull),
		errors.Is(err, middleware.ErrLimited), errors.Is(err, middleware.ErrThrottled),
		errors.Is(err, middleware.ErrKeyRejected):
		c = codes.Unavailable
	case errors.Is(err, middleware.ErrTimeout):
		c = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		c = codes.Canceled
	default:
		return err
	}
	s := status.New(c, err.Error())
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		if d := min(ra.RetryAfter(), MaxPushback); d > 0 {
			if ws, werr := s.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}); werr == nil {
				s = ws
			}
		}
	}
	return s.Err()
}

// ServerErrors returns a middleware that hands every error of the endpoint
// through [EncodeError]: put it outermost on a go-kit grpctransport
// server's endpoint, so that the stack's rejections reach clients as
// statuses they know to retry, with the wait they should take.
func ServerErrors() endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		if next == nil {
			panic(fmt.Errorf("%w: grpc.ServerErrors: nil endpoint", middleware.ErrInvalidConfig))
		}
		return func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			return resp, EncodeError(err)
		}
	}
}
