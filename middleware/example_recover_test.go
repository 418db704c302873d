package middleware_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resiliencekit/resilience/middleware"
)

// Recover turns a panic into a *PanicError holding the panic value and the
// stack where it happened.
func ExampleRecover() {
	parse := func(_ context.Context, req any) (any, error) {
		fields := req.([]string)
		return fields[3], nil // panics: index out of range
	}

	_, err := middleware.Recover()(parse)(context.Background(), []string{"a", "b", "c"})
	fmt.Println(err)
	if pe, ok := errors.AsType[*middleware.PanicError](err); ok {
		fmt.Println(len(pe.Stack) > 0)
	}
	// Output:
	// middleware: panic: runtime error: index out of range [3] with length 3
	// true
}

// Recover: true in a Stack makes panics fall back too: the other layers
// never swallow a panic. Recover reports to the stack's Observer.
func ExampleStack_recover() {
	show := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		fmt.Printf("%s %s: %v\n", e.Layer, e.Kind, e.Err)
	})
	mw, err := middleware.Stack{
		Fallback: middleware.FallbackConfig{Value: "cached"}, // outermost
		Recover:  true,                                       // innermost
		Observer: show,
	}.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	enrich := mw(func(context.Context, any) (any, error) { panic("nil map in enrich") })
	v, err := enrich(context.Background(), nil)
	fmt.Println(v, err)
	// Output:
	// recover panic: middleware: panic: nil map in enrich
	// fallback fallback: middleware: panic: nil map in enrich
	// cached <nil>
}
