package grpc_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
	resiliencegrpc "github.com/resiliencekit/resilience/transport/grpc"
)

// TestEncodeError checks the status each of the toolkit's errors becomes,
// and that a Retry-After hint survives the trip: Pushback on the client
// reads back what EncodeError put in.
func TestEncodeError(t *testing.T) {
	open := &registry.CircuitOpenError{Service: "svc", State: registry.StateOpen, OpenedAt: time.Now(), HalfOpenAt: time.Now().Add(3 * time.Second)}
	plain := errors.New("plain")
	already := status.Error(codes.NotFound, "no such row")
	for _, tt := range []struct {
		name     string
		err      error
		code     codes.Code
		same     bool
		hintOver time.Duration // the hint read back is above this
	}{
		{name: "circuit open", err: open, code: codes.Unavailable, hintOver: 2 * time.Second},
		{name: "rate limited", err: middleware.ErrRateLimited, code: codes.ResourceExhausted},
		{name: "bulkhead full", err: middleware.ErrBulkheadFull, code: codes.Unavailable},
		{name: "adaptive limit", err: middleware.ErrLimited, code: codes.Unavailable},
		{name: "throttled", err: middleware.ErrThrottled, code: codes.Unavailable},
		{name: "too many keys", err: fmt.Errorf("%w: %w", middleware.ErrKeyRejected, registry.ErrTooManyKeys), code: codes.Unavailable},
		{name: "invalid key", err: fmt.Errorf("%w: %w", middleware.ErrKeyRejected, registry.ErrInvalidName), code: codes.InvalidArgument},
		{name: "timeout", err: middleware.ErrTimeout, code: codes.DeadlineExceeded},
		{name: "canceled", err: context.Canceled, code: codes.Canceled},
		{name: "a status error", err: already, same: true},
		{name: "another error", err: plain, same: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := resiliencegrpc.EncodeError(tt.err)
			if tt.same {
				if got != tt.err {
					t.Fatalf("EncodeError = %v, want it unchanged", got)
				}
				return
			}
			if status.Code(got) != tt.code {
				t.Fatalf("code %v, want %v", status.Code(got), tt.code)
			}
			back := resiliencegrpc.Pushback(got, metadata.MD{})
			var pe *resiliencegrpc.PushbackError
			switch {
			case tt.hintOver > 0 && (!errors.As(back, &pe) || pe.After <= tt.hintOver):
				t.Errorf("read back %v, want a pushback over %v", back, tt.hintOver)
			case tt.hintOver == 0 && errors.As(back, &pe):
				t.Errorf("read back a pushback %v from an error without a hint", pe.After)
			}
		})
	}
	if resiliencegrpc.EncodeError(nil) != nil {
		t.Error("EncodeError(nil) is not nil")
	}
	ep := resiliencegrpc.ServerErrors()(func(context.Context, any) (any, error) { return nil, middleware.ErrLimited })
	if _, err := ep(context.Background(), nil); status.Code(err) != codes.Unavailable {
		t.Errorf("ServerErrors: %v, want UNAVAILABLE", err)
	}
}
