package errclass_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
)

var classifyBenchSink bool

// BenchmarkErrorClass measures classifying one error: the built-in
// predicates and a Match of several names, on a plain error that matches
// nothing (what a non-transient failure costs), on wrapped errors that match,
// and on a RetryError (whose Unwrap allocates its slice).
func BenchmarkErrorClass(b *testing.B) {
	var classes errclass.Set
	transient := mustMatch(&classes, "connection", "timeout", "http-5xx", "http-429")
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	plain := errors.New("bad request")
	tests := []struct {
		name  string
		match func(error) bool
		err   error
		want  bool
	}{
		{"timeout/plain", errclass.Timeout, plain, false},
		{"timeout/wrappedDeadline", errclass.Timeout, fmt.Errorf("read: %w", os.ErrDeadlineExceeded), true},
		{"connection/plain", errclass.Connection, plain, false},
		{"connection/wrappedRefused", errclass.Connection, fmt.Errorf("call: %w", refused), true},
		{"http5xx/plain", errclass.HTTP5xx, plain, false},
		{"match4/plain", transient, plain, false},
		{"match4/wrappedPlain", transient, fmt.Errorf("a: %w", fmt.Errorf("b: %w", plain)), false},
		{"match4/status503", transient, fmt.Errorf("decode: %w", classifyStatusError{503}), true},
		{"match4/retryErrorRefused", transient, &middleware.RetryError{Attempts: 3, Err: refused}, true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got := tt.match(tt.err)
				if got != tt.want {
					b.Fatalf("match(%v) = %v, want %v", tt.err, got, tt.want)
				}
				classifyBenchSink = got
			}
		})
	}
}

// BenchmarkErrorClassRetry measures a Retry layer whose RetryIf comes from
// named classes, around an endpoint that always fails with a refused
// connection (three attempts, no delay) or with an error no class matches
// (one attempt).
func BenchmarkErrorClassRetry(b *testing.B) {
	var classes errclass.Set
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
	}{
		{"retried", refused},
		{"notRetried", errors.New("bad request")},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			ep := middleware.Retry(middleware.RetryConfig{
				MaxAttempts: 3,
				NoDelay:     true,
				RetryIf:     mustMatch(&classes, "connection", "timeout"),
				Observer:    middleware.ObserverFunc(func(context.Context, middleware.Event) {}),
			})(func(context.Context, any) (any, error) { return nil, tt.err })
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ep(ctx, nil); !errors.Is(err, tt.err) {
					b.Fatalf("err = %v, want %v", err, tt.err)
				}
			}
		})
	}
}
