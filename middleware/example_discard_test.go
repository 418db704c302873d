package middleware_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resiliencekit/resilience/middleware"
)

// Discard silences a layer's events: the two retries below log nothing (a nil
// Observer would log them to slog.Default), which is what a test usually wants.
func ExampleDiscard() {
	calls := 0
	flaky := func(context.Context, any) (any, error) {
		if calls++; calls < 3 {
			return nil, errors.New("connection refused")
		}
		return "ok", nil
	}
	ep := middleware.Retry(middleware.RetryConfig{
		MaxAttempts: 3,
		NoDelay:     true,
		Observer:    middleware.Discard,
	})(flaky)
	resp, err := ep(context.Background(), nil)
	fmt.Println(resp, err, calls)
	// Output:
	// ok <nil> 3
}
