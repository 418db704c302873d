package grpc

import (
	"errors"

	"github.com/resiliencekit/resilience/errclass"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codeOf returns the gRPC code err carries and true, or false when no error
// in err's chain is a gRPC status error. codes.OK never counts.
func codeOf(err error) (codes.Code, bool) {
	if err == nil {
		return codes.OK, false
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return codes.OK, false
	}
	s := se.GRPCStatus()
	if s == nil || s.Code() == codes.OK {
		return codes.OK, false
	}
	return s.Code(), true
}

// Code returns a predicate that reports whether an error carries one of the
// gRPC status codes cs, found with errors.As through wrapping. With no codes
// it reports false for every error; it is false for nil and for an error
// that is no status error. Safe for concurrent use.
func Code(cs ...codes.Code) func(error) bool {
	set := append([]codes.Code(nil), cs...)
	return func(err error) bool {
		c, ok := codeOf(err)
		if !ok {
			return false
		}
		for _, want := range set {
			if c == want {
				return true
			}
		}
		return false
	}
}

// Unavailable reports whether err carries codes.Unavailable: the service is
// down or shedding load; gRPC's standard retryable code.
func Unavailable(err error) bool { return is(err, codes.Unavailable) }

// DeadlineExceeded reports whether err carries codes.DeadlineExceeded. It is
// not transient by default: the call may have taken effect.
func DeadlineExceeded(err error) bool { return is(err, codes.DeadlineExceeded) }

// ResourceExhausted reports whether err carries codes.ResourceExhausted (a
// quota or rate limit). Not transient by default.
func ResourceExhausted(err error) bool { return is(err, codes.ResourceExhausted) }

// Aborted reports whether err carries codes.Aborted (a concurrency conflict,
// retried at a higher level). Not transient by default.
func Aborted(err error) bool { return is(err, codes.Aborted) }

// Internal reports whether err carries codes.Internal. Not transient by
// default.
func Internal(err error) bool { return is(err, codes.Internal) }

// Unknown reports whether err carries codes.Unknown. Not transient by
// default.
func Unknown(err error) bool { return is(err, codes.Unknown) }

// Transient is the default retryable class: codes.Unavailable only, the one
// code gRPC's retry design (A6) calls safe to retry for any method. Add the
// others with [Code] where the method is idempotent.
func Transient(err error) bool { return Unavailable(err) }

func is(err error, c codes.Code) bool {
	got, ok := codeOf(err)
	return ok && got == c
}

// classes are the names [Register] adds, with their predicates.
var classes = []struct {
	name  string
	match func(error) bool
}{
	{"grpc_aborted", Aborted},
	{"grpc_deadline_exceeded", DeadlineExceeded},
	{"grpc_internal", Internal},
	{"grpc_resource_exhausted", ResourceExhausted},
	{"grpc_transient", Transient},
	{"grpc_unavailable", Unavailable},
	{"grpc_unknown", Unknown},
}

// Register adds this package's classes to s under the names
// "grpc_aborted", "grpc_deadline_exceeded", "grpc_internal",
// "grpc_resource_exhausted", "grpc_transient", "grpc_unavailable" and
// "grpc_unknown". It stops at, and returns, the first error of
// [errclass.Set.Register] (matching errclass.ErrInvalidClass, e.g. a name
// already taken).
func Register(s *errclass.Set) error {
	for _, c := range classes {
		if err := s.Register(c.name, c.match); err != nil {
			return err
		}
	}
	return nil
}
