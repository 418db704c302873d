package grpc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// PushbackTrailer is the trailer in which a gRPC server asks a client to
// wait before retrying, in milliseconds (gRPC's retry design, A6); a
// negative or malformed value means "do not retry".
const PushbackTrailer = "grpc-retry-pushback-ms"

// MaxPushback caps a pushback taken from a server: a larger value (or an
// absurd one) is read as MaxPushback, so a hostile server cannot make a
// client wait for days. A client's Retry stops at once anyway when the wait
// asked is longer than its MaxDelay.
const MaxPushback = time.Hour

// PushbackError is a failed call's error with the server's pushback: the
// wait it asked for before a retry. It unwraps to the call's error, so the
// status code and the error classes still match, and its RetryAfter makes
// middleware.Retry wait at least that long (up to its MaxDelay) before the
// next attempt.
type PushbackError struct {
	// Err is the call's error, a gRPC status error.
	Err error
	// After is the wait the server asked for, at most MaxPushback.
	After time.Duration
	// NoRetry is set when the server asked not to retry at all (a negative
	// or malformed pushback trailer); RetryAfter then reports MaxPushback,
	// so that a Retry with any sane MaxDelay gives up.
	NoRetry bool
}

// Error returns the call's error message, with the pushback.
func (e *PushbackError) Error() string {
	if e.NoRetry {
		return e.Err.Error() + " (server pushback: do not retry)"
	}
	return fmt.Sprintf("%v (server pushback: retry after %v)", e.Err, e.After)
}

// Unwrap returns the call's error.
func (e *PushbackError) Unwrap() error { return e.Err }

// GRPCStatus returns the call's status, for status.FromError and
// status.Code.
func (e *PushbackError) GRPCStatus() *status.Status {
	s, _ := status.FromError(e.Err)
	return s
}

// RetryAfter is the wait before a retry: After, or MaxPushback when the
// server asked not to retry.
func (e *PushbackError) RetryAfter() time.Duration {
	if e.NoRetry {
		return MaxPushback
	}
	return e.After
}

// Pushback returns err with the pushback the server sent with it, if any,
// as a [*PushbackError]: the [PushbackTrailer] of the call's trailer first
// (gRPC's own), else a google.rpc.RetryInfo detail of err's status. An
// error without either, or a nil error, is returned as it is. Values are
// taken with care: a trailer that is not an integer or is negative means
// "do not retry" (as A6 says), a RetryInfo delay that is negative or
// malformed is ignored, and every wait is capped at MaxPushback.
func Pushback(err error, trailer metadata.MD) error {
	if err == nil {
		return nil
	}
	if vs := trailer.Get(PushbackTrailer); len(vs) > 0 {
		ms, perr := strconv.ParseInt(strings.TrimSpace(vs[0]), 10, 64)
		if (perr != nil && !isOverflow(perr)) || ms < 0 {
			return &PushbackError{Err: err, NoRetry: true}
		}
		if perr != nil || ms > MaxPushback.Milliseconds() {
			return &PushbackError{Err: err, After: MaxPushback}
		}
		return &PushbackError{Err: err, After: time.Duration(ms) * time.Millisecond}
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range s.Details() {
		ri, ok := d.(*errdetails.RetryInfo)
		if !ok || ri.GetRetryDelay() == nil || ri.GetRetryDelay().CheckValid() != nil {
			continue
		}
		after := ri.GetRetryDelay().AsDuration()
		if after < 0 {
			continue
		}
		return &PushbackError{Err: err, After: min(after, MaxPushback)}
	}
	return err
}

func isOverflow(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange && !strings.HasPrefix(ne.Num, "-")
}

// UnaryClientInterceptor returns a client interceptor that hands every
// failed call's error through [Pushback], with the call's trailer: install
// it on the connection (grpc.WithUnaryInterceptor) that go-kit's
// grpctransport.NewClient uses, and a middleware.Retry around the client
// endpoint waits as the server asks.
func UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var trailer metadata.MD
		err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Trailer(&trailer))...)
		return Pushback(err, trailer)
	}
}
