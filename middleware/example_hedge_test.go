package middleware_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// A read sent to one of several replicas, hedged: when the first replica
// has not answered within 20ms, the same read goes to the next one, and the
// first answer wins. The slow first attempt is canceled.
func ExampleHedge() {
	var calls atomic.Int32
	read := func(ctx context.Context, req any) (any, error) {
		if calls.Add(1) == 1 { // the first replica is stuck
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return "row from replica 2", nil
	}
	hedged := middleware.Hedge(middleware.HedgeConfig{
		Delay:      20 * time.Millisecond,
		Idempotent: func(ctx context.Context, req any) bool { return true }, // reads only
		Observer:   middleware.Discard,
	})(read)

	resp, err := hedged(context.Background(), "SELECT ...")
	fmt.Println(resp, err, "after", calls.Load(), "attempts")
	// Output:
	// row from replica 2 <nil> after 2 attempts
}
