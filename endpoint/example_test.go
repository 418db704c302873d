package endpoint_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/resiliencekit/resilience/endpoint"
)

// annotate returns a middleware that prints s before and after the call.
func annotate(s string) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, request any) (any, error) {
			fmt.Println(s, "pre")
			defer fmt.Println(s, "post")
			return next(ctx, request)
		}
	}
}

// The first middleware given to Chain is the outermost: the request passes
// through the middlewares in the order they are written, and the response
// comes back through them in reverse.
func ExampleChain() {
	e := endpoint.Chain(
		annotate("first"),
		annotate("second"),
		annotate("third"),
	)(func(context.Context, any) (any, error) {
		fmt.Println("my endpoint!")
		return struct{}{}, nil
	})

	if _, err := e(context.Background(), struct{}{}); err != nil {
		panic(err)
	}

	// Output:
	// first pre
	// second pre
	// third pre
	// my endpoint!
	// third post
	// second post
	// first post
}

type greetRequest struct{ Name string }

type greetResponse struct{ Greeting string }

// FromTyped turns a plain typed function into a go-kit endpoint; a request of
// the wrong type becomes a *TypeError instead of a panic.
func ExampleFromTyped() {
	greet := func(_ context.Context, req greetRequest) (greetResponse, error) {
		return greetResponse{Greeting: "hello, " + req.Name}, nil
	}
	e := endpoint.FromTyped(greet)

	resp, err := e(context.Background(), greetRequest{Name: "gopher"})
	fmt.Printf("%+v %v\n", resp, err)

	_, err = e(context.Background(), "gopher")
	fmt.Println(errors.Is(err, endpoint.ErrType))
	if te, ok := errors.AsType[*endpoint.TypeError](err); ok {
		fmt.Println(te.Role, te.Got, te.Want)
	}

	// Output:
	// {Greeting:hello, gopher} <nil>
	// true
	// request string endpoint_test.greetRequest
}

// Typed turns a go-kit endpoint into a plain typed function; a response of
// the wrong type becomes a *TypeError.
func ExampleTyped() {
	upper := func(_ context.Context, request any) (any, error) {
		return strings.ToUpper(request.(string)), nil
	}
	call := endpoint.Typed[string, string](upper)
	s, err := call(context.Background(), "hello")
	fmt.Println(s, err)

	// The endpoint returns a string, but the caller expects an int.
	length := endpoint.Typed[string, int](upper)
	n, err := length(context.Background(), "hello")
	fmt.Println(n, err)
	fmt.Println(errors.Is(err, endpoint.ErrType))

	// Output:
	// HELLO <nil>
	// 0 endpoint: response has type string, want int
	// true
}

// Nop is the simplest endpoint: a stand-in for tests and benchmarks.
func ExampleNop() {
	e := endpoint.Chain(annotate("logging"))(endpoint.Nop)
	resp, err := e(context.Background(), "anything")
	fmt.Printf("%#v %v\n", resp, err)

	// Output:
	// logging pre
	// logging post
	// struct {}{} <nil>
}
