package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

// notRetried is a RetryIf that declines errors an inner Retry already
// retried: the guard against nested retries multiplying.
func notRetried(err error) bool {
	_, retried := errors.AsType[*middleware.RetryError](err)
	return !retried
}

// TestNestedRetryAmplification measures the retry amplification of nested
// Retry layers (a client retrying a call that itself retries): the attempts
// multiply, inner x outer, against an endpoint that keeps failing. It also
// checks the two ways to avoid it: a single Retry layer, or an outer RetryIf
// that declines a *RetryError (the inner layer has already retried it).
func TestNestedRetryAmplification(t *testing.T) {
	tests := []struct {
		name   string
		layers []int // MaxAttempts of each Retry layer, innermost first
		guard  bool  // the outer layers decline a *RetryError
		want   int
	}{
		{name: "one layer of 3", layers: []int{3}, want: 3},
		{name: "3 inside 3", layers: []int{3, 3}, want: 9},
		{name: "3 inside 3 inside 3", layers: []int{3, 3, 3}, want: 27},
		{name: "5 inside 5", layers: []int{5, 5}, want: 25},
		{name: "3 inside 3, outer declines *RetryError", layers: []int{3, 3}, guard: true, want: 3},
		{name: "3 inside 3 inside 3, outer declines *RetryError", layers: []int{3, 3, 3}, guard: true, want: 3},
		{name: "5 inside 5, outer declines *RetryError", layers: []int{5, 5}, guard: true, want: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter := endpointtest.Count(func(context.Context, any) (any, error) { return nil, errConn })
			ep := counter.Endpoint()
			for i, n := range tt.layers {
				cfg := middleware.RetryConfig{MaxAttempts: n, NoDelay: true, Observer: quiet}
				if tt.guard && i > 0 {
					cfg.RetryIf = notRetried
				}
				ep = middleware.Retry(cfg)(ep)
			}
			_, err := ep(context.Background(), nil)
			if !errors.Is(err, errConn) {
				t.Errorf("err = %v, want it to match the endpoint's error", err)
			}
			if got := counter.Calls(); got != tt.want {
				t.Errorf("endpoint calls = %d, want %d", got, tt.want)
			}
		})
	}
}
