package grpc_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
	resiliencegrpc "github.com/resiliencekit/resilience/transport/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestClasses: each class is true exactly for its code, through wrapping,
// and false for nil, plain errors and OK.
func TestClasses(t *testing.T) {
	preds := map[codes.Code]func(error) bool{
		codes.Unavailable:       resiliencegrpc.Unavailable,
		codes.DeadlineExceeded:  resiliencegrpc.DeadlineExceeded,
		codes.ResourceExhausted: resiliencegrpc.ResourceExhausted,
		codes.Aborted:           resiliencegrpc.Aborted,
		codes.Internal:          resiliencegrpc.Internal,
		codes.Unknown:           resiliencegrpc.Unknown,
	}
	errs := []struct {
		name string
		err  error
		code codes.Code // OK: no class
	}{
		{"nil", nil, codes.OK},
		{"plain", errors.New("x"), codes.OK},
		{"ok status", status.Error(codes.OK, ""), codes.OK},
		{"not found", status.Error(codes.NotFound, "x"), codes.NotFound},
		{"unavailable", status.Error(codes.Unavailable, "x"), codes.Unavailable},
		{"wrapped unavailable", fmt.Errorf("call: %w", status.Error(codes.Unavailable, "x")), codes.Unavailable},
		{"deadline", status.Error(codes.DeadlineExceeded, "x"), codes.DeadlineExceeded},
		{"exhausted", status.Error(codes.ResourceExhausted, "x"), codes.ResourceExhausted},
		{"aborted", status.Error(codes.Aborted, "x"), codes.Aborted},
		{"internal", status.Error(codes.Internal, "x"), codes.Internal},
		{"unknown", status.Error(codes.Unknown, "x"), codes.Unknown},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			for c, pred := range preds {
				if got, want := pred(tt.err), c == tt.code; got != want {
					t.Errorf("%v class = %t, want %t", c, got, want)
				}
			}
			if got, want := resiliencegrpc.Transient(tt.err), tt.code == codes.Unavailable; got != want {
				t.Errorf("Transient = %t, want %t", got, want)
			}
			if got, want := resiliencegrpc.Code(codes.NotFound, codes.Aborted)(tt.err), tt.code == codes.NotFound || tt.code == codes.Aborted; got != want {
				t.Errorf("Code(NotFound, Aborted) = %t, want %t", got, want)
			}
			if resiliencegrpc.Code()(tt.err) {
				t.Error("Code() = true, want false")
			}
		})
	}
}

// TestRegister: the names work in a policy file's retry_on; a second
// Register into the same set fails with ErrInvalidClass.
func TestRegister(t *testing.T) {
	var classes errclass.Set
	if err := resiliencegrpc.Register(&classes); err != nil {
		t.Fatal(err)
	}
	if err := resiliencegrpc.Register(&classes); !errors.Is(err, errclass.ErrInvalidClass) {
		t.Errorf("second Register = %v, want ErrInvalidClass", err)
	}
	set, err := policy.Config{Classes: &classes}.Parse([]byte("s:\n  retry: {max_attempts: 3, no_delay: true, retry_on: [grpc_unavailable]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := set.Stack("s")
	if err != nil {
		t.Fatal(err)
	}
	s.Observer = middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	for _, tt := range []struct {
		err   error
		calls int
	}{
		{status.Error(codes.Unavailable, "down"), 3},
		{status.Error(codes.Internal, "bug"), 1},
		{errors.New("plain"), 1},
	} {
		next := endpointtest.New(endpointtest.Err(tt.err))
		ep, err := s.Apply(next.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		ep(context.Background(), nil)
		if got := next.Calls(); got != tt.calls {
			t.Errorf("%v: calls = %d, want %d", tt.err, got, tt.calls)
		}
	}
}
