package middleware_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resiliencekit/resilience/middleware"
)

// A retry budget shared by two Retry layers in front of one dependency:
// with the dependency down, the first call spends the budget's reserve of
// 2 retries, then the budget lets through one retry per 10 calls (Ratio
// 0.1), where three attempts without it would triple the load.
func ExampleRetryBudget() {
	down := errors.New("connection refused")
	attempts := 0
	dependency := func(context.Context, any) (any, error) {
		attempts++
		return nil, down
	}
	budget := middleware.NewRetryBudget(middleware.RetryBudgetConfig{Ratio: 0.1, MinRetries: 2})
	cfg := middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Budget: budget, Observer: middleware.Discard}
	search := middleware.Retry(cfg)(dependency)
	suggest := middleware.Retry(cfg)(dependency)

	var refused int
	for i := range 100 {
		call := search
		if i%2 == 1 {
			call = suggest
		}
		if _, err := call(context.Background(), nil); errors.Is(err, middleware.ErrRetryBudgetExhausted) {
			refused++
		}
	}
	fmt.Printf("100 calls, %d attempts (without a budget: 300); %d calls had a retry refused\n", attempts, refused)
	// Output:
	// 100 calls, 111 attempts (without a budget: 300); 99 calls had a retry refused
}
