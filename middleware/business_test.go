package middleware_test

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/resiliencekit/resilience/middleware"
)

// classifyResponse is a go-kit style response carrying a business error
// (it implements go-kit's endpoint.Failer).
type classifyResponse struct {
	V   int
	Err error
}

func (r classifyResponse) Failed() error { return r.Err }

// A business error travels in the response with a nil error, so Retry calls
// the endpoint once, whatever its classes say (go-kit's Failer convention).
func TestBusinessErrorNotRetried(t *testing.T) {
	calls := 0
	ep := middleware.Retry(middleware.RetryConfig{
		MaxAttempts: 3,
		NoDelay:     true,
		RetryIf:     func(error) bool { return true },
	})(func(context.Context, any) (any, error) {
		calls++
		return classifyResponse{Err: syscall.ECONNREFUSED}, nil
	})
	resp, err := ep(context.Background(), nil)
	if err != nil {
		t.Fatalf("err = %v, want nil", err)
	}
	if got := resp.(classifyResponse).Failed(); !errors.Is(got, syscall.ECONNREFUSED) {
		t.Errorf("resp.Failed() = %v, want the response's connection error", got)
	}
	if calls != 1 {
		t.Errorf("calls = %d, want %d", calls, 1)
	}
}
