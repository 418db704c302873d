package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"

	"github.com/resiliencekit/resilience/balancer"
	"github.com/resiliencekit/resilience/middleware"
)

// Three instances of a service, one of them down: its breaker opens after
// two failed calls and it leaves the rotation; every call is answered by
// another instance, because each attempt goes to an instance the call has
// not tried.
func Example() {
	factory := func(instance string) (endpoint.Endpoint, io.Closer, error) {
		return func(context.Context, any) (any, error) {
			if instance == "10.0.0.3:8080" {
				return nil, errors.New("connection refused")
			}
			return "answered by " + instance, nil
		}, nil, nil
	}
	e, err := balancer.NewEndpointer(sd.FixedInstancer{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"}, factory, balancer.Config{
		Name:    "users",
		Breaker: middleware.BreakerConfig{FailureThreshold: 2, Observer: middleware.Discard},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	b, _ := balancer.New(e, balancer.BalancerConfig{})
	users := balancer.Retry(b, middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Observer: middleware.Discard})

	for range 6 {
		resp, err := users(context.Background(), nil)
		fmt.Println(resp, err)
	}
	for _, in := range mustList(e) {
		fmt.Println(in.Breaker.Name(), in.Breaker.State())
	}
	// Output:
	// answered by 10.0.0.1:8080 <nil>
	// answered by 10.0.0.2:8080 <nil>
	// answered by 10.0.0.1:8080 <nil>
	// answered by 10.0.0.2:8080 <nil>
	// answered by 10.0.0.1:8080 <nil>
	// answered by 10.0.0.2:8080 <nil>
	// users/10.0.0.1:8080 closed
	// users/10.0.0.2:8080 closed
	// users/10.0.0.3:8080 open
}

func mustList(e *balancer.Endpointer) []*balancer.Instance {
	list, _ := e.Instances()
	return list
}
